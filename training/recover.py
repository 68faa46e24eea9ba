"""Rebuild a trainable checkpoint from a shipped ONNX file (its batch norms folded away).

Why: run checkpoints live in the gitignored ``training/runs/`` and end with the session that made
them, while the shipped model is committed. Without this, every new session would have to spend
hours of CPU re-training the weights the repository already holds before it could improve them.

The exporter folds each batch norm into the convolution before it (``W' = W·γ/σ``, bias ``b'``),
so the running statistics are gone. They are rebuilt so that the network computes exactly the
shipped function in eval mode *and* its batch statistics in train mode match real data:

1. every convolution gets ``W'`` rescaled per output channel by ``1/s`` where ``s`` is the
   standard deviation of ``W'x`` over real training crops (unit-variance outputs, the scale a
   fresh initialisation has, so AdamW's steps are the usual relative size);
2. the batch norm after it gets ``running_mean = μ/s``, ``running_var = 1``, ``γ = s·√(1+ε)``,
   ``β = μ + b'`` (μ the mean of ``W'x``), which makes ``BN(conv(x)) = W'x + b'`` exactly.

The gender head's calibration shift (folded into its bias at export, ADR 0006) is taken out
again, so the recovered network gives the raw logits a training run would. The result is checked
against ONNX Runtime on the ``wider-gender`` val crops (max |Δ| printed and recorded) and saved
in the ``best.pt`` format that ``train --init-from``, ``soup``, ``refit-age`` and ``export`` read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import numpy_helper
from torch import nn

from training import data as D
from training.model import ExportWrapper, GenderAgeNet
from training.train import _atomic_save, log


def _module_path(node_name: str) -> str:
    """``/trunk/blocks/blocks.1/blocks.1.0/conv_pw/Conv`` -> ``trunk.blocks.1.0.conv_pw``.

    The TorchScript exporter names each node after its module scope, one part per level; a part
    that is a prefix of the next (``blocks`` before ``blocks.1``) is a container's own name.
    """
    parts = node_name.strip("/").split("/")[:-1]
    return ".".join(
        p
        for i, p in enumerate(parts)
        if i + 1 == len(parts) or not parts[i + 1].startswith(p + ".")
    )


def _onnx_tensors(model: onnx.ModelProto) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Module path -> (weight, bias) of every Conv and Gemm node in the graph."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    # The exporter shares equal tensors: a second use reads the first through an Identity node.
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}
    for name in list(alias):
        src = name
        while src in alias:
            src = alias[src]
        if src in inits:
            inits[name] = inits[src]
    out = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        w = inits[node.input[1]]
        b = inits[node.input[2]] if len(node.input) > 2 else None
        out[_module_path(node.name)] = (w, b)
    return out


def _conv_bn_pairs(net: nn.Module, x: torch.Tensor) -> list[tuple[str, str]]:
    """(conv, batch norm) module names where the batch norm reads that conv's output directly."""
    names = {m: n for n, m in net.named_modules()}
    last: dict[str, object] = {}
    pairs: list[tuple[str, str]] = []

    def conv_hook(mod, _inp, out):
        last["conv"], last["out"] = names[mod], out

    def bn_hook(mod, inp, _out):
        if last.get("out") is inp[0]:
            pairs.append((str(last["conv"]), names[mod]))

    hooks = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    with torch.no_grad():
        net.eval()(x)
    for h in hooks:
        h.remove()
    return pairs


def load_folded(net: GenderAgeNet, model: onnx.ModelProto) -> list[tuple[str, str]]:
    """Load the ONNX weights with every batch norm as the identity plus the folded bias."""
    tensors = _onnx_tensors(model)
    pairs = _conv_bn_pairs(net, torch.zeros(2, 3, 64, 64))
    mods = dict(net.named_modules())
    with torch.no_grad():
        for name, (w, b) in tensors.items():
            mod = mods[name]
            # torch.tensor copies: arrays read from the ONNX file are read-only
            mod.weight.copy_(torch.tensor(w).reshape(mod.weight.shape))
            if mod.bias is not None:
                mod.bias.copy_(torch.tensor(b))
        for conv, bn in pairs:
            _, b = tensors[conv]
            m = mods[bn]
            m.running_mean.zero_()
            m.running_var.fill_(1.0 - m.eps)  # sqrt(var + eps) = 1: the identity
            m.weight.fill_(1.0)
            m.bias.copy_(torch.tensor(b))
    if len(pairs) + sum(1 for n in tensors if n.startswith(("gender", "age"))) + sum(
        1 for n in tensors if ".se." in n
    ) != len(tensors):
        raise RuntimeError("the ONNX graph does not match GenderAgeNet's convolutions")
    return pairs


