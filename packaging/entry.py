"""PyInstaller entry script: the same ``main`` as ``python -m forensic_app``.

Why a separate file: the bundle's top-level script runs as ``__main__``; importing
``forensic_app.__main__`` from here keeps that module importable under its real name.
"""

from forensic_app.__main__ import main

raise SystemExit(main())
