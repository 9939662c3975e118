"""Tiny latent-diffusion autoencoders of the TAESD family (TAESD, TAESDXL, TAESD3, TAEF1, TAEF2).

A TAESD-style autoencoder is a small, distilled stand-in for the VAE of a latent diffusion model
(Ollin Boer Bohan, "Tiny AutoEncoder for Stable Diffusion", github.com/madebyollin/taesd, MIT).
Its encoder maps an RGB image in [0, 1] to a latent with ``latent_channels`` channels at 1/8 of
the resolution; its decoder maps such a latent back to RGB in [0, 1]. Passing a photograph
through both (a *round trip*) is the cheapest way to give it the fingerprint of a latent
diffusion decoder, which is what the laundering attack of Mandelli et al. 2024 does with the
full Stable Diffusion VAE.

Layer layout (facts of the published checkpoints; the module below is written from them):

* encoder: ``conv3x3(3, 64)``, one residual block, then three stages of
  ``conv3x3(stride 2, no bias)`` + three residual blocks, then ``conv3x3(64, latent)``;
* decoder: soft clamp ``3 tanh(z / 3)``, ``conv3x3(latent, 64)``, ReLU, then three stages of
  three residual blocks + nearest 2x upsampling + ``conv3x3(no bias)``, then one residual
  block and ``conv3x3(64, 3)``;
* residual block: ``relu(conv(relu(conv(relu(conv(x))))) + x)`` with 3x3 convolutions;
* TAEF2 (FLUX.2) adds, in the lowest-resolution blocks (the last encoder stage and the first
  decoder stage), a pre-normalisation branch ``x <- x + conv1x1(relu(GroupNorm4(conv1x1(x))))``
  widening 64 -> 256 -> 64 channels, stored under the key ``pool``.

Raw latents lie roughly in [-3, 3]; :meth:`TinyAutoencoder.scale_latents` maps them to [0, 1]
(magnitude 3, shift 0.5) so they can be stored as 8-bit images.

The weights are loaded with ``torch.load(weights_only=True)`` (or safetensors); any mismatch
raises :class:`~fakebench.errors.CheckpointError` with one line naming the file.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CheckpointError
from ..io import load_safetensors

PathLike = Union[str, "os.PathLike[str]"]

#: Raw latents are soft-clamped to +-LATENT_MAGNITUDE by the decoder.
LATENT_MAGNITUDE = 3.0
#: Offset used when storing latents as [0, 1] images.
LATENT_SHIFT = 0.5
#: Spatial down-sampling factor of every TAESD-family encoder.
DOWNSCALE = 8
#: Known checkpoint name prefixes, most specific first.
KNOWN_PREFIXES = ("taef2", "taef1", "taesd3", "taesdxl", "taesd")
_WEIGHT_SUFFIXES = (".pth", ".pt", ".safetensors")


def _conv3(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=bias)


class SoftClamp(nn.Module):
    """Smoothly limits values to (-m, m): ``m * tanh(x / m)``."""

    def __init__(self, magnitude: float = LATENT_MAGNITUDE) -> None:
        super().__init__()
        self.magnitude = float(magnitude)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / self.magnitude) * self.magnitude


class GroupNormBranch(nn.Sequential):
    """TAEF2's mid-block pre-normalisation branch: 1x1 conv widening by 4, GroupNorm with 4
    groups, ReLU, 1x1 conv back. Indices 0/1/3 hold the parameters (2 is the ReLU)."""

    def __init__(self, channels: int, widen: int = 4, groups: int = 4) -> None:
        wide = channels * widen
        super().__init__(
            nn.Conv2d(channels, wide, kernel_size=1, bias=False),
            nn.GroupNorm(groups, wide),
            nn.ReLU(),
            nn.Conv2d(wide, channels, kernel_size=1, bias=False),
        )


class ResBlock(nn.Module):
    """Residual block of three 3x3 convolutions (ReLU between), identity skip, ReLU after the
    sum; with ``group_norm=True`` the input first gets the :class:`GroupNormBranch` added."""

    def __init__(self, channels: int, group_norm: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv3(channels, channels), nn.ReLU(),
            _conv3(channels, channels), nn.ReLU(),
            _conv3(channels, channels),
        )
        self.pool: nn.Module | None = GroupNormBranch(channels) if group_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


class TAEEncoder(nn.Sequential):
    """RGB (N, 3, H, W) in [0, 1] -> raw latent (N, latent_channels, H/8, W/8).

    Sequential indices match the published state dicts (``0.weight``, ``1.conv.0.weight``, ...).
    """

    def __init__(self, latent_channels: int = 4, width: int = 64, group_norm: bool = False,
                 stages: int = 3, blocks_per_stage: int = 3) -> None:
        layers: list[nn.Module] = [_conv3(3, width), ResBlock(width)]
        for stage in range(stages):
            last = stage == stages - 1
            layers.append(_conv3(width, width, stride=2, bias=False))
            layers.extend(ResBlock(width, group_norm=group_norm and last) for _ in range(blocks_per_stage))
        layers.append(_conv3(width, latent_channels))
        super().__init__(*layers)
        self.latent_channels = latent_channels


class TAEDecoder(nn.Sequential):
    """Raw latent (N, latent_channels, h, w) -> RGB (N, 3, 8h, 8w), approximately in [0, 1]
    (not clamped here, so gradients stay informative; :class:`TinyAutoencoder` clamps)."""

    def __init__(self, latent_channels: int = 4, width: int = 64, group_norm: bool = False,
                 stages: int = 3, blocks_per_stage: int = 3) -> None:
        layers: list[nn.Module] = [SoftClamp(), _conv3(latent_channels, width), nn.ReLU()]
        for stage in range(stages):
            first = stage == 0
            layers.extend(ResBlock(width, group_norm=group_norm and first) for _ in range(blocks_per_stage))
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            layers.append(_conv3(width, width, bias=False))
        layers.extend([ResBlock(width), _conv3(width, 3)])
        super().__init__(*layers)
        self.latent_channels = latent_channels


# ----------------------------------------------------------------------------------------------
# checkpoint handling


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Read a tensor state dict safely (``torch.load(weights_only=True)`` or safetensors).

    Raises:
        CheckpointError: ``"<path>: <reason>"`` when missing, unreadable or not a state dict.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    try:
        if p.suffix == ".safetensors":
            sd: Any = load_safetensors(p)
        else:
            sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as exc:  # unpickling errors, truncated files, zip errors, ...
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{p}: cannot read checkpoint ({type(exc).__name__}: {msg[:200]})") from None
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{p}: not a state dict of tensors")
    return dict(sd)


def _arch_from_state_dict(sd: Mapping[str, torch.Tensor], kind: str, path: Path) -> dict[str, Any]:
    """Infer (latent_channels, width, group_norm) of an encoder/decoder state dict."""
    try:
        if kind == "encoder":
            width = int(sd["0.weight"].shape[0])
            last = max(int(k.split(".")[0]) for k in sd if k.split(".")[0].isdigit())
            latent = int(sd[f"{last}.weight"].shape[0])
        else:
            width = int(sd["1.weight"].shape[0])
            latent = int(sd["1.weight"].shape[1])
    except (KeyError, ValueError, IndexError):
        raise CheckpointError(
            f"{path}: not a TAESD-family {kind} state dict (no "
            f"{'0.weight' if kind == 'encoder' else '1.weight'} convolution)"
        ) from None
    return {"latent_channels": latent, "width": width, "group_norm": any(".pool." in k for k in sd)}


def load_into(module: nn.Module, sd: Mapping[str, torch.Tensor], path: PathLike) -> None:
    """Strictly load ``sd`` into ``module`` (dtype cast to the module's), or raise one
    CheckpointError line listing missing / unexpected / mis-shaped keys."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k} {tuple(sd[k].shape)} != {tuple(own[k].shape)}" for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
                parts.append(f"{label}: {', '.join(items[:3])}{more}")
        raise CheckpointError(
            f"{path}: state dict does not match {type(module).__name__} ({'; '.join(parts)})"
        )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()}, strict=True)


