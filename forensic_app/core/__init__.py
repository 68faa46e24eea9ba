"""Qt-free analysis engine. Nothing in this package may import PySide6 (a test enforces it)."""
