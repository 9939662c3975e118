"""Stable Diffusion laundering (Mandelli et al. 2024): tiled round trips without seams, any
TAESD-family weights folder, the optional diffusers backends' error, and the effect on a
trained detector (a laundered real photo looks synthetic)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fakebench import attacks, detectors
from fakebench.errors import ConfigError, FakebenchError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import shared_dir  # noqa: E402


@pytest.fixture(scope="module")
def tae_dir(tmp_path_factory):
    """A seeded random TAESD-shaped autoencoder (narrow, so it runs fast) saved as a weights folder."""
    from fakebench.generators.tae import TinyAutoencoder

    torch.manual_seed(0)
    m = TinyAutoencoder(latent_channels=4, width=16, name="taetest")
    d = tmp_path_factory.mktemp("taetest")
    m.save_dir(d)
    return d


def _image(h=96, w=104, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bilinear", align_corners=False)
    return (base + 0.05 * torch.randn(1, 3, h, w, generator=g)).clamp(0, 1)


def test_tiled_laundering_is_seamless(tae_dir, one_thread):
    x = _image(64, 72)
    whole = attacks.create("launder", weights=str(tae_dir), direction="all", tile=512).launder(x)
    tiled = attacks.create("launder", weights=str(tae_dir), direction="all", tile=32, overlap=8, halo=64).launder(x)
    assert whole.shape == tiled.shape == x.shape
    assert float((whole - tiled).abs().max()) < 1e-4  # the same as the untiled round trip
    # no step at the tile borders: the jump between neighbouring columns/rows there is what it is untiled
    for dim, borders in ((3, [24, 32, 40, 56]), (2, [24, 32])):  # where the 32-pixel tiles meet
        jt = (tiled.narrow(dim, 1, tiled.shape[dim] - 1) - tiled.narrow(dim, 0, tiled.shape[dim] - 1)).abs()
        jw = (whole.narrow(dim, 1, whole.shape[dim] - 1) - whole.narrow(dim, 0, whole.shape[dim] - 1)).abs()
        idx = torch.tensor([b - 1 for b in borders])
        assert torch.allclose(jt.index_select(dim, idx).mean(), jw.index_select(dim, idx).mean(), rtol=1e-3)
    # a halo shorter than the receptive field would differ (what the check above guards against)
    short = attacks.create("launder", weights=str(tae_dir), direction="all", tile=32, overlap=8, halo=0).launder(x)
    assert float((whole - short).abs().max()) > 1e-3


def test_direction_and_weights_folder(tae_dir, tiny_detector):
    x = torch.cat([_image(32, 32, 1), _image(32, 32, 2)])
    y = torch.tensor([0, 1])
    atk = attacks.create("launder", weights=str(tae_dir))
    assert atk.threat.direction == "spoof"
    res = atk.perturb(tiny_detector, x, y)
    out = res.x_adv
    assert torch.equal(out[1], x[1])  # synthetic images are left alone by default
    assert float((out[0] - x[0]).abs().mean()) > 1e-3
    assert torch.equal(torch.round(out[0] * 255) / 255, out[0])  # 8-bit
    assert res.queries.tolist() == [0, 0]  # processing only: no detector query
    assert atk.params()["backend"] == "tae"


def test_option_errors(tmp_path):
    with pytest.raises(ConfigError, match="weights=DIR"):
        attacks.create("launder")
    with pytest.raises(FakebenchError, match="not found"):
        attacks.create("launder", weights=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="multiple of 8"):
        attacks.create("launder", weights=str(tmp_path), tile=100)
    with pytest.raises(ConfigError, match="backend"):
        attacks.create("launder", backend="gan")


@pytest.mark.skipif(importlib.util.find_spec("diffusers") is not None, reason="diffusers is installed")
@pytest.mark.parametrize("opts", [{"vae_path": "."}, {"pipeline_path": ".", "strength": [0.1, 0.3]},
                                  {"backend": "sd-vae"}])
def test_diffusers_backends_say_what_to_install(opts):
    with pytest.raises(ConfigError, match=r"pip install 'fakebench\[sd\]'") as e:
        attacks.create("launder", **opts)
    assert "\n" not in str(e.value)


def test_strength_needs_img2img(tae_dir):
    with pytest.raises(ConfigError, match="strength"):
        attacks.create("launder", weights=str(tae_dir), strength=0.3)


def _kodak_crops(folder: Path, names: list[str], per_image: int, size: int, seed: int) -> torch.Tensor:
    from fakebench.io import load_image

    g = torch.Generator().manual_seed(seed)
    out = []
    for n in names:
        im = torch.from_numpy(load_image(folder / n)).permute(2, 0, 1)
        h, w = im.shape[-2:]
        for _ in range(per_image):  # crops on the 8-pixel latent grid
            i = int(torch.randint(0, (h - size) // 8 + 1, (1,), generator=g)) * 8
            j = int(torch.randint(0, (w - size) // 8 + 1, (1,), generator=g)) * 8
            out.append(im[:, i : i + size, j : j + size])
    return torch.stack(out)


def test_laundering_makes_real_photos_look_synthetic(one_thread):
    """A CPU-sized CNNSpot (ResNet-10, width 8) trained, seeded, on 32-pixel crops of 16 Kodak
    photos (real) paired with the same crops passed three times through TAEF2 (synthetic: the
    latent decoder's trace, amplified so that 300 CPU steps learn it); crops of the 8 held-out
    photos laundered ONCE through TAEF2 get a higher synthetic score (per photo: the mean over
    its 8 crops)."""
    shared = shared_dir()
    if shared is None or not (shared / "weights" / "taef2").is_dir() or not (shared / "data" / "kodak").is_dir():
        pytest.skip("needs ../shared with weights/taef2 and data/kodak")
    weights, kodak = shared / "weights" / "taef2", shared / "data" / "kodak"
    names = sorted(p.name for p in kodak.glob("*.png"))
    assert len(names) == 24
    launder = attacks.create("launder", weights=str(weights), direction="all", batch_size=32)
    real = _kodak_crops(kodak, names[:16], 8, 32, seed=0)
    fake = real
    for _ in range(3):  # paired: the same content, laundered (three round trips)
        fake = torch.round(launder.launder(fake) * 255) / 255
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch="resnet10", width=8)
    opt = torch.optim.Adam(det.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        i = torch.randint(0, len(real), (16,), generator=g)
        x = torch.cat([real[i], fake[i]])
        y = torch.cat([torch.zeros(16), torch.ones(16)])
        det.train()
        loss = F.binary_cross_entropy_with_logits(det(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    det.eval()
    test = _kodak_crops(kodak, names[16:], 8, 32, seed=2)  # held-out photos, 8 crops each
    atk = attacks.create("launder", weights=str(weights), batch_size=32)
    adv = atk(det, test, torch.zeros(len(test), dtype=torch.long))
    with torch.no_grad():
        before, after = det(test).view(8, 8), det(adv).view(8, 8)
    up = after.mean(1) - before.mean(1)
    print(f"[launder] synthetic score of held-out real crops {before.mean():.2f} -> {after.mean():.2f} "
          f"(raised for {(after > before).float().mean():.2f} of crops, {(up > 0).float().mean():.2f} of photos); "
          f"judged synthetic {(before > 0).float().mean():.2f} -> {(after > 0).float().mean():.2f}")
    assert float(up.mean()) > 0.5
    assert int((up > 0).sum()) >= 6