def find_weight_files(directory: PathLike) -> tuple[Path, Path, str]:
    """Find the encoder and decoder checkpoint of a TAESD-family model in ``directory``.

    Accepts the official names (``taesd_encoder.pth``, ``taesdxl_*``, ``taesd3_*``,
    ``taef1_*``, ``taef2_*``, also ``.safetensors``) and any ``*encoder*`` / ``*decoder*`` pair.
    Returns (encoder_path, decoder_path, name) where name is the file prefix (e.g. "taef2") or,
    without one, the folder name.

    Raises:
        CheckpointError: folder missing, no pair found, or several ambiguous pairs.
    """
    d = Path(directory)
    if not d.is_dir():
        raise CheckpointError(f"{d}: TAE weights folder not found")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name.lower().endswith(_WEIGHT_SUFFIXES))
    enc = [p for p in files if "encoder" in p.name.lower()]
    dec = [p for p in files if "decoder" in p.name.lower()]
    if not enc or not dec:
        raise CheckpointError(
            f"{d}: no TAESD-family checkpoint pair (*encoder*.pth and *decoder*.pth) in this folder"
        )

    def prefix(p: Path) -> str:
        return re.split(r"[_\-.]?(?:encoder|decoder)", p.name, maxsplit=1, flags=re.IGNORECASE)[0]

    pairs = [(e, dd) for e in enc for dd in dec if prefix(e).lower() == prefix(dd).lower()]
    if len(pairs) > 1:  # prefer a known family name, then .pth over .safetensors
        known = [pr for pr in pairs if prefix(pr[0]).lower() in KNOWN_PREFIXES]
        pairs = known or pairs
        pth = [pr for pr in pairs if pr[0].suffix != ".safetensors"]
        pairs = pth or pairs
    if not pairs and len(enc) == 1 and len(dec) == 1:
        pairs = [(enc[0], dec[0])]
    if len(pairs) != 1:
        names = ", ".join(p.name for p in enc + dec)
        raise CheckpointError(f"{d}: cannot pick one encoder/decoder pair among {names}")
    e, dd = pairs[0]
    name = prefix(e).strip("_-.") or d.name
    return e, dd, name


