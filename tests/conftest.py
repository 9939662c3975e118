"""Shared fixtures: tiny on-disk datasets and detectors built in seconds."""

from __future__ import annotations

import csv
import json
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


def write_image(path: Path, seed: int = 0, size: int = 8) -> Path:
    """A small random RGB image (format from the extension)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def make_truefake_tree(root: Path, size: int = 8) -> dict[str, Path]:
    """TrueFake's release layout, ROOT/<Share>/<Real|Fake>/<Generator>/<Subset>/file: PreSocial
    originals and their Facebook copies (same stem, JPEG), plus folders no ID below asks for."""
    f = {
        "gan2_a": write_image(root / "PreSocial/Fake/StyleGAN2/conf-f-psi-0.5/a.png", 1, size),
        "gan2_b": write_image(root / "PreSocial/Fake/StyleGAN2/conf-f-psi-0.5/b.png", 2, size),
        "sdxl_pre": write_image(root / "PreSocial/Fake/StableDiffusionXL/faces/c.png", 3, size),
        "sdxl_fb": write_image(root / "Facebook/Fake/StableDiffusionXL/faces/c.jpg", 3, size),
        "gan2_fb": write_image(root / "Facebook/Fake/StyleGAN2/conf-f-psi-0.5/a.jpg", 1, size),
        "ffhq_1": write_image(root / "PreSocial/Real/FFHQ/00000/r1.png", 4, size),
        "ffhq_2": write_image(root / "PreSocial/Real/FFHQ/00000/r2.png", 5, size),
        "ffhq_fb": write_image(root / "Facebook/Real/FFHQ/00000/r1.jpg", 4, size),
        "flux": write_image(root / "PreSocial/Fake/FLUX.1/landscapes/d.png", 6, size),
    }
    (root / "PreSocial/Fake/StyleGAN2/conf-f-psi-0.5/notes.txt").write_text("not an image")
    return f


def make_truefake_pattern_tree(root: Path, n: int = 6, size: int = 32, seed: int = 0) -> Path:
    """A learnable TrueFake-layout tree: ``n`` images per (share, generator) folder, reals smooth
    fields with noise, fakes the same with a checkerboard; the Facebook copies are the PreSocial
    images saved as JPEG q=80 (Facebook's quality; the images are below its resize limit). Writes ``split.json``
    (first half of each folder train, then val, then test, by ``<gen>/<sub>/<stem>``)."""
    import json

    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    checker = ((yy + xx) % 2 * 2 - 1)[..., None] * 0.08
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for label_dir, gen, sub in (("Real", "FFHQ", "00000"), ("Fake", "StyleGAN2", "psi-0.5"),
                                ("Fake", "StableDiffusionXL", "faces")):
        for i in range(n):
            base = np.kron(rng.random((size // 8, size // 8, 3)), np.ones((8, 8, 1))) * 0.6 + 0.2
            img = np.clip(base + rng.normal(0, 0.03, base.shape) + (checker if label_dir == "Fake" else 0.0), 0, 1)
            stem = f"{gen[:4].lower()}{i:03d}"
            save_png(root / "PreSocial" / label_dir / gen / sub / f"{stem}.png", img)
            out = root / "Facebook" / label_dir / gen / sub / f"{stem}.jpg"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((img * 255).round().astype(np.uint8)).save(out, quality=80)
            part = "train" if i < n // 2 else ("val" if i < (3 * n) // 4 else "test")
            split[part].append(f"{gen}/{sub}/{stem}")
    (root / "split.json").write_text(json.dumps(split))
    return root


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


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """``fakebench demo`` at seed 0, once per session (about 4-5 minutes on 2 CPU cores):
    (output folder, results). Tests that use it are marked slow. ``FAKEBENCH_DEMO_DIR`` names a
    finished ``fakebench demo --seed 0`` folder to reuse instead (for local reruns; CI builds its own)."""
    from fakebench.demo import run_demo

    done = os.environ.get("FAKEBENCH_DEMO_DIR")
    if done and (Path(done) / "results.json").is_file():
        return Path(done), json.loads((Path(done) / "results.json").read_text())
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, seed=0, progress=False)
