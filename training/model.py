"""EfficientNet-B0 with a perceived-gender logit and an apparent-age head, warm-started from Lite0.

Why Lite0: ImageNet B0 weights cannot be obtained here; Lite0 (Apache-2.0, ../shared/weights)
has B0's convolution and batch-norm shapes minus squeeze-excitation. Its tensors are renamed to
timm naming (../shared/weights/README.md) and copied where shapes match; SE gates start near
identity (``conv_expand`` weight 0, bias +3 -> sigmoid 0.95) so the copied features pass through,
while ``conv_reduce`` stays random so gradients still flow into the gate.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from training.data import SHARED

#: Under ``../shared`` (or ``TRAINING_SHARED``, where the GPU run unpacks its copy).
LITE0_WEIGHTS = SHARED / "weights" / "efficientnet-lite0-57934424.pth"
#: Stage repeats of EfficientNet-B0/Lite0: ``_blocks.N`` -> ``blocks.S.I`` in this order.
STAGE_REPEATS = (1, 2, 2, 3, 3, 4, 1)
#: Age head output = AGE_MEAN + AGE_STD * raw (so a zero-initialised head predicts the mean).
AGE_MEAN, AGE_STD = 33.0, 20.0

_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2"}
_BLOCK0 = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCKN = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def _block_index() -> list[tuple[int, int]]:
    return [(s, i) for s, n in enumerate(STAGE_REPEATS) for i in range(n)]


def lite0_to_timm_name(key: str) -> str | None:
    """Map a lukemelas Lite0 key to timm naming; None for the ImageNet classifier (``_fc``)."""
    head, _, rest = key.partition(".")
    if head == "_fc":
        return None
    if head in _TOP:
        return f"{_TOP[head]}.{rest}"
    m = re.match(r"_blocks\.(\d+)\.(\w+)\.(.+)$", key)
    if not m:
        raise KeyError(f"unexpected Lite0 key {key!r}")
    n, layer, tail = int(m.group(1)), m.group(2), m.group(3)
    s, i = _block_index()[n]
    table = _BLOCK0 if n == 0 else _BLOCKN
    return f"blocks.{s}.{i}.{table[layer]}.{tail}"


#: Pooled features of one B0 pass.
FEATURES = 1280


class GenderAgeNet(nn.Module):
    """B0 trunk -> pooled 1280 features -> (gender logit for "male", apparent age in years).

    ``views=2`` is issue 19's two-view model: the input has six channels (the face crop and a
    wider context crop of the same face, ``data.two_views``); one shared B0 trunk runs both
    (two passes, one batch) and the heads read the two feature vectors side by side, so hair,
    head shape and shoulders are seen without giving up the face's resolution.
    """

    def __init__(self, views: int = 1) -> None:
        super().__init__()
        import timm

        if views not in (1, 2):
            raise ValueError(f"views must be 1 or 2, not {views}")
        self.views = views
        self.trunk = timm.create_model("efficientnet_b0", pretrained=False, num_classes=0)
        self.dropout = nn.Dropout(0.2)
        self.gender = nn.Linear(FEATURES * views, 1)
        self.age = nn.Linear(FEATURES * views, 1)
        for head in (self.gender, self.age):  # zero-init: loss starts at log 2, not ~2.1
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.views == 1:
            return self.trunk(x)
        n = x.shape[0]
        f = self.trunk(torch.cat([x[:, :3], x[:, 3:]], dim=0))
        return torch.cat([f[:n], f[n:]], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.dropout(self.features(x))
        return self.gender(f)[:, 0], self.age(f)[:, 0]

    def forward_export(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g, a = self.forward(x)
        return g, AGE_MEAN + AGE_STD * a


class ExportWrapper(nn.Module):
    """What the ONNX file holds: ``gender_logit`` (N,) and ``age`` in years (N,).

    With ``flip_average`` the file runs each face and its mirror image and averages the two
    logits and ages. Why inside the graph: the app and every other consumer get the better
    number without knowing about it, and calibration is fitted on exactly what ships. Measured
    on the first shipped model (training/README.md): wider-gender val balanced accuracy
    0.846 -> 0.868 and AUC 0.929 -> 0.938, dev-eval crops AUC 0.948 -> 0.956, for twice the
    per-face cost (about 5 ms more per face on one thread).
    """

    def __init__(self, net: GenderAgeNet, flip_average: bool = True) -> None:
        super().__init__()
        self.net = net
        self.flip_average = flip_average

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.flip_average:
            return self.net.forward_export(x)
        n = x.shape[0]
        g, a = self.net.forward_export(torch.cat([x, torch.flip(x, dims=[3])], dim=0))
        return (g[:n] + g[n:]) * 0.5, (a[:n] + a[n:]) * 0.5


def views_of(state_dict: dict) -> int:
    """How many views a saved GenderAgeNet reads (its gender head's width says so)."""
    return int(state_dict["gender.weight"].shape[1]) // FEATURES


def warm_start_from_lite0(net: GenderAgeNet, path: Path = LITE0_WEIGHTS) -> int:
    """Copy Lite0 tensors into the B0 trunk where names and shapes match; returns how many."""
    lite = torch.load(path, map_location="cpu", weights_only=True)
    target = net.trunk.state_dict()
    copied = 0
    with torch.no_grad():
        for key, value in lite.items():
            name = lite0_to_timm_name(key)
            if name is None or name not in target or target[name].shape != value.shape:
                continue
            target[name].copy_(value)
            copied += 1
        for name, t in target.items():
            if ".se.conv_expand.weight" in name:
                t.zero_()
            elif ".se.conv_expand.bias" in name:
                t.fill_(3.0)
    net.trunk.load_state_dict(target)
    return copied
