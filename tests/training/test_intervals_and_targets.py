"""Bootstrap intervals and the generated targets table of the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training import evaluate as V
from training.metrics import binary_metrics, bootstrap_ci, mean_ci


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.65).astype(int)  # like wider-gender val: 65 % men
    p = 1 / (1 + np.exp(-(rng.normal(0, 1.3, n) + np.where(y == 1, 1.6, -1.6))))
    return y, p


def test_intervals_contain_the_point_estimate_and_shrink_with_more_faces() -> None:
    y, p = _scores(600, 0)
    m, ci = binary_metrics(y, p), bootstrap_ci(y, p, n_boot=500)
    for key in ("balanced_accuracy", "auc"):
        lo, hi = ci[key]
        assert lo < m[key] < hi
    lo, hi = ci["err_gap"]
    assert lo < m["err_f"] - m["err_m"] < hi
    y4, p4 = _scores(2400, 1)
    ci4 = bootstrap_ci(y4, p4, n_boot=500)
    width = ci["balanced_accuracy"][1] - ci["balanced_accuracy"][0]
    width4 = ci4["balanced_accuracy"][1] - ci4["balanced_accuracy"][0]
    assert width4 < 0.7 * width  # ~1/sqrt(4) of the width for 4x the faces


def test_mean_interval_covers_the_mean_and_narrows_with_more_values() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.exponential(6.0, 200), rng.exponential(6.0, 5000)
    ci_s, ci_l = mean_ci(small, n_boot=500), mean_ci(large, n_boot=500)
    assert ci_s[0] < small.mean() < ci_s[1] and ci_l[0] < large.mean() < ci_l[1]
    assert ci_l[1] - ci_l[0] < (ci_s[1] - ci_s[0]) / 3
    assert mean_ci(np.array([])) == []


def test_a_perfect_separator_has_a_degenerate_interval_and_one_class_has_none() -> None:
    y = np.array([0] * 20 + [1] * 30)
    p = np.where(y == 1, 0.9, 0.1)
    ci = bootstrap_ci(y, p, n_boot=200)
    assert ci["balanced_accuracy"] == [1.0, 1.0]
    assert ci["auc"] == [1.0, 1.0]
    assert ci["err_gap"] == [0.0, 0.0]
    assert bootstrap_ci(np.ones(10, int), np.full(10, 0.7))["n_boot"] == 0


def _res(ba: float, ci: list[float], gap_ci: list[float]) -> dict:
    wild = {
        "n": 605,
        "balanced_accuracy": ba,
        "auc": 0.97,
        "err_f": 0.15,
        "err_m": 0.05,
        "ci95": {"balanced_accuracy": ci, "auc": [0.955, 0.98], "err_gap": gap_ci},
        "ge64": {"n": 200, "balanced_accuracy": 0.95},
        "ge64_ci95": {"balanced_accuracy": [0.92, 0.97]},
    }
    return {
        "wider_val": wild,
        "dev_crops": dict(wild, err_f=0.06, err_m=0.05),
        "gtrain_val": {"age_mae": 6.4, "age_n": 100},
    }


def test_targets_table_gives_verdicts_from_the_numbers_and_their_intervals() -> None:
    table = V.targets_table(_res(0.85, [0.82, 0.88], [0.05, 0.15]))
    rows = {tuple(c.strip() for c in r.split("|")[1:3]): r for r in table.splitlines()[2:]}
    assert (
        "whole 95 % interval is below"
        in rows[("balanced accuracy ≥ 0.90", "wider-gender val (n=605)")]
    )
    assert rows[("ROC-AUC ≥ 0.96", "wider-gender val")].endswith("| met |")
    assert rows[("balanced accuracy ≥ 0.93, faces ≥ 64 px", "wider-gender val (n=200)")].endswith(
        "| met |"
    )
    gap_w = rows[("female and male error rates within 3 points", "wider-gender val")]
    assert "gap +10.0 [+5.0, +15.0]" in gap_w and "whole 95 % interval is outside" in gap_w
    assert rows[("female and male error rates within 3 points", "dev-eval crops")].endswith(
        "| met |"
    )
    age_row = ("apparent-age MAE < 6 years", "gender-train val, app framing (n=100)")
    assert "**not met**" in rows[age_row]
    close = _res(0.85, [0.82, 0.88], [0.05, 0.15])
    close["gtrain_val"].update(age_mae=5.9, age_mae_ci95=[5.7, 6.1])
    assert "| 5.90 [5.70, 6.10] years | met (the target lies inside the 95 % interval) |" in (
        V.targets_table(close)
    )
    close["gtrain_val"]["age_mae_ci95"] = [5.75, 5.98]
    assert V.targets_table(close).splitlines()[-1].endswith("years | met |")
    near = V.targets_table(_res(0.89, [0.86, 0.92], [0.01, 0.19]))
    assert "target lies inside the 95 % interval" in near
    assert "interval reaches inside the target" in near


def test_evaluate_card_writes_both_generated_sections(tmp_path: Path) -> None:
    card = tmp_path / "MODEL_CARD.md"
    card.write_text(
        f"# Card\n{V.TABLES_START}\nold\n{V.TABLES_END}\n## Targets\n"
        f"{V.TARGETS_START}\nold targets\n{V.TARGETS_END}\nkept\n",
        encoding="utf-8",
    )
    table = V.targets_table(_res(0.91, [0.88, 0.94], [0.0, 0.2]))
    assert V.splice_tables(card, table, V.TARGETS_START, V.TARGETS_END)
    text = card.read_text(encoding="utf-8")
    assert "old targets" not in text and "\nold\n" in text and text.endswith("kept\n")
    assert (
        "| balanced accuracy ≥ 0.90 | wider-gender val (n=605) | 0.910 [0.880, 0.940] | met |"
        in text
    )
