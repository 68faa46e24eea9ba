"""Fast CPU tests of the training pipeline: warm start, a learning step, resume, ONNX export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e .[train])")
pytest.importorskip("timm", reason="timm is not installed (pip install -e .[train])")

from training import data as D  # noqa: E402
from training import model as M  # noqa: E402
from training import train as T  # noqa: E402

SIZE = 64  # small input: these tests check mechanics, not accuracy
# Whole-image framing keeps these runs from detecting all 32,801 gender-train faces (~3 min);
# the detected framing is tested on a tiny cache in test_gtrain_framing.py.
TINY_FRAMING = "whole"
os.environ.setdefault("TRAIN_THREADS", "1")  # the CPU is shared with real training runs


def _tiny_hparams(**overrides: object) -> T.HParams:
    """A run small enough for CI: tiny input and batch, no periodic eval or checkpoint."""
    base = dict(
        budget_min=60,
        input_size=SIZE,
        batch=8,
        eval_min=1e9,
        ckpt_min=1e9,
        gtrain_val_n=16,
        gtrain_framing=TINY_FRAMING,
    )
    return T.HParams(**(base | overrides))


def _need_weights() -> None:
    if not M.LITE0_WEIGHTS.is_file():
        pytest.skip(f"../shared not present: {M.LITE0_WEIGHTS} is missing")


def test_lite0_key_mapping_follows_the_weights_readme() -> None:
    assert M.lite0_to_timm_name("_conv_stem.weight") == "conv_stem.weight"
    assert M.lite0_to_timm_name("_bn1.running_var") == "bn2.running_var"
    assert M.lite0_to_timm_name("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"
    assert M.lite0_to_timm_name("_blocks.2._bn2.bias") == "blocks.1.1.bn3.bias"
    assert M.lite0_to_timm_name("_blocks.15._expand_conv.weight") == "blocks.6.0.conv_pw.weight"
    assert M.lite0_to_timm_name("_fc.weight") is None


def test_warm_start_copies_all_lite0_conv_and_bn_tensors() -> None:
    _need_weights()
    torch.manual_seed(0)
    net = M.GenderAgeNet()
    copied = M.warm_start_from_lite0(net)
    assert copied == 294  # 296 Lite0 keys minus the ImageNet classifier (_fc weight, bias)
    lite = torch.load(M.LITE0_WEIGHTS, map_location="cpu", weights_only=True)
    sd = net.trunk.state_dict()
    assert torch.equal(sd["blocks.3.2.conv_dw.weight"], lite["_blocks.7._depthwise_conv.weight"])
    se = [k for k in sd if k.endswith("se.conv_expand.weight")]
    assert se and all(float(sd[k].abs().sum()) == 0.0 for k in se)
    assert all(float(sd[k.replace("weight", "bias")].min()) == 3.0 for k in se)
    assert float(sd["blocks.1.0.se.conv_reduce.weight"].abs().sum()) > 0  # kept random


def _synthetic_batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two trivially separable 'classes' (bright vs dark), ages known for half."""
    rng = np.random.default_rng(0)
    y = np.tile([0.0, 1.0], n // 2)
    crops = [np.full((SIZE, SIZE, 3), 60 + 120 * int(c), np.uint8) for c in y]
    crops = [np.clip(c + rng.integers(0, 20, c.shape), 0, 255).astype(np.uint8) for c in crops]
    x = torch.from_numpy(D.to_tensor_batch(crops))
    ages = torch.tensor([30.0 if i % 2 else float("nan") for i in range(n)])
    return x, torch.tensor(y, dtype=torch.float32), ages


def test_a_few_train_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = M.GenderAgeNet()
    hp = T.HParams()
    x, y, age = _synthetic_batch()
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    net.train()
    net.dropout.p = 0.0  # deterministic losses; batch-norm stays in training mode (batch stats)
    losses = []
    for _ in range(8):
        loss, _, _ = T.loss_fn(net(x), y, age, hp)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        final, _, _ = T.loss_fn(net(x), y, age, hp)
    assert float(final) < losses[0] * 0.8


def test_balanced_sampler_state_round_trips() -> None:
    labels = np.array([0, 1, 1, 1, 1, 1, 1, 1])
    split = D.Split(
        "x",
        np.zeros((8, 4, 4, 3), np.uint8),
        np.zeros((8, 4), np.float32),
        labels,
        np.full(8, np.nan, np.float32),
        np.full(8, np.nan, np.float32),
    )
    s = T.BalancedSampler({"wider_train": split, "gtrain_train": split}, seed=1)
    draws = s.draw(4000, 0.5)
    females = sum(labels[i] == 0 for _, i in draws) / len(draws)
    assert 0.45 < females < 0.55  # class-balanced although only 1 of 8 rows is female
    st = s.state()
    a = s.draw(10, 0.5)
    s.load_state(st)
    assert s.draw(10, 0.5) == a


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real 2-step run on the shared data (needs ../shared; builds the decoded cache)."""
    _need_weights()
    if not (D.WIDER_DIR / "manifest.csv").is_file():
        pytest.skip("../shared not present: wider-gender data missing")
    # Build the decoded cache the way `python -m training cache` does (about 15 s, 2 GB on
    # disk under training/cache/) rather than skipping: CI starts from a clean clone.
    D.ensure_caches()
    out = tmp_path_factory.mktemp("run")
    hp = _tiny_hparams()
    T.train(hp, out, max_steps=2, eval_limit=16)
    return out


def test_checkpoint_resume_restores_step_and_rng(tiny_run: Path) -> None:
    ck = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    assert ck["state"]["step"] == 2
    hp = _tiny_hparams()
    res = T.train(hp, tiny_run, max_steps=3, eval_limit=16)
    assert res["step"] == 3
    ck2 = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    assert ck2["sampler_rng"] != ck["sampler_rng"]  # the RNG moved on from the restored state
    hist = json.loads((tiny_run / "metrics.json").read_text())["history"]
    assert [h["step"] for h in hist] == [2, 3]


def test_best_checkpoint_is_the_eval_with_the_highest_wild_auc(tiny_run: Path) -> None:
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["best_metric"] == T.SELECTION_METRIC
    scored = [
        (T.selection_score(h[tag]), h["step"]) for h in metrics["history"] for tag in ("raw", "ema")
    ]
    assert {"wider_val", "wider_val_no_detect"} <= set(metrics["history"][0]["ema"])
    top, top_step = max(scored)
    assert metrics["best"] == pytest.approx(top)
    assert metrics["best_step"] == top_step
    best = torch.load(tiny_run / "best.pt", map_location="cpu", weights_only=False)
    assert T.selection_score(best["row"][best["which"]]) == pytest.approx(top)


def test_selection_score_is_the_mean_of_both_framings_auc() -> None:
    row = {
        "wider_val": {"auc": 0.90, "balanced_accuracy": 0.99},
        "wider_val_no_detect": {"auc": 0.80},
    }
    assert T.selection_score(row) == pytest.approx(0.85)  # balanced accuracy plays no part


def test_resuming_a_run_scored_by_another_criterion_restarts_its_best(
    tiny_run: Path, tmp_path: Path
) -> None:
    import shutil

    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    del ck["state"]["best_metric"]  # as written before best.pt was chosen by AUC
    ck["state"]["best"] = 2.0  # a score no AUC can beat
    torch.save(ck, run / "last.pt")
    res = T.train(_tiny_hparams(), run, max_steps=ck["state"]["step"] + 1, eval_limit=16)
    assert res["best_metric"] == T.SELECTION_METRIC
    assert res["best_step"] == res["step"]  # the first eval after resuming sets a new best


def test_export_metadata_parses_and_onnx_matches_torch(tiny_run: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from forensic_app.core.modelstore import parse_gender_metadata
    from training import export as E

    out = tmp_path / "g.onnx"
    rep = E.export(tiny_run / "best.pt", out, val_limit=32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    spec = parse_gender_metadata(dict(sess.get_modelmeta().custom_metadata_map))
    assert spec.input_size == SIZE and spec.crop_shape == "square" and not spec.legacy
    assert spec.gender_output == "gender_logit" and spec.age_output == "age"
    lo, hi = spec.uncertain_band
    assert 0.0 < lo < 0.5 < hi < 1.0
    prov = json.loads(spec.raw["provenance"])
    assert len(prov["data_manifest_sha256"]) == 64
    x = np.random.default_rng(0).uniform(-1, 1, (3, 3, SIZE, SIZE)).astype(np.float32)
    g, a = sess.run(["gender_logit", "age"], {"input": x})
    net, _ = E.load_net(tiny_run / "best.pt")
    gt, at = E.torch_outputs(net, x)
    # the file's logits carry the calibration shift, folded into the head at export
    np.testing.assert_allclose(g, gt + rep["logit_shift"], atol=1e-4)
    np.testing.assert_allclose(a, at, atol=1e-3)
    assert rep["ort_vs_torch_max_abs_diff"]["gender_logit"] < 1e-3
    # The shipped graph averages each face with its mirror image: mirrored input, same answer.
    assert rep["metadata"]["provenance"] and prov["test_time_augmentation"] == "hflip-mean"
    gf, af = sess.run(["gender_logit", "age"], {"input": np.ascontiguousarray(x[..., ::-1])})
    np.testing.assert_allclose(gf, g, atol=1e-4)
    np.testing.assert_allclose(af, a, atol=1e-3)
    single, _ = E.torch_outputs(net, x, flip_average=False)
    assert not np.allclose(single, gt, atol=1e-4)  # the average is not just one pass


def test_stage_two_starts_from_the_parent_weights_with_a_fresh_schedule(
    tiny_run: Path, tmp_path: Path
) -> None:
    parent = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    parent["ema"]["gender.bias"].fill_(5.0)  # a mark no fresh start could have (it is zero-init)
    marked = tmp_path / "parent.pt"
    torch.save(parent, marked)
    hp = _tiny_hparams(init_from=str(marked))
    res = T.train(hp, tmp_path / "s2", max_steps=1, eval_limit=16)
    assert res["step"] == 1  # a fresh step count, not the parent's
    assert res["meta"]["parent"]["steps"] == parent["state"]["step"]
    assert res["meta"]["parent"]["checkpoint_sha256"] == D.file_sha256(marked)
    ck = torch.load(tmp_path / "s2" / "last.pt", map_location="cpu", weights_only=False)
    assert abs(float(ck["model"]["gender.bias"]) - 5.0) < 0.05  # started from the parent's EMA
    from training import export as E

    rep = E.export(tmp_path / "s2" / "best.pt", tmp_path / "s2.onnx", val_limit=16)
    prov = json.loads(rep["metadata"]["provenance"])
    assert prov["parent_run"]["checkpoint_sha256"] == D.file_sha256(marked)
    assert prov["parent_run"]["steps"] == parent["state"]["step"]
    assert prov["hyper_parameters"]["init_from"] == str(marked)


def test_balanced_platt_scaling_removes_a_lean_and_ignores_the_class_ratio() -> None:
    from training import export as E

    rng = np.random.default_rng(0)
    # A model that leans "male" by 0.6 logits, scored on a val set with three men per woman.
    # For unit-variance classes at -1/+1 the balanced log-odds are 2 * (logit - 0.6).
    men = rng.normal(1.0 + 0.6, 1.0, 6000)
    women = rng.normal(-1.0 + 0.6, 1.0, 2000)
    logits = np.concatenate([women, men])
    y = np.concatenate([np.zeros(2000), np.ones(6000)])
    temperature, shift = E.fit_platt_balanced(logits, y)
    assert abs(shift + 0.6) < 0.08 and abs(temperature - 0.5) < 0.05
    called_male = (logits + shift) > 0
    err_f = called_male[y == 0].mean()
    err_m = (~called_male[y == 1]).mean()
    assert abs(err_f - err_m) < 0.03  # the lean is gone (it was 0.34 vs 0.05 before)


def test_soup_averages_weights_and_names_its_sources(tiny_run: Path, tmp_path: Path) -> None:
    from training import soup as S

    a = torch.load(tiny_run / "last.pt", map_location="cpu", weights_only=False)
    b = copy_with_bias(a, 4.0, tmp_path / "b.pt")
    obj = S.soup([tiny_run / "last.pt", b], tmp_path / "soup.pt")
    expected = (a["ema"]["gender.bias"] + 4.0) / 2
    assert torch.allclose(obj["model"]["gender.bias"], expected)
    same = a["ema"]["trunk.conv_stem.weight"]  # equal in both sources: its mean is itself
    assert torch.allclose(obj["model"]["trunk.conv_stem.weight"], same)
    assert [s["sha256"] for s in obj["meta"]["soup_of"]] == [
        D.file_sha256(tiny_run / "last.pt"),
        D.file_sha256(b),
    ]
    net = M.GenderAgeNet()
    net.load_state_dict(torch.load(tmp_path / "soup.pt", weights_only=False)["model"])
    # a soup of a soup keeps the inner soup's ingredients, and the export records them all
    outer = S.soup([tmp_path / "soup.pt", b], tmp_path / "soup2.pt")
    inner = outer["meta"]["soup_of"][0]
    assert inner["sha256"] == D.file_sha256(tmp_path / "soup.pt")
    assert [s["sha256"] for s in inner["soup_of"]] == [s["sha256"] for s in obj["meta"]["soup_of"]]
    from training import export as E

    rep = E.export(tmp_path / "soup2.pt", tmp_path / "s.onnx", val_limit=16)
    prov = json.loads(rep["metadata"]["provenance"])
    assert prov["soup_of"][0]["soup_of"][1]["sha256"] == D.file_sha256(b)


def copy_with_bias(ck: dict, bias: float, path: Path) -> Path:
    import copy as _copy

    ck = _copy.deepcopy(ck)
    ck["ema"]["gender.bias"].fill_(bias)
    torch.save(ck, path)
    return path


def test_two_view_net_reads_the_face_and_the_context_through_one_trunk() -> None:
    """Issue 19's two-view model: six channels in (face, context), one shared B0 pass each,
    the heads see both feature vectors; the face half is exactly a one-view trunk pass."""
    torch.manual_seed(0)
    net = M.GenderAgeNet(views=2).eval()
    assert net.gender.in_features == 2 * M.FEATURES and M.views_of(net.state_dict()) == 2
    torch.nn.init.normal_(net.gender.weight)
    x = torch.randn(3, 6, SIZE, SIZE)
    with torch.no_grad():
        f = net.features(x)
        assert torch.allclose(f[:, : M.FEATURES], net.trunk(x[:, :3]), atol=1e-5)
        assert torch.allclose(f[:, M.FEATURES :], net.trunk(x[:, 3:]), atol=1e-5)
        g, _ = net(x)
        y = x.clone()
        y[:, 3:] = torch.randn(3, 3, SIZE, SIZE)  # other context, same face
        assert not torch.allclose(net(y)[0], g)
    with pytest.raises(ValueError):
        M.GenderAgeNet(views=3)


def test_two_view_training_crop_sees_one_photo_twice() -> None:
    """Both views come from the same turned, jittered box with the same augmentation draws: at
    equal margins the context view is the face view, pixel for pixel."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)
    split = D.Split(
        "x",
        img[None],
        np.asarray([[30, 30, 60, 66]], np.float32),
        np.asarray([1]),
        np.full(1, np.nan, np.float32),
        np.full(1, 20.0, np.float32),
    )
    aug = D.CropAug(p_rotate=0.5, p_no_detect=0.3)
    for seed in range(12):
        same = D.train_crop(split, 0, SIZE, np.random.default_rng(seed), aug, 0.25, 0.25)
        assert same.shape == (SIZE, SIZE, 6)
        assert np.array_equal(same[..., :3], same[..., 3:])
        wide = D.train_crop(split, 0, SIZE, np.random.default_rng(seed), aug, 0.25, 0.75)
        assert np.array_equal(wide[..., :3], same[..., :3])  # the face view does not change
    one = D.eval_crop(split, 0, SIZE)
    two = D.eval_crop(split, 0, SIZE, context_margin=0.75)
    assert one.shape == (SIZE, SIZE, 3) and np.array_equal(two[..., :3], one)
    assert not np.array_equal(two[..., 3:], one)  # more of the photo in the context view


def test_a_two_view_run_trains_and_is_never_exported_for_the_app(tmp_path: Path) -> None:
    _need_weights()
    if not (D.WIDER_DIR / "manifest.csv").is_file():
        pytest.skip("../shared not present: wider-gender data missing")
    from training import export as E

    D.ensure_caches()
    T.train(_tiny_hparams(context_margin=0.75), tmp_path, max_steps=2, eval_limit=16)
    net, ck = E.load_net(tmp_path / "best.pt")
    assert net.views == 2 and ck["meta"]["hparams"]["context_margin"] == 0.75
    with pytest.raises(SystemExit, match="two-view"):
        E.export(tmp_path / "best.pt", tmp_path / "g.onnx", val_limit=8)
    assert not (tmp_path / "g.onnx").exists()
