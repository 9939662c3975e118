"""Safe image decoding and 8-bit-exact saving.

Every decoder failure raises :class:`~fakebench.errors.ImageLoadError` whose message is one
line, ``"<path>: <reason>"``. Images come back as RGB float32 arrays of shape (H, W, 3) in
[0, 1] with EXIF orientation applied.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import CheckpointError, ImageLoadError

PathLike = Union[str, "os.PathLike[str]"]
log = logging.getLogger(__name__)

#: Memory one image may take while it is decoded and batched, and the bytes per pixel at that
#: peak: the 8-bit RGB decode (3) + the float32 RGB array (12) + the (3, H, W) float32 copy
#: (12) + its copy in a batch tensor (12), rounded up.
DECODE_MEMORY_BUDGET = 2 * 2**30
PEAK_BYTES_PER_PIXEL = 40
#: Default refusal threshold (pixels, read from the header before decoding): what fits the
#: budget above, about 53.7 M pixels (7300 x 7300). PIL's own bomb limit (179 M pixels) would
#: let a 410 KB PNG of 12000 x 12000 through and take about 6 GB to score it.
DEFAULT_MAX_PIXELS = DECODE_MEMORY_BUDGET // PEAK_BYTES_PER_PIXEL
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif", ".bmp")


def is_image_file(path: PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def _to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to float32 RGB in [0, 1], keeping 16-bit precision."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float32) / 65535.0
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "I":  # 32-bit int; PNG 16-bit greyscale often decodes to this
        arr = np.asarray(img, dtype=np.int64)
        scale = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr.astype(np.float32) / scale, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("float image contains NaN or inf")
        arr = np.clip(arr / (255.0 if arr.max(initial=0) > 1.0 else 1.0), 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # composite on white, the usual rendering of transparent areas
        img = img.convert("RGBA")
        bg = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, img)
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, P, CMYK (PIL inverts Adobe CMYK), YCbCr, 1, ...
    return np.asarray(img, dtype=np.uint8).astype(np.float32) / 255.0


_EXIF_ORIENTATION = 0x0112


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an (H, W, C) array, as ImageOps.exif_transpose does."""
    ops = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: np.transpose(a, (1, 0, 2)), 6: lambda a: np.rot90(a, -1),
           7: lambda a: np.rot90(a, 2).transpose(1, 0, 2), 8: lambda a: np.rot90(a, 1)}
    return np.ascontiguousarray(ops[orientation](arr)) if orientation in ops else arr


def _png16_color(path: Path, img: Image.Image, rawmode: str) -> np.ndarray | None:
    """16-bit colour PNG (RGB/RGBA/LA) at full precision, or None if PIL cannot unpack it.

    PIL has no 16-bit colour mode: it decodes these PNGs keeping only the high byte of each
    sample (rawmode ``...;16B``). Decoding the same stream a second time with the
    little-endian unpacker (``...;16L``) yields the low bytes (same bits per pixel, so PNG
    unfiltering is unchanged); ``hi * 256 + lo`` is the exact 16-bit sample.
    """
    hi = np.asarray(img, dtype=np.uint16)
    try:
        with Image.open(path) as lo_img:
            lo_img.tile = [t._replace(args=rawmode[:-1] + "L") for t in lo_img.tile]
            lo_img.load()
            lo = np.asarray(lo_img, dtype=np.uint16)
    except Exception:  # unknown rawmode for this PIL version: keep the 8-bit decode
        return None
    if lo.shape != hi.shape:
        return None
    arr = (hi * 256 + lo).astype(np.float32) / 65535.0
    if arr.ndim == 3 and arr.shape[2] == 4:  # composite on white, as for 8-bit alpha
        a = arr[..., 3:4]
        arr = arr[..., :3] * a + (1.0 - a)
    elif arr.ndim == 3 and arr.shape[2] == 2:
        a = arr[..., 1:2]
        arr = np.repeat(arr[..., :1] * a + (1.0 - a), 3, axis=2)
    elif arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    return np.ascontiguousarray(arr[..., :3], dtype=np.float32)


