"""The age head refitted on frozen features (``python -m training refit-age``).

Why these tests: the refit must never touch the gender output, must choose its ridge strength
without looking at the val split, and must leave a record the export can carry into provenance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e .[train])")
pytest.importorskip("timm", reason="timm is not installed (pip install -e .[train])")

from tiny_gtrain_cache import DETECTOR, tiny_gtrain_cache  # noqa: E402

from training import data as D  # noqa: E402
from training import refit_age as R  # noqa: E402
from training.model import AGE_MEAN, AGE_STD, GenderAgeNet  # noqa: E402


def test_ridge_recovers_a_linear_age_and_picks_the_strength_on_held_out_train() -> None:
    rng = np.random.default_rng(3)
    f = rng.normal(size=(600, 40)) * rng.uniform(0.1, 5.0, size=40)
    w_true = rng.normal(size=40) * 0.05
    ages = AGE_MEAN + AGE_STD * (f @ w_true + 0.3) + rng.normal(0, 0.5, size=600)
    w, b, info = R.choose_and_fit(f, ages, seed=0)
    pred = AGE_MEAN + AGE_STD * (f @ w + b)
    assert np.mean(np.abs(pred - ages)) < 1.0  # the noise is 0.5 years
    assert info["lambda"] in R.LAMBDAS
    assert info["holdout_n"] == 60 and info["fit_n"] == 600
    # the chosen strength is the one with the lowest held-out error
    assert info["holdout_mae_by_lambda"][f"{info['lambda']:g}"] == min(
        info["holdout_mae_by_lambda"].values()
    )


def test_refit_changes_only_the_age_head_and_records_itself(tmp_path: Path) -> None:
    cache, _ = tiny_gtrain_cache(tmp_path, per_group=5)  # 5 UTKFace train faces with ages
    D.build_gtrain_boxes(DETECTOR, cache, workers=1, chunk=5)
    torch.manual_seed(0)
    net = GenderAgeNet().eval()
    with torch.no_grad():  # a non-trivial gender head, so "unchanged" means something
        net.gender.weight.normal_(0, 0.05)
    src = tmp_path / "src.pt"
    torch.save({"model": net.state_dict(), "which": "model", "meta": {"hparams": {}}}, src)
    out = tmp_path / "refit.pt"
    info = R.refit(src, out, cache=cache)

    ck = torch.load(out, map_location="cpu", weights_only=False)
    refitted = GenderAgeNet().eval()
    refitted.load_state_dict(ck["model"])
    x = torch.randn(3, 3, 112, 112)
    with torch.no_grad():
        g0, a0 = net(x)
        g1, a1 = refitted(x)
    assert torch.equal(g0, g1), "the gender output must not move"
    assert not torch.allclose(a0, a1)
    assert ck["meta"]["age_head_refit"] == info
    assert info["source_sha256"] == D.file_sha256(src)
    assert info["gtrain_boxes"]["detector_sha256"] == D.file_sha256(DETECTOR)
    assert ck["which"] == "model + age head refit"
    # a zero-initialised head predicts the mean age; the fitted head does better on its data
    assert info["train_mae_after"] < info["train_mae_before"]
