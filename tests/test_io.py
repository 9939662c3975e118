"""fakebench.io: a bad-input corpus built in tmp_path, and 8-bit-exact saving."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakebench import io as fio
from fakebench.errors import ImageLoadError
from fakebench.io import is_image_file, load_image, quantize, save_png, to_uint8


# -- a minimal PNG writer: PIL cannot write 16-bit colour or lie about the size ---------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: Path, arr: np.ndarray) -> Path:
    """Write uint8/uint16 (H, W[, C]) with C in 1..4 as a non-interlaced PNG (filter 0)."""
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    depth = 16 if arr.dtype == np.uint16 else 8
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = arr.astype(">u2" if depth == 16 else "u1").reshape(h, -1).view(np.uint8).reshape(h, -1)
    raw = b"".join(b"\x00" + rows[i].tobytes() for i in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))
    return path


def png_header_only(path: Path, w: int, h: int, color_type: int = 2) -> Path:
    """A PNG that declares w x h pixels (8-bit RGB, or grey with color_type=0) but holds
    almost no data."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
                     + _chunk(b"IEND", b""))
    return path


def assert_one_line_error(path: Path, match: str | None = None) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as ei:
        load_image(path)
    msg = str(ei.value)
    assert "\n" not in msg and path.name in msg, msg
    if match:
        assert match in msg, msg
    return ei.value


def assert_good(arr: np.ndarray, shape: tuple[int, int]) -> None:
    assert arr.dtype == np.float32 and arr.shape == (*shape, 3)
    assert float(arr.min()) >= 0.0 and float(arr.max()) <= 1.0


@pytest.fixture()
def rgb8() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


# -- good inputs ---------------------------------------------------------------------------

def test_save_png_then_load_is_exactly_quantize(tmp_path):
    x = np.random.default_rng(1).random((9, 11, 3)).astype(np.float32)
    back = load_image(save_png(tmp_path / "x.png", x))
    assert_good(back, (9, 11))
    assert np.array_equal(back, quantize(x))
    assert np.array_equal(to_uint8(back), to_uint8(x))  # a second round trip changes nothing
    assert np.array_equal(load_image(save_png(tmp_path / "y.png", back)), back)
    # CHW input is accepted too
    assert np.array_equal(load_image(save_png(tmp_path / "z.png", np.transpose(x, (2, 0, 1)))), quantize(x))


def test_8bit_png_values_exact(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "a.png")
    assert np.array_equal(np.rint(load_image(tmp_path / "a.png") * 255).astype(np.uint8), rgb8)


def test_16bit_greyscale_png_keeps_precision(tmp_path):
    g = np.random.default_rng(2).integers(0, 65536, (7, 9), dtype=np.uint16)
    g[0, 0], g[0, 1] = 1, 257  # values an 8-bit decode would merge
    arr = load_image(write_png(tmp_path / "g16.png", g))
    assert_good(arr, (7, 9))
    np.testing.assert_allclose(arr[..., 0], g / 65535.0, atol=1e-6)
    assert np.array_equal(arr[..., 0], arr[..., 2])


def test_16bit_rgb_png_keeps_precision(tmp_path):
    rgb = np.random.default_rng(3).integers(0, 65536, (6, 10, 3), dtype=np.uint16)
    arr = load_image(write_png(tmp_path / "rgb16.png", rgb))
    assert_good(arr, (6, 10))
    np.testing.assert_allclose(arr, rgb / 65535.0, atol=1e-6)  # the 8-bit decode errs by up to 1/255


def test_16bit_rgba_png_is_composited_on_white_at_full_precision(tmp_path):
    rgba = np.random.default_rng(4).integers(0, 65536, (5, 4, 4), dtype=np.uint16)
    f = rgba / 65535.0
    expected = f[..., :3] * f[..., 3:] + (1 - f[..., 3:])
    np.testing.assert_allclose(load_image(write_png(tmp_path / "rgba16.png", rgba)), expected, atol=1e-6)


def test_one_pixel_image(tmp_path):
    Image.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    arr = load_image(tmp_path / "one.png")
    assert_good(arr, (1, 1))
    np.testing.assert_allclose(arr[0, 0], np.array([10, 20, 30]) / 255.0, atol=1e-7)


def test_cmyk_jpeg_colours_are_approximately_right(tmp_path):
    colours = {"red": ((0, 255, 255, 0), (1, 0, 0)), "cyan": ((255, 0, 0, 0), (0, 1, 1)),
               "black": ((0, 0, 0, 255), (0, 0, 0)), "white": ((0, 0, 0, 0), (1, 1, 1))}
    for name, (cmyk, rgb) in colours.items():
        p = tmp_path / f"{name}.jpg"
        Image.new("CMYK", (16, 16), cmyk).save(p, quality=95)
        assert Image.open(p).mode == "CMYK"
        arr = load_image(p)
        assert_good(arr, (16, 16))
        np.testing.assert_allclose(arr.mean(axis=(0, 1)), rgb, atol=0.05, err_msg=name)


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    img = Image.new("P", (4, 4), 1)
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red (transparent), 1 blue
    img.putpixel((0, 0), 0)
    img.save(tmp_path / "pal.png", transparency=0)
    arr = load_image(tmp_path / "pal.png")
    assert_good(arr, (4, 4))
    np.testing.assert_allclose(arr[0, 0], [1, 1, 1])  # transparent -> white, not red
    np.testing.assert_allclose(arr[1, 1], [0, 0, 1])