# ----------------------------------------------------------------------------------------------
# the autoencoder


def _smooth_ramp(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weights: 1 in the middle, raised-cosine ramps over ``overlap`` pixels at the
    ends that border another tile (flat at image borders). The outer quarter of each ramp is
    near zero so that the tile's zero-padding artefacts do not leak into the blend."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap <= 0:
        return w
    margin = overlap // 4
    span = max(overlap - 2 * margin, 1)
    i = torch.arange(length, dtype=torch.float64) + 0.5
    t = ((i - margin) / span).clamp(0, 1)
    ramp = (0.5 - 0.5 * torch.cos(math.pi * t)).clamp_min(1e-4)
    if at_start:
        w = torch.minimum(w, ramp)
    if at_end:
        w = torch.minimum(w, ramp.flip(0))
    return w


def _tile_starts(size: int, tile: int, stride: int, align: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    starts = [s - s % align for s in starts]
    return sorted(set(starts))


class TinyAutoencoder(nn.Module):
    """TAESD-family tiny autoencoder (Bohan 2023, github.com/madebyollin/taesd): encoder +
    decoder with differentiable :meth:`roundtrip` and seam-free :meth:`roundtrip_tiled`.

    Args:
        latent_channels: 4 (SD 1.x/2.x, SDXL), 16 (SD3, FLUX.1) or 32 (FLUX.2).
        group_norm: TAEF2's mid-block GroupNorm branches.
        width: feature channels (64 in every published checkpoint).
        name: generator name used in datasets (e.g. "taef2").
    """

    def __init__(self, latent_channels: int = 4, group_norm: bool = False, width: int = 64,
                 name: str = "tae") -> None:
        super().__init__()
        self.encoder = TAEEncoder(latent_channels, width=width, group_norm=group_norm)
        self.decoder = TAEDecoder(latent_channels, width=width, group_norm=group_norm)
        self.latent_channels = latent_channels
        self.group_norm = group_norm
        self.name = name

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_files(cls, encoder_path: PathLike, decoder_path: PathLike, name: str | None = None) -> "TinyAutoencoder":
        """Build from an encoder and a decoder checkpoint, inferring the architecture from the
        weights (latent channels, GroupNorm branches). Loads in float32, eval mode."""
        ep, dp = Path(encoder_path), Path(decoder_path)
        esd, dsd = read_state_dict(ep), read_state_dict(dp)
        ea = _arch_from_state_dict(esd, "encoder", ep)
        da = _arch_from_state_dict(dsd, "decoder", dp)
        if ea["latent_channels"] != da["latent_channels"]:
            raise CheckpointError(
                f"{dp}: decoder expects {da['latent_channels']} latent channels but encoder "
                f"{ep.name} produces {ea['latent_channels']}"
            )
        model = cls(latent_channels=ea["latent_channels"], group_norm=ea["group_norm"] or da["group_norm"],
                    width=ea["width"], name=name or ep.stem.split("_")[0])
        load_into(model.encoder, esd, ep)
        load_into(model.decoder, dsd, dp)
        return model.eval()

    @classmethod
    def from_dir(cls, path: PathLike, name: str | None = None) -> "TinyAutoencoder":
        """Load the encoder/decoder pair found in folder ``path`` (see :func:`find_weight_files`)."""
        e, d, found = find_weight_files(path)
        return cls.from_files(e, d, name=name or found)

    def save_dir(self, path: PathLike, prefix: str | None = None) -> tuple[Path, Path]:
        """Write ``<prefix>_encoder.pth`` and ``<prefix>_decoder.pth`` (plain state dicts)."""
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        pre = prefix or self.name
        e, dd = d / f"{pre}_encoder.pth", d / f"{pre}_decoder.pth"
        torch.save(self.encoder.state_dict(), e)
        torch.save(self.decoder.state_dict(), dd)
        return e, dd

    # -- latents ----------------------------------------------------------------------------
    @staticmethod
    def scale_latents(z: torch.Tensor) -> torch.Tensor:
        """Raw latents -> [0, 1] (for 8-bit storage)."""
        return (z / (2 * LATENT_MAGNITUDE) + LATENT_SHIFT).clamp(0, 1)

    @staticmethod
    def unscale_latents(z: torch.Tensor) -> torch.Tensor:
        """[0, 1] -> raw latents."""
        return (z - LATENT_SHIFT) * (2 * LATENT_MAGNITUDE)

    def _param(self) -> torch.Tensor:
        return next(self.parameters())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1], H and W multiples of 8 -> raw latents (N, C, H/8, W/8)."""
        p = self._param()
        return self.encoder(x.to(device=p.device, dtype=p.dtype))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latents -> RGB (N, 3, 8h, 8w) clamped to [0, 1]."""
        p = self._param()
        return self.decoder(z.to(device=p.device, dtype=p.dtype)).clamp(0, 1)

    # -- round trips ------------------------------------------------------------------------
    def roundtrip(self, x: torch.Tensor, quantize_latents: bool = False) -> torch.Tensor:
        """Encode and decode (N, 3, H, W) in [0, 1]; any H, W (reflect-padded to multiples of 8,
        cropped back). Differentiable w.r.t. ``x`` (the optional 8-bit latent quantisation uses
        a straight-through estimator). Returns the input's dtype and device."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        ph, pw = (-h) % DOWNSCALE, (-w) % DOWNSCALE
        xin = x
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            xin = F.pad(x, (0, pw, 0, ph), mode=mode)
        z = self.encode(xin)
        if quantize_latents:
            s = self.scale_latents(z)
            sq = s + ((s * 255).round() / 255 - s).detach()
            z = self.unscale_latents(sq)
        y = self.decode(z)[..., :h, :w]
        return y.to(device=x.device, dtype=x.dtype)

    forward = roundtrip

    def _split_points(self) -> tuple[int, int]:
        """Indices splitting encoder/decoder into the full-resolution, purely local part
        (run in tiles) and the latent-resolution part (run on the whole map: it holds the
        GroupNorm branches, whose statistics are global)."""
        enc_split = max(i for i, m in enumerate(self.encoder)
                        if isinstance(m, nn.Conv2d) and m.stride[0] > 1) + 1
        dec_split = min(i for i, m in enumerate(self.decoder) if isinstance(m, nn.Upsample))
        return enc_split, dec_split

    def roundtrip_tiled(self, x: torch.Tensor, tile: int = 512, overlap: int = 32, halo: int = 64,
                        quantize_latents: bool = False) -> torch.Tensor:
        """Round trip of large images with memory bounded by one tile.

        The full-resolution layers (encoder up to its last down-sampling, decoder from its
        first up-sampling) run on overlapping tiles of ``tile`` pixels, each computed with
        ``halo`` extra pixels of context (discarded) and blended with a raised-cosine window
        over ``overlap`` pixels; the latent-resolution layers (including TAEF2's GroupNorm
        branches, whose statistics span the whole image) run on the whole latent map, which
        is 64x smaller than the image. With ``halo`` at least the receptive field of the
        tiled layers (64 px is exact for the published checkpoints) the result equals
        :meth:`roundtrip` up to float rounding; a smaller halo degrades gracefully (the
        blending hides seams). All sizes are pixels, multiples of 8. Differentiable.
        """
        for label, v in (("tile", tile), ("overlap", overlap), ("halo", halo)):
            if v % DOWNSCALE or v < 0:
                raise ValueError(f"{label} ({v}) must be a non-negative multiple of {DOWNSCALE}")
        if not 0 <= overlap < tile:
            raise ValueError(f"overlap ({overlap}) must be in [0, tile={tile})")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) images, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h <= tile and w <= tile:
            return self.roundtrip(x, quantize_latents=quantize_latents)
        p = self._param()
        ph, pw = (-h) % DOWNSCALE, (-w) % DOWNSCALE
        xp = x.to(device=p.device, dtype=p.dtype)
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            xp = F.pad(xp, (0, pw, 0, ph), mode=mode)
        es, ds = self._split_points()
        enc, dec = list(self.encoder), list(self.decoder)
        enc_head, enc_tail = nn.Sequential(*enc[:es]), nn.Sequential(*enc[es:])
        dec_head, dec_tail = nn.Sequential(*dec[:ds]), nn.Sequential(*dec[ds:])
        t, o, g = tile // DOWNSCALE, overlap // DOWNSCALE, halo // DOWNSCALE  # latent units
        feat = _tiled_apply(enc_head, xp, DOWNSCALE, 1, t, o, g)
        z = enc_tail(feat)
        if quantize_latents:
            s = self.scale_latents(z)
            z = self.unscale_latents(s + ((s * 255).round() / 255 - s).detach())
        y = _tiled_apply(dec_tail, dec_head(z), 1, DOWNSCALE, t, o, g)
        return y.clamp(0, 1)[..., :h, :w].to(device=x.device, dtype=x.dtype)


def _tiled_apply(fn: nn.Module, x: torch.Tensor, in_factor: int, out_factor: int,
                 tile: int, overlap: int, halo: int) -> torch.Tensor:
    """Apply a local, translation-equivariant ``fn`` to ``x`` tile by tile.

    Tiles are laid on a coarse grid (the latent grid): grid cell ``[a, b)`` corresponds to
    input rows ``[a * in_factor, b * in_factor)`` and output rows ``[a * out_factor, ...)``.
    Each tile is computed with ``halo`` cells of extra input context (clipped at the image
    border, where ``fn``'s own padding then matches the untiled run) and blended with its
    neighbours by a raised-cosine window over ``overlap`` cells.
    """
    gh, gw = x.shape[-2] // in_factor, x.shape[-1] // in_factor
    ys = _tile_starts(gh, tile, tile - overlap, 1)
    xs = _tile_starts(gw, tile, tile - overlap, 1)
    out: torch.Tensor | None = None
    norm = torch.zeros((1, 1, gh * out_factor, gw * out_factor), dtype=x.dtype, device=x.device)
    for y0 in ys:
        y1 = min(y0 + tile, gh)
        wy = _smooth_ramp((y1 - y0) * out_factor, overlap * out_factor, y0 > 0, y1 < gh)
        hy0, hy1 = max(y0 - halo, 0), min(y1 + halo, gh)
        for x0 in xs:
            x1 = min(x0 + tile, gw)
            wx = _smooth_ramp((x1 - x0) * out_factor, overlap * out_factor, x0 > 0, x1 < gw)
            hx0, hx1 = max(x0 - halo, 0), min(x1 + halo, gw)
            piece = fn(x[..., hy0 * in_factor:hy1 * in_factor, hx0 * in_factor:hx1 * in_factor])
            piece = piece[..., (y0 - hy0) * out_factor:(y1 - hy0) * out_factor,
                          (x0 - hx0) * out_factor:(x1 - hx0) * out_factor]
            win = (wy[:, None] * wx[None, :]).to(dtype=x.dtype, device=x.device)[None, None]
            if out is None:
                out = torch.zeros((x.shape[0], piece.shape[1], gh * out_factor, gw * out_factor),
                                  dtype=piece.dtype, device=piece.device)
            out[..., y0 * out_factor:y1 * out_factor, x0 * out_factor:x1 * out_factor] += piece * win
            norm[..., y0 * out_factor:y1 * out_factor, x0 * out_factor:x1 * out_factor] += win
    assert out is not None
    return out / norm


#: the TAEF2 weights shipped inside the package (MIT, Ollin Boer Bohan, github.com/madebyollin/taesd)
PACKAGED_TAEF2 = Path(__file__).resolve().parents[1] / "weights" / "taef2"


def packaged_taef2() -> Path | None:
    """The packaged TAEF2 folder when its encoder/decoder pair is installed, else None."""
    d = PACKAGED_TAEF2
    return d if (d / "taef2_encoder.pth").is_file() and (d / "taef2_decoder.pth").is_file() else None


def load_tae(path: PathLike, name: str | None = None) -> TinyAutoencoder:
    """Shortcut for :meth:`TinyAutoencoder.from_dir`."""
    return TinyAutoencoder.from_dir(path, name=name)
