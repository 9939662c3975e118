"""EfficientNet-B4 patch network of Mandelli et al. (WIFS 2024), with a loader for the official
checkpoint layout.

The official network (polimi-ispl/synthetic-image-detection, ``utils/architectures.py``) is
``efficientnet_pytorch``'s ``EfficientNet.from_name("efficientnet-b4")`` with its ``_fc``
deleted and a ``classifier = nn.Linear(1792, 2)`` after the pooled features; the checkpoint is
``{"net": {"efficientnet.<efficientnet_pytorch key>": ..., "classifier.weight": (2, 1792),
"classifier.bias": (2,)}}`` and the patch score is the logit of class 1. These are facts of
that code; the network here is torchvision's ``efficientnet_b4`` (the same layers, 706 tensors)
made to compute what ``efficientnet_pytorch`` computes:

- batch norm with eps 1e-3 and momentum 0.01 (torchvision's B4 uses 1e-5 / 0.1);
- ``efficientnet_pytorch`` pads convolutions TensorFlow-"same", statically for the model's
  380-px input size: the stride-2 convolutions get asymmetric zero padding ((0, 1) for the stem
  and 3x3 stages, (1, 2) for the last 5x5 one), the others the symmetric padding torchvision
  also uses; the same pads are applied here whatever the input size, as theirs are.

:func:`official_to_torchvision` maps the official key names onto this module's.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

#: efficientnet_pytorch builds its static pads for this input size (B4's)
STATIC_IMAGE_SIZE = 380
FEATURES = 1792


def tf_same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow "same" for one side of ``size`` pixels."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pad_hook(pads: tuple[int, int, int, int]) -> Any:
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (F.pad(inputs[0], pads),)

    return hook


class EfficientNetB4Patch(nn.Module):
    """torchvision ``efficientnet_b4`` features + average pooling + ``fc`` (1792 -> 1), computing
    ``efficientnet_pytorch``'s B4 (see the module docstring). Output: (N, 1) logits."""

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import efficientnet_b4

        base = efficientnet_b4(weights=None)
        self.features, self.avgpool = base.features, base.avgpool
        self.fc = nn.Linear(FEATURES, 1)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = 1e-3, 0.01
        self._static_same_padding()

    def _convs_in_order(self) -> list[nn.Conv2d]:
        """The spatial (k > 1) convolutions in data order: stem, then each block's depthwise."""
        convs = [self.features[0][0]]
        for stage in self.features[1:8]:
            for block in stage:
                convs += [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1]
        return convs

    def _static_same_padding(self) -> None:
        size = STATIC_IMAGE_SIZE
        for conv in self._convs_in_order():
            k, s = conv.kernel_size[0], conv.stride[0]
            before, after = tf_same_pads(size, k, s)
            if (before, after) != (conv.padding[0], conv.padding[0]):
                conv.padding = (0, 0)
                conv.register_forward_pre_hook(_pad_hook((before, after, before, after)))
            size = math.ceil(size / s)

    def stages(self) -> dict[str, nn.Module]:
        return {f"stage{i}": self.features[i] for i in range(1, 9)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


def official_to_torchvision(state: dict[str, torch.Tensor], net: EfficientNetB4Patch, source: str,
                            head_sign: float = 1.0) -> dict[str, torch.Tensor]:
    """The official ``EfficientNetGen`` state (``efficientnet.*`` + ``classifier.*``) as this
    module's state dict; ``fc`` = ``head_sign`` x the class-1 row of ``classifier``. Unknown,
    missing or misshapen keys raise one :class:`CheckpointError` naming ``source``."""
    blocks = [(s, j) for s in range(1, 8) for j in range(len(net.features[s]))]
    inner = {"_depthwise_conv.weight": (0, "0.weight"), "_bn1": (0, "1"), "_se_reduce": (1, "fc1"),
             "_se_expand": (1, "fc2"), "_project_conv.weight": (2, "0.weight"), "_bn2": (2, "1")}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("classifier."):
            if value.shape[0] != 2:
                raise CheckpointError(f"{source}: expected a 2-class classifier (official), got {tuple(value.shape)}")
            out["fc." + key.split(".", 1)[1]] = head_sign * value[1:2]  # class 1's row: the official patch score
            continue
        if not key.startswith("efficientnet."):
            raise CheckpointError(f"{source}: unexpected key {key!r} (expected efficientnet.* and classifier.*)")
        k = key[len("efficientnet."):]
        if k.startswith("_conv_stem."):
            out["features.0.0." + k.split(".", 1)[1]] = value
        elif k.startswith("_bn0."):
            out["features.0.1." + k.split(".", 1)[1]] = value
        elif k.startswith("_conv_head."):
            out["features.8.0." + k.split(".", 1)[1]] = value
        elif k.startswith("_bn1."):
            out["features.8.1." + k.split(".", 1)[1]] = value
        elif k.startswith("_blocks."):
            _, idx, rest = k.split(".", 2)
            if int(idx) >= len(blocks):
                raise CheckpointError(f"{source}: block {idx} beyond B4's {len(blocks)} blocks")
            s, j = blocks[int(idx)]
            expand = f"efficientnet._blocks.{idx}._expand_conv.weight" in state
            base = f"features.{s}.{j}.block."
            if rest.startswith("_expand_conv."):
                out[base + "0.0." + rest.split(".", 1)[1]] = value
            elif rest.startswith("_bn0."):
                out[base + "0.1." + rest.split(".", 1)[1]] = value
            else:
                for prefix, (offset, name) in inner.items():
                    if rest == prefix or rest.startswith(prefix + "."):
                        tail = rest[len(prefix):]
                        out[f"{base}{offset + int(expand)}.{name}{tail}"] = value
                        break
                else:
                    raise CheckpointError(f"{source}: unexpected key {key!r}")
        else:
            raise CheckpointError(f"{source}: unexpected key {key!r}")
    return out
