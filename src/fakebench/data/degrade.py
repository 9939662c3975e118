"""Image degradations: JPEG, resize, Gaussian blur, crop. Pure functions.

One implementation serves training augmentation (:mod:`fakebench.data.transforms`, numpy
single images) and attacks (:mod:`fakebench.attacks.degradations`, torch batches): the numpy
versions call the torch ones (or share the same core), so both paths give the same pixels.

Torch functions take float tensors in [0, 1] of shape (N, C, H, W) (or (C, H, W), returned
with the same rank) and return a new tensor on the input's device and dtype. ``resize``,
``blur`` and ``crop`` are differentiable; ``jpeg`` is not (real PIL codec round trip).
Numpy functions take and return (H, W, 3) float arrays in [0, 1] (float32 out).
"""

from __future__ import annotations

import math
from io import BytesIO
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError
from ..io import to_uint8

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
INTERPOLATIONS = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
#: Gaussian kernel half-width in sigmas (scipy.ndimage.gaussian_filter's default).
BLUR_TRUNCATE = 4.0


# -- argument checks -----------------------------------------------------------------------

def check_quality(quality: object) -> int:
    if isinstance(quality, bool) or not isinstance(quality, (int, float, np.integer, np.floating)) \
            or not float(quality).is_integer() or not 1 <= int(quality) <= 100:
        raise ConfigError(f"jpeg quality: expected an integer in 1..100, got {quality!r}")
    return int(quality)


def check_subsampling(subsampling: str) -> int:
    if subsampling not in SUBSAMPLING:
        raise ConfigError(f"jpeg subsampling: expected one of {', '.join(SUBSAMPLING)}, got {subsampling!r}")
    return SUBSAMPLING[subsampling]


def check_sigma(sigma: float) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)):
        raise ConfigError(f"blur sigma: expected a finite number >= 0 (pixels), got {sigma!r}")
    s = float(sigma)
    if not math.isfinite(s) or s < 0:
        raise ConfigError(f"blur sigma: expected a finite number >= 0 (pixels), got {sigma!r}")
    return s


def check_interpolation(interpolation: str) -> str:
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"resize interpolation: expected one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    return interpolation


def check_scale(scale: object) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(scale)) or float(scale) <= 0:
        raise ConfigError(f"resize scale: expected a finite number > 0, got {scale!r}")
    return float(scale)