def test_la_and_rgba_alpha_composited_on_white(tmp_path):
    Image.new("LA", (3, 3), (100, 128)).save(tmp_path / "la.png")
    a = 128 / 255.0
    np.testing.assert_allclose(load_image(tmp_path / "la.png")[1, 1], [100 / 255.0 * a + 1 - a] * 3, atol=2 / 255)
    Image.new("RGBA", (3, 3), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    np.testing.assert_allclose(load_image(tmp_path / "clear.png"), 1.0)


def test_webp_lossless_and_tiff_are_exact(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "a.webp", lossless=True)
    Image.fromarray(rgb8).save(tmp_path / "a.tiff")
    for name in ("a.webp", "a.tiff"):
        arr = load_image(tmp_path / name)
        assert_good(arr, rgb8.shape[:2])
        assert np.array_equal(np.rint(arr * 255).astype(np.uint8), rgb8), name


def test_multiframe_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 5), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "a.gif").n_frames == 3
    arr = load_image(tmp_path / "a.gif")
    assert_good(arr, (5, 6))
    np.testing.assert_allclose(arr.mean(axis=(0, 1)), [1, 0, 0], atol=0.02)


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((10, 20, 3), np.uint8)
    img[:, :10] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    Image.fromarray(img).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    arr = load_image(tmp_path / "rot.jpg")
    assert_good(arr, (20, 10))  # portrait after rotation
    assert arr[:8].mean() > 0.9 and arr[12:].mean() < 0.1  # the white half is now on top


def test_is_image_file():
    assert is_image_file("a/B.JPG") and is_image_file("x.webp") and is_image_file("x.tif")
    assert not is_image_file("notes.txt") and not is_image_file("x.jpg.txt")


# -- bad inputs: one-line ImageLoadError naming the file -----------------------------------

def test_truncated_png(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    assert_one_line_error(tmp_path / "trunc.png")


def test_corrupt_png_data(tmp_path, rgb8):
    Image.fromarray(rgb8).save(tmp_path / "good.png")
    data = bytearray((tmp_path / "good.png").read_bytes())
    i = data.find(b"IDAT") + 8
    data[i : i + 40] = bytes(b ^ 0x5A for b in data[i : i + 40])
    (tmp_path / "corrupt.png").write_bytes(bytes(data))
    assert_one_line_error(tmp_path / "corrupt.png")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    assert_one_line_error(tmp_path / "empty.png", "empty")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a JPEG\nsecond line\n")
    assert_one_line_error(tmp_path / "notes.jpg", "not a recognised image")


def test_missing_file_and_directory(tmp_path):
    assert_one_line_error(tmp_path / "missing.png", "not found")
    (tmp_path / "dir.png").mkdir()
    assert_one_line_error(tmp_path / "dir.png", "directory")


def test_huge_declared_size_is_refused_quickly_without_allocating(tmp_path):
    p = png_header_only(tmp_path / "huge.png", 100_000, 100_000)
    tracemalloc.start()
    t0 = time.perf_counter()
    err = assert_one_line_error(p)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 20e6
    assert "100000" in str(err)


def test_max_pixels_is_our_limit_not_pils(tmp_path):
    # 9500 x 9500 = 90 M pixels: above PIL's warning level (89 M) and above our default limit
    # (53.7 M, from memory); refused by our own check, with the numbers in the message.
    p = png_header_only(tmp_path / "big.png", 9_500, 9_500, color_type=0)
    with pytest.raises(ImageLoadError) as ei:
        load_image(p, max_pixels=1_000_000)
    assert "9500x9500" in str(ei.value) and "1000000" in str(ei.value)
    with pytest.raises(ImageLoadError, match="exceeds the limit of 53687091"):
        load_image(p)
    # a limit raised above PIL's warning level is ours to keep: not refused as too large or as
    # a bomb (the data is missing instead)
    with pytest.raises(ImageLoadError) as ei:
        load_image(p, max_pixels=100_000_000)
    assert "too large" not in str(ei.value) and "bomb" not in str(ei.value)


def test_any_decoder_exception_becomes_image_load_error(tmp_path, rgb8, monkeypatch):
    Image.fromarray(rgb8).save(tmp_path / "ok.png")

    def boom(img):
        raise IndexError("index out of range")  # what some PIL plugins raise on fuzzed files

    monkeypatch.setattr(fio.ImageOps, "exif_transpose", boom)
    assert_one_line_error(tmp_path / "ok.png", "IndexError")


def test_mutated_files_raise_only_image_load_error(tmp_path, rgb8):
    """Random byte mutations of valid files: decoding either works or fails with one line."""
    Image.fromarray(rgb8).save(tmp_path / "s.png")
    Image.fromarray(rgb8).save(tmp_path / "s.jpg", quality=90)
    Image.fromarray(rgb8).save(tmp_path / "s.gif")
    rng = np.random.default_rng(0)
    failures = 0
    for src in ("s.png", "s.jpg", "s.gif"):
        data = (tmp_path / src).read_bytes()
        for k in range(40):
            b = bytearray(data)
            for _ in range(int(rng.integers(1, 5))):
                b[int(rng.integers(0, min(len(b), 120)))] = int(rng.integers(0, 256))
            if k % 3 == 0:
                b = b[: int(rng.integers(1, len(b)))]
            p = tmp_path / f"m{k}{Path(src).suffix}"
            p.write_bytes(bytes(b))
            try:
                arr = load_image(p)
                assert arr.dtype == np.float32 and arr.ndim == 3 and arr.shape[2] == 3
            except ImageLoadError as exc:
                failures += 1
                assert "\n" not in str(exc) and p.name in str(exc)
    assert failures > 10  # the corpus really contains broken files
