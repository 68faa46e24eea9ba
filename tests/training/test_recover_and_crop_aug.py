"""Recovering a trainable network from a shipped ONNX file; turned-head and --no-detect crops."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed (pip install -e .[train])")
pytest.importorskip("timm", reason="timm is not installed (pip install -e .[train])")

from forensic_app.core.crops import extract_crop, stretch_region, whole_image_crop  # noqa: E402
from training import data as D  # noqa: E402
from training import model as M  # noqa: E402
from training import recover as R  # noqa: E402

os.environ.setdefault("TRAIN_THREADS", "1")
SIZE = 64


def test_module_path_follows_the_exporter_scope_names() -> None:
    assert R._module_path("/trunk/conv_stem/Conv") == "trunk.conv_stem"
    assert (
        R._module_path("/trunk/blocks/blocks.1/blocks.1.0/conv_pw/Conv")
        == "trunk.blocks.1.0.conv_pw"
    )
    assert (
        R._module_path("/trunk/blocks/blocks.6/blocks.6.0/se/conv_expand/Conv")
        == "trunk.blocks.6.0.se.conv_expand"
    )
    assert R._module_path("/gender/Gemm") == "gender"


def _random_trained_looking_net(seed: int = 0) -> M.GenderAgeNet:
    """A B0 whose batch norms hold non-trivial statistics, as a trained one does."""
    torch.manual_seed(seed)
    net = M.GenderAgeNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.3)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
        net.gender.weight.normal_(0, 0.05)
        net.age.weight.normal_(0, 0.05)
    return net.eval()


def test_folded_onnx_weights_rebuild_the_same_function(tmp_path: Path) -> None:
    """Export folds every batch norm; load_folded + renormalise give the function back."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    net = _random_trained_looking_net()
    path = tmp_path / "m.onnx"
    torch.onnx.export(
        M.ExportWrapper(net, flip_average=False).eval(),
        (torch.zeros(1, 3, SIZE, SIZE),),
        str(path),
        input_names=["input"],
        output_names=["gender_logit", "age"],
        dynamic_axes={"input": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    x = np.random.default_rng(1).uniform(-1, 1, (6, 3, SIZE, SIZE)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g_ort, a_ort = sess.run(["gender_logit", "age"], {"input": x})

    fresh = M.GenderAgeNet()
    pairs = R.load_folded(fresh, onnx.load(str(path)))
    assert len(pairs) == 49  # every conv of B0 that a batch norm follows (SE convs have none)
    R.renormalise(fresh, pairs, torch.from_numpy(x))
    fresh.eval()
    with torch.no_grad():
        g, a = fresh.forward_export(torch.from_numpy(x))
    np.testing.assert_allclose(g.numpy(), g_ort, atol=1e-4)
    np.testing.assert_allclose(a.numpy(), a_ort, atol=1e-3)
    # Real statistics, not the identity: train-mode batch norm normalises like the data does.
    bn = dict(fresh.named_modules())["trunk.blocks.3.1.bn2"]
    assert torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    assert float(bn.weight.detach().std()) > 0.0 and not torch.allclose(
        bn.weight, torch.ones_like(bn.weight)
    )
    fresh.train()
    fresh.dropout.p = 0.0
    with torch.no_grad():
        g_train, _ = fresh(torch.from_numpy(x))
    # batch statistics of the very data the statistics were measured on: the same answers
    np.testing.assert_allclose(g_train.numpy(), g_ort, atol=0.05)


def test_recover_from_an_exported_file_gives_a_checkpoint_that_trains(tmp_path: Path) -> None:
    """The whole command: export (shift folded, flip-averaged) -> recover -> load and compare."""
    if not (D.WIDER_DIR / "manifest.csv").is_file() or not M.LITE0_WEIGHTS.is_file():
        pytest.skip("../shared not present: wider-gender data or Lite0 weights missing")
    from training import export as E

    D.ensure_caches()
    net = _random_trained_looking_net(2)
    ckpt = tmp_path / "best.pt"
    torch.save(
        {"model": net.state_dict(), "which": "ema", "meta": {"hparams": {"input_size": SIZE}}},
        ckpt,
    )
    onnx_path = tmp_path / "g.onnx"
    rep = E.export(ckpt, onnx_path, val_limit=32)
    obj = R.recover(onnx_path, tmp_path / "rec" / "best.pt", n_stats=64)
    rec = obj["meta"]["recovered_from"]
    assert rec["sha256"] == D.file_sha256(onnx_path)
    assert rec["max_abs_diff_vs_onnx"]["gender_logit"] < 1e-3
    assert obj["meta"]["hparams"]["input_size"] == SIZE
    # The calibration shift is taken back out: raw logits equal the original network's.
    back = M.GenderAgeNet()
    back.load_state_dict(torch.load(tmp_path / "rec" / "best.pt", weights_only=False)["model"])
    x = torch.from_numpy(np.random.default_rng(3).uniform(-1, 1, (4, 3, SIZE, SIZE)))
    with torch.no_grad():
        g0, a0 = net.eval().forward_export(x.float())
        g1, a1 = back.eval().forward_export(x.float())
    np.testing.assert_allclose(g1.numpy(), g0.numpy(), atol=2e-3)  # shift stored to 4 decimals
    np.testing.assert_allclose(a1.numpy(), a0.numpy(), atol=1e-2)
    assert json.loads(rep["metadata"]["provenance"])["calibration"]["temperature"] > 0


# ---------------------------------------------------------------------------------------------
# Crop augmentation


def _scene(size: int = 144) -> tuple[np.ndarray, np.ndarray]:
    """A context crop: gradient background, a bright 'face' box with a dark mark on its top."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([xx, yy, (xx + yy) // 2], axis=2).astype(np.uint8)
    box = np.float32([50, 40, 90, 100])  # 40 wide, 60 tall: a WIDER-like tall box
    img[40:100, 50:90] = 220
    img[40:50, 60:80] = 10  # "hair" at the top of the face
    return img, box


def test_no_detect_crop_is_the_apps_letterboxed_box_plus_a_quarter() -> None:
    img, box = _scene()
    got = D.no_detect_crop(img, box, None, SIZE)
    x0, y0, x1, y1 = stretch_region(box, img.shape)
    np.testing.assert_array_equal(got, whole_image_crop(img[y0:y1, x0:x1], SIZE, "square"))
    assert got[:, :5].max() == 0 and got[:, -5:].max() == 0  # black bars left and right
    assert not np.array_equal(got, extract_crop(img, box, SIZE))  # unlike the square crop


def test_no_detect_crop_is_clipped_to_the_photo_not_to_the_black_context() -> None:
    img, box = _scene()
    framed = img.copy()
    framed[:, :60] = 0  # the photo ends at x = 60: left of it the context crop is black
    valid = np.float32([60, 0, 144, 144])
    got = D.no_detect_crop(framed, box, valid, SIZE)
    photo = framed[:, 60:]
    x0, y0, x1, y1 = stretch_region([box[0] - 60, box[1], box[2] - 60, box[3]], photo.shape)
    np.testing.assert_array_equal(got, whole_image_crop(photo[y0:y1, x0:x1], SIZE, "square"))


def test_turning_a_face_moves_its_top_and_swaps_the_box_sides() -> None:
    img, box = _scene()
    same, b0, _ = D.rotate_about_face(img, box, None, 0.0)
    np.testing.assert_array_equal(same, img)
    np.testing.assert_allclose(b0, box)
    turned, b90, valid = D.rotate_about_face(img, box, np.float32([0, 0, 144, 144]), 90.0)
    cx, cy = 70, 70
    np.testing.assert_allclose(b90, [cx - 30, cy - 20, cx + 30, cy + 20], atol=1e-3)
    # OpenCV's positive angle is anticlockwise: the dark top of the face ends up on the left.
    assert turned[cy, cx - 25].max() < 40 and turned[cy, cx + 25].min() > 200
    assert valid is not None and valid[0] <= 1 and valid[2] >= 143


def test_train_crop_with_every_geometric_augmentation_gives_a_model_sized_crop() -> None:
    img, box = _scene()
    split = D.Split(
        "s",
        img[None],
        box[None],
        np.array([1]),
        np.full(1, np.nan, np.float32),
        np.full(1, 60, np.float32),
        np.float32([[0, 0, 144, 144]]),
    )
    rng = np.random.default_rng(0)
    for aug in (
        D.CropAug(p_rotate=1.0),
        D.CropAug(p_rotate90=1.0),
        D.CropAug(p_no_detect=1.0),
        D.CropAug(p_rotate=1.0, p_no_detect=1.0),
    ):
        crop = D.train_crop(split, 0, SIZE, rng, aug)
        assert crop.shape == (SIZE, SIZE, 3) and crop.dtype == np.uint8


def test_compare_scores_candidates_in_both_wild_framings(tmp_path: Path) -> None:
    """A network that cannot tell faces apart scores AUC 0.5; equal weights score equally."""
    if not (D.WIDER_DIR / "manifest.csv").is_file():
        pytest.skip("../shared not present: wider-gender data missing")
    from training import compare as C

    D.ensure_caches()
    blind = M.GenderAgeNet()  # zero-initialised heads: the same logit for every face
    seeing = _random_trained_looking_net(4)
    paths = []
    for name, net in (("blind", blind), ("a", seeing), ("b", seeing)):
        torch.save({"model": net.state_dict(), "which": name}, tmp_path / f"{name}.pt")
        paths.append(tmp_path / f"{name}.pt")
    rows = C.score(paths, size=32, gtrain_n=64, gtrain_framing="whole")  # no detector run
    assert [r["checkpoint"] for r in rows] == [str(p) for p in paths]
    for framing in ("square", "no_detect", "gtrain"):
        assert rows[0][framing]["auc"] == pytest.approx(0.5)
        assert rows[1][framing] == rows[2][framing]
    assert rows[1]["square"]["auc"] != rows[1]["no_detect"]["auc"]  # two different framings
    assert rows[1]["wild_auc_mean"] == pytest.approx(
        (rows[1]["square"]["auc"] + rows[1]["no_detect"]["auc"]) / 2
    )