def _batched(x: torch.Tensor, what: str) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor):
        raise ConfigError(f"{what}: expected a torch tensor, got {type(x).__name__} (use {what}_np for numpy)")
    if x.ndim == 3:
        return x.unsqueeze(0), True
    if x.ndim != 4:
        raise ConfigError(f"{what}: expected shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x, False


def _unbatch(y: torch.Tensor, squeeze: bool) -> torch.Tensor:
    return y[0] if squeeze else y


def _np_to_torch(img: np.ndarray, what: str) -> torch.Tensor:
    a = np.asarray(img)
    if a.ndim != 3:
        raise ConfigError(f"{what}: expected an (H, W, C) array, got shape {a.shape}")
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


def _torch_to_np(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t[0].permute(1, 2, 0).numpy(), dtype=np.float32)


# -- JPEG ----------------------------------------------------------------------------------

def _jpeg_uint8(a: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    """PIL JPEG encode + decode of one (H, W, 3) uint8 image."""
    buf = BytesIO()
    Image.fromarray(a, mode="RGB").save(buf, format="JPEG", quality=quality, subsampling=subsampling)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def jpeg_np(img: np.ndarray, quality: int, subsampling: str = "4:2:0") -> np.ndarray:
    """JPEG round trip of one (H, W, 3) image in [0, 1] (rounded to 8 bits first).
    Output float32 on the 8-bit grid."""
    q, ss = check_quality(quality), check_subsampling(subsampling)
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ConfigError(f"jpeg_np: expected an (H, W, 3) array, got shape {a.shape}")
    return _jpeg_uint8(to_uint8(a), q, ss).astype(np.float32) / 255.0


def jpeg(x: torch.Tensor, quality: int, subsampling: str = "4:2:0") -> torch.Tensor:
    """Real JPEG (PIL/libjpeg) encode + decode of every image of a (N, 3, H, W) batch.

    ``quality`` 1..100; ``subsampling`` "4:4:4", "4:2:2" or "4:2:0" (chroma). The input is
    rounded to 8 bits; the output lies on the 8-bit grid (k/255). Not differentiable (use
    :func:`fakebench.attacks.eot.jpeg_bpda` or ``jpeg_diff`` inside attacks).
    """
    q, ss = check_quality(quality), check_subsampling(subsampling)
    xb, squeeze = _batched(x, "jpeg")
    if xb.shape[1] != 3:
        raise ConfigError(f"jpeg: expected 3 channels (RGB), got {xb.shape[1]}")
    arr = xb.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    out = np.stack([_jpeg_uint8(to_uint8(a), q, ss) for a in arr]) if len(arr) else np.zeros(arr.shape, np.uint8)
    y = torch.from_numpy(out.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    dtype = x.dtype if x.dtype.is_floating_point else torch.float32
    return _unbatch(y.to(device=x.device, dtype=dtype), squeeze)


# -- resize --------------------------------------------------------------------------------

def resized_size(h: int, w: int, scale: float | None = None, max_side: int | None = None) -> tuple[int, int]:
    """Output (h, w) for a scale factor, or for fitting the longer side into ``max_side``
    (never enlarging). Sides are rounded and at least 1. Exactly one of the two must be given."""
    if (scale is None) == (max_side is None):
        raise ConfigError("resize: give exactly one of scale or max_side")
    if max_side is not None:
        if isinstance(max_side, bool) or int(max_side) != max_side or int(max_side) < 1:
            raise ConfigError(f"resize max_side: expected an integer >= 1, got {max_side!r}")
        s = min(1.0, int(max_side) / max(h, w))
    else:
        s = check_scale(scale)
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def resize_to(x: torch.Tensor, size: tuple[int, int], interpolation: str = "bilinear",
              antialias: bool = True) -> torch.Tensor:
    """Resize a (N, C, H, W) batch to ``size`` = (h, w) (differentiable). ``antialias`` applies
    to bilinear / bicubic shrinking (upscaling is plain interpolation). The EOT ``resize`` op
    calls this too, so attacks optimise through the resize they are scored against."""
    h, w = int(size[0]), int(size[1])
    if (h, w) == tuple(x.shape[-2:]):
        return x
    if interpolation in ("bilinear", "bicubic"):
        shrink = h < x.shape[-2] or w < x.shape[-1]
        return F.interpolate(x, size=(h, w), mode=interpolation, align_corners=False, antialias=antialias and shrink)
    return F.interpolate(x, size=(h, w), mode=interpolation)


def resize(x: torch.Tensor, scale: float | None = None, max_side: int | None = None, restore: bool = False,
           interpolation: str = "bilinear", antialias: bool = True) -> torch.Tensor:
    """Resize a batch by ``scale`` or so that its longer side is at most ``max_side`` pixels.

    ``restore=True`` resizes back to the original size afterwards (a resampling round trip).
    ``interpolation``: nearest, nearest-exact, bilinear, bicubic or area; ``antialias``
    applies to bilinear/bicubic downscaling. Output clamped to [0, 1]. Differentiable.
    """
    check_interpolation(interpolation)
    xb, squeeze = _batched(x, "resize")
    h, w = int(xb.shape[-2]), int(xb.shape[-1])
    size = resized_size(h, w, scale, max_side)
    y = resize_to(xb, size, interpolation, antialias)
    if restore:
        y = resize_to(y, (h, w), interpolation, antialias)
    if y is xb:
        return x.clone()
    return _unbatch(y.clamp(0.0, 1.0), squeeze)


def resize_np(img: np.ndarray, scale: float | None = None, max_side: int | None = None, restore: bool = False,
              interpolation: str = "bilinear", antialias: bool = True) -> np.ndarray:
    """:func:`resize` of one (H, W, C) array."""
    return _torch_to_np(resize(_np_to_torch(img, "resize_np"), scale, max_side, restore, interpolation, antialias))


# -- Gaussian blur -------------------------------------------------------------------------

def gaussian_kernel1d(sigma: float, truncate: float = BLUR_TRUNCATE) -> torch.Tensor:
    """Normalized 1-D Gaussian, radius ``int(truncate * sigma + 0.5)`` (as scipy.ndimage)."""
    s = check_sigma(sigma)
    r = int(truncate * s + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / s) ** 2) if s > 0 else (t == 0).double()
    return k / k.sum()


def _symmetric_index(n: int, r: int, device: torch.device) -> torch.Tensor:
    """Indices of a length-n axis padded by r on each side, mirrored with the edge repeated
    (scipy 'reflect': d c b a | a b c d | d c b a), valid for any r."""
    idx = torch.arange(-r, n + r, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def _conv_last_axis(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Correlate the last axis of x (any shape) with the odd 1-D kernel k (K,), symmetric
    padding. Written as unfold + matmul, several times faster on CPU than conv1d/conv2d."""
    r = (k.shape[-1] - 1) // 2
    padded = x.index_select(-1, _symmetric_index(x.shape[-1], r, x.device))
    return padded.unfold(-1, k.shape[-1], 1) @ k


def _per_image_kernels(s: torch.Tensor, truncate: float = BLUR_TRUNCATE) -> torch.Tensor:
    """(N, K) normalized Gaussians, one per sigma, each cut at its own radius
    ``int(truncate * sigma + 0.5)`` (as scipy) and zero-padded to the largest radius."""
    r = int(truncate * float(s.max()) + 0.5)
    t = torch.arange(-r, r + 1, dtype=torch.float64)
    radius = (truncate * s + 0.5).floor().view(-1, 1)
    k = torch.exp(-0.5 * (t.view(1, -1) / s.clamp_min(1e-12).view(-1, 1)) ** 2)
    k = torch.where(t.view(1, -1).abs() <= radius, k, torch.zeros_like(k))
    k = torch.where((s <= 0).view(-1, 1), (t == 0).double().view(1, -1).expand_as(k), k)
    return k / k.sum(1, keepdim=True)


def blur(x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels (0 = identity): one number for the
    whole batch, or an (N,) tensor with one sigma per image (what EOT draws).

    Separable kernel of radius ``int(4 sigma + 0.5)``, symmetric padding (scipy.ndimage
    ``mode='reflect'``), so it equals ``scipy.ndimage.gaussian_filter`` per channel; this is
    the blur of the CNNSpot recipe (Wang et al. 2020) and of the EOT ``blur`` op. Differentiable.
    """
    if isinstance(sigma, torch.Tensor) and sigma.numel() > 1:
        xb, squeeze = _batched(x, "blur")
        s = sigma.detach().double().cpu().reshape(-1)
        if len(s) != len(xb):
            raise ConfigError(f"blur sigma: {len(s)} values for {len(xb)} images")
        if not bool(torch.isfinite(s).all()) or bool((s < 0).any()):
            raise ConfigError("blur sigma: expected finite numbers >= 0 (pixels)")
        if float(s.max()) == 0:
            return x.clone()
        dtype = xb.dtype if xb.dtype.is_floating_point else torch.float32
        k = _per_image_kernels(s).to(device=xb.device, dtype=dtype).view(len(xb), 1, 1, -1)  # (N, 1, 1, K)
        r = (k.shape[-1] - 1) // 2
        y = xb.to(dtype)
        y = (y.index_select(-1, _symmetric_index(y.shape[-1], r, y.device)).unfold(-1, k.shape[-1], 1)
             * k.unsqueeze(-2)).sum(-1)  # along W
        y = y.transpose(-1, -2)
        y = (y.index_select(-1, _symmetric_index(y.shape[-1], r, y.device)).unfold(-1, k.shape[-1], 1)
             * k.unsqueeze(-2)).sum(-1).transpose(-1, -2)  # along H
        return _unbatch(y, squeeze)
    s = check_sigma(float(sigma))
    xb, squeeze = _batched(x, "blur")
    if s == 0:
        return x.clone()
    dtype = xb.dtype if xb.dtype.is_floating_point else torch.float32
    k = gaussian_kernel1d(s).to(device=xb.device, dtype=dtype)
    y = _conv_last_axis(xb.to(dtype), k)  # along W
    y = _conv_last_axis(y.transpose(-1, -2), k).transpose(-1, -2)  # along H
    return _unbatch(y, squeeze)


def blur_np(img: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`blur` of one (H, W, C) array."""
    if check_sigma(sigma) == 0:
        return np.array(img, dtype=np.float32, copy=True)
    return _torch_to_np(blur(_np_to_torch(img, "blur_np"), sigma))


# -- crop ----------------------------------------------------------------------------------

def crop_box(h: int, w: int, size: int | Sequence[int], top: int | None = None, left: int | None = None,
             center: bool = True) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a crop of ``size`` (int or (h, w)) from an h x w image.

    Offsets not given are centred (``center=True``) or 0. Raises ConfigError if the crop does
    not fit.
    """
    ch, cw = (int(size), int(size)) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if ch < 1 or cw < 1:
        raise ConfigError(f"crop size: expected positive sides, got {size!r}")
    if ch > h or cw > w:
        raise ConfigError(f"crop: {ch}x{cw} does not fit in a {h}x{w} image")
    t = int(top) if top is not None else ((h - ch) // 2 if center else 0)
    lf = int(left) if left is not None else ((w - cw) // 2 if center else 0)
    if not (0 <= t <= h - ch and 0 <= lf <= w - cw):
        raise ConfigError(f"crop: offset (top={t}, left={lf}) puts a {ch}x{cw} crop outside a {h}x{w} image")
    return t, lf, ch, cw


def crop(x: torch.Tensor, size: int | Sequence[int], top: int | None = None, left: int | None = None,
         center: bool = True) -> torch.Tensor:
    """Crop every image of a batch to ``size`` at (top, left); see :func:`crop_box`."""
    xb, squeeze = _batched(x, "crop")
    t, lf, ch, cw = crop_box(int(xb.shape[-2]), int(xb.shape[-1]), size, top, left, center)
    return _unbatch(xb[..., t : t + ch, lf : lf + cw].clone(), squeeze)


def crop_np(img: np.ndarray, size: int | Sequence[int], top: int | None = None, left: int | None = None,
            center: bool = True) -> np.ndarray:
    """Crop one (H, W, C) array; see :func:`crop_box`."""
    a = np.asarray(img)
    t, lf, ch, cw = crop_box(a.shape[0], a.shape[1], size, top, left, center)
    return np.ascontiguousarray(a[t : t + ch, lf : lf + cw])
