"""Shared fixtures: tiny on-disk datasets and detectors built in seconds."""

from __future__ import annotations

import csv
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fakebench.io import save_png

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """../shared beside the repo (or $FAKEBENCH_SHARED) when present."""
    for cand in (os.environ.get("FAKEBENCH_SHARED"), REPO.parent / "shared"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


def make_tiny_dataset(root: Path, n_per_class: int = 24, size: int = 32, seed: int = 0, bad: bool = False) -> Path:
    """Reals: smooth random colour fields + fine noise. Fakes: the same kind of field
    upsampled 2x by pixel repetition (a crude generator fingerprint). Writes manifest.csv."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(2 * n_per_class):
        label = i % 2
        base = rng.random((size // 4, size // 4, 3))
        img = np.kron(base, np.ones((4, 4, 1)))
        if label == 0:
            img = np.clip(img * 0.8 + rng.normal(0, 0.06, img.shape), 0, 1)
        else:
            half = np.clip(img[::2, ::2] * 0.8 + rng.normal(0, 0.06, (size // 2, size // 2, 3)), 0, 1)
            img = np.kron(half, np.ones((2, 2, 1)))
        name = f"{'fake' if label else 'real'}_{i:03d}.png"
        save_png(root / name, img)
        split = "train" if i < int(2 * n_per_class * 0.6) else ("val" if i < int(2 * n_per_class * 0.8) else "test")
        rows.append((name, label, "rep2x" if label else "real", split, f"src{i}"))
    if bad:
        (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
        rows.append(("broken.png", 1, "rep2x", "test", "broken"))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "split", "source"])
        w.writerows(rows)
    return root / "manifest.csv"


def make_pattern_dataset(root: Path, n_per_class: int = 60, size: int = 32, amplitude: float = 0.06,
                         seed: int = 0) -> Path:
    """An easy detection task: reals are smooth colour fields with fine noise; fakes are the
    same with a checkerboard of ``amplitude`` added (a periodic upsampling trace). A tiny CNN
    learns it in a few epochs, so attack and defense tests have a detector that works.
    Splits 60/20/20 per class. Writes manifest.csv."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * amplitude
    rows = []
    for i in range(2 * n_per_class):
        label = i % 2
        base = np.kron(rng.random((size // 8, size // 8, 3)), np.ones((8, 8, 1))) * 0.6 + 0.2
        img = np.clip(base + rng.normal(0, 0.03, base.shape) + (checker if label else 0.0), 0, 1)
        name = f"{'fake' if label else 'real'}_{i:03d}.png"
        save_png(root / name, img)
        k = i // 2
        split = "train" if k < 0.6 * n_per_class else ("val" if k < 0.8 * n_per_class else "test")
        rows.append((name, label, "checker" if label else "real", split, f"src{i}"))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "split", "source"])
        w.writerows(rows)
    return root / "manifest.csv"


def write_png_bomb(path: Path, w: int, h: int) -> Path:
    """A valid black 1-bit PNG of w x h that compresses to a few kilobytes: a pixel bomb (a
    12000 x 12000 one decodes to 432 MB of 8-bit RGB, 1.7 GB as float32)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (w + 7) // 8)
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for the module: the models in the tests are small, and OpenMP
    oversubscription slowed such tests 5-10x when other processes shared the 2 cores. Use
    ``pytestmark = pytest.mark.usefixtures("one_thread")`` (module scope: set before the
    module's own training fixtures run)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class TwoClass(torch.nn.Module):
    """``[0, z]``: the two-logit view of a one-logit detector, for libraries that expect class
    logits (cross-entropy on it equals BCE on ``z``)."""

    def __init__(self, det: torch.nn.Module) -> None:
        super().__init__()
        self.det = det

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.det(x.float())
        return torch.stack([torch.zeros_like(z), z], 1)


@pytest.fixture()
def two_class() -> type:
    """The :class:`TwoClass` wrapper (for torchattacks / ART comparisons)."""
    return TwoClass


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "tiny")


@pytest.fixture()
def tiny_detector():
    from fakebench import detectors

    torch.manual_seed(0)
    return detectors.create("cnnspot", arch="resnet10", width=8).eval()