@torch.no_grad()
def renormalise(net: GenderAgeNet, pairs: list[tuple[str, str]], x: torch.Tensor) -> None:
    """Give every folded batch norm real statistics without changing the eval-mode function."""
    mods = dict(net.named_modules())
    stats: dict[str, list[torch.Tensor]] = {}

    def hook_for(conv_name):
        def hook(_mod, _inp, out):
            o = out.transpose(0, 1).reshape(out.shape[1], -1).double()
            acc = stats.setdefault(conv_name, [torch.zeros(()), 0, 0])
            acc[0] = acc[0] + o.shape[1]
            acc[1] = acc[1] + o.sum(1)
            acc[2] = acc[2] + (o * o).sum(1)

        return hook

    hooks = [mods[c].register_forward_hook(hook_for(c)) for c, _ in pairs]
    net.eval()
    for i in range(0, len(x), 64):
        net(x[i : i + 64])
    for h in hooks:
        h.remove()
    for conv, bn in pairs:
        n, s1, s2 = stats[conv]
        mu = s1 / n
        sd = torch.sqrt(torch.clamp(s2 / n - mu * mu, min=1e-12))
        c, m = mods[conv], mods[bn]
        c.weight.div_(sd.float().view(-1, *([1] * (c.weight.dim() - 1))))
        b_folded = m.bias.clone()
        m.running_mean.copy_((mu / sd).float())
        m.running_var.fill_(1.0)
        m.weight.copy_((sd * np.sqrt(1.0 + m.eps)).float())
        m.bias.copy_(mu.float() + b_folded)


def recover(onnx_path: Path, out: Path, n_stats: int = 2048) -> dict:
    """Write a ``best.pt``-style checkpoint equal to ``onnx_path``'s network; returns its record."""
    model = onnx.load(str(onnx_path))
    meta_props = {p.key: p.value for p in model.metadata_props}
    prov = json.loads(meta_props.get("provenance", "{}"))
    size = int(meta_props.get("input_size", 112))
    shift = float(prov.get("calibration", {}).get("logit_shift_folded_into_head", 0.0))

    net = GenderAgeNet()
    pairs = load_folded(net, model)
    splits = D.load_splits()
    rng = np.random.default_rng(0)
    crops = []  # real training crops (both sources) for the batch statistics
    for name, k in (("wider_train", n_stats // 2), ("gtrain_train", n_stats - n_stats // 2)):
        sp = splits[name]
        for i in rng.choice(len(sp), k, replace=False):
            crops.append(D.train_crop(sp, int(i), size, rng))
    renormalise(net, pairs, torch.from_numpy(D.to_tensor_batch(crops)))
    with torch.no_grad():
        net.gender.bias -= shift  # back to the raw logit a training run produces

    val = splits["wider_val"]
    x = D.to_tensor_batch([D.eval_crop(val, i, size) for i in range(len(val))])
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g_ort, a_ort = sess.run(["gender_logit", "age"], {"input": x})
    flip = prov.get("test_time_augmentation", "hflip-mean") == "hflip-mean"
    with torch.no_grad():
        g_t, a_t = ExportWrapper(net.eval(), flip)(torch.from_numpy(x))
    diff_g = float(np.max(np.abs(g_t.numpy() + shift - g_ort)))
    diff_a = float(np.max(np.abs(a_t.numpy() - a_ort)))
    log(
        f"recovered vs ONNX Runtime, {len(x)} val crops: "
        f"|Δ logit| {diff_g:.2e}, |Δ age| {diff_a:.2e}"
    )
    if diff_g > 1e-3 or diff_a > 1e-2:
        raise RuntimeError(f"recovered network differs from the ONNX file: {diff_g}, {diff_a}")

    hparams = dict(prov.get("hyper_parameters") or {})
    hparams["input_size"] = size
    meta = {
        "hparams": hparams,
        "commit": prov.get("git_commit_at_training_start", "unknown"),
        "data_manifest_sha256": prov.get("data_manifest_sha256"),
        "lite0_tensors_copied": None,
        "gtrain_boxes": prov.get("gtrain_boxes"),
        "soup_of": prov.get("soup_of"),
        "parent": {"meta": {"hparams": prov.get("hyper_parameters"), "parent": None}},
        "age_head_refit": prov.get("age_head_refit"),
        "recovered_from": {
            "file": onnx_path.name,
            "sha256": D.file_sha256(onnx_path),
            "model_version": meta_props.get("model_version"),
            "provenance": prov,
            "batch_norm_statistics": f"re-estimated on {len(crops)} training crops",
            "max_abs_diff_vs_onnx": {"gender_logit": diff_g, "age": diff_a, "n": len(x)},
        },
    }
    obj = {"model": net.state_dict(), "which": "recovered", "row": {"step": None}, "meta": meta}
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(obj, out)
    log(f"recovered {onnx_path.name} ({meta_props.get('model_version')}) -> {out}")
    return obj


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "onnx", type=Path, nargs="?", default=D.REPO_ROOT / "models" / "gender_effnet_b0.onnx"
    )
    p.add_argument("--out", type=Path, default=Path("training/runs/recovered/best.pt"))


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(2)
    recover(args.onnx, args.out)