def load_image(path: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int | None = None) -> np.ndarray:
    """Decode ``path`` to an RGB float32 array (H, W, 3) in [0, 1].

    Handles PNG 8/16-bit, JPEG (incl. CMYK), WebP, TIFF, GIF (first frame), greyscale,
    palette and alpha (composited on white). EXIF orientation is applied. Images with more
    than ``max_pixels`` pixels are refused before decoding (decompression bombs).

    ``draft_side`` (for detectors that resize their input anyway): a JPEG whose sides are both
    at least twice this is decoded at a reduced DCT scale (1/2, 1/4 or 1/8, PIL's ``draft``)
    whose sides stay >= ``draft_side``; ``max_pixels`` then applies to the reduced size.

    Raises:
        ImageLoadError: one line naming the file and the cause.
    """
    p = Path(path)
    if not p.exists():
        raise ImageLoadError(p, "file not found")
    if p.is_dir():
        raise ImageLoadError(p, "is a directory, not an image")
    if p.stat().st_size == 0:
        raise ImageLoadError(p, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # our own max_pixels check below decides; PIL still raises DecompressionBombError
            # above twice its MAX_IMAGE_PIXELS (about 179 M pixels)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if draft_side and img.format == "JPEG" and min(w, h) >= 2 * int(draft_side):
                    img.draft(img.mode, (int(draft_side), int(draft_side)))
                    w, h = img.size
                if w < 1 or h < 1:
                    raise ImageLoadError(p, f"invalid size {w}x{h}")
                if w * h > max_pixels:
                    raise ImageLoadError(
                        p, f"image too large: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels}"
                    )
                if getattr(img, "n_frames", 1) > 1:
                    img.seek(0)
                fmt = img.format
                rawmode = img.tile[0].args if img.tile else None
                img.load()
                if fmt == "PNG" and isinstance(rawmode, str) and rawmode.endswith(";16B") \
                        and not img.mode.startswith("I"):
                    arr16 = _png16_color(p, img, rawmode)
                    if arr16 is not None:
                        return _orient(arr16, int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1))
                img = ImageOps.exif_transpose(img) or img
                arr = _to_rgb_array(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(p, "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageLoadError(p, f"decompression bomb refused ({exc})".replace("\n", " ")) from None
    except OSError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageLoadError(p, f"corrupt or truncated image ({msg})") from None
    except Exception as exc:  # any decoder failure (ValueError, struct.error, IndexError, ...)
        raise ImageLoadError(p, f"cannot decode ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not np.isfinite(arr).all():  # pragma: no cover - defensive
        raise ImageLoadError(p, "decoded pixels contain NaN or inf")
    return arr


def image_size(path: PathLike) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels (EXIF rotation by 90
    degrees swaps them; callers that need only the shorter side can ignore it).

    Raises:
        ImageLoadError: the header cannot be read.
    """
    p = Path(path)
    try:
        with Image.open(p) as img:
            w, h = img.size
    except FileNotFoundError:
        raise ImageLoadError(p, "file not found") from None
    except Exception as exc:  # UnidentifiedImageError, OSError, ...
        raise ImageLoadError(p, f"cannot read the image header ({type(exc).__name__})") from None
    return int(h), int(w)


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Float [0,1] (H,W,3) or (3,H,W) -> uint8 (H,W,3), rounding to the nearest grey level."""
    a = np.asarray(arr)
    if a.dtype == np.uint8:
        return a
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[2] != 3:
        a = np.transpose(a, (1, 2, 0))
    return np.clip(np.rint(a.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def save_png(path: PathLike, arr: np.ndarray) -> Path:
    """Save an RGB image losslessly. Float input is rounded to the 8-bit grid, so that
    ``load_image(save_png(p, x))`` equals ``quantize(x)`` exactly."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(arr), mode="RGB").save(p, format="PNG", compress_level=1)
    return p


def quantize(arr: np.ndarray) -> np.ndarray:
    """Round a float [0,1] array to the 8-bit grid (what a saved PNG holds), keeping float32."""
    return (to_uint8(arr).astype(np.float32) / 255.0)


def load_safetensors(path: PathLike) -> dict:
    """The tensors of a ``.safetensors`` file, on the CPU (the format holds no code: nothing is
    unpickled). Raises one :class:`~fakebench.errors.CheckpointError` line naming the file when
    it is missing or not a valid safetensors file (garbage, a pickle under that name, truncated)."""
    from safetensors.torch import load_file

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{p}: checkpoint file not found")
    try:
        return load_file(str(p), device="cpu")
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError, ...
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{p}: not a valid safetensors file ({msg})") from None


def safe_text(text: str) -> str:
    """``text`` with undecodable file-name bytes (surrogate escapes of a non-UTF-8 name) shown as
    ``\\xNN``, so it can be written to SQLite, CSV and JSON; stable for the same name."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def note_overwrites(out: PathLike, names: list[str]) -> list[str]:
    """Log ONE warning line when ``out`` already holds files named like fakebench's outputs
    (``names``, relative to ``out``), which the command is about to overwrite; returns them."""
    root = Path(out)
    hit = [n for n in names if (root / n).is_file()]
    if hit:
        shown = ", ".join(safe_text(n) for n in hit[:3]) + (f" and {len(hit) - 3} more" if len(hit) > 3 else "")
        log.warning("%s: overwriting %d existing file(s) with fakebench's output: %s", safe_text(str(root)),
                    len(hit), shown)
    return hit
