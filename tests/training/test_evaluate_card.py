"""The model card's metric tables are spliced from the evaluation, not pasted by hand."""

from __future__ import annotations

from pathlib import Path

from training import evaluate as V


def test_tables_are_spliced_between_the_markers_only(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text(
        f"# Card\n\nintro\n{V.TABLES_START}\n| old | table |\n{V.TABLES_END}\n\n## After\nkept\n",
        encoding="utf-8",
    )
    assert V.splice_tables(card, "| new | table |\n")
    text = card.read_text(encoding="utf-8")
    assert "| new | table |" in text and "| old |" not in text
    assert text.startswith("# Card\n\nintro\n") and text.endswith("## After\nkept\n")
    assert V.splice_tables(card, "| newer |\n")  # markers survive a second splice
    assert "| newer |" in card.read_text(encoding="utf-8")


def test_a_card_without_markers_is_left_alone(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# Card\nno markers\n", encoding="utf-8")
    assert not V.splice_tables(card, "| t |\n")
    assert card.read_text(encoding="utf-8") == "# Card\nno markers\n"
