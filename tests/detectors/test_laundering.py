"""laundering-stage1 / laundering-stage2 (Mandelli et al., WIFS 2024): patch aggregation,
persistence, the three-way verdict, and -- with the TAEF2 weights in the shared folder -- a
seeded end-to-end run on the built-in benchmark.

End-to-end data (``build_laundering_dataset``): the built-in benchmark's real 64x64 patches
(60 train / 24 val / 24 test); "laundered" = the same patches through the TAEF2 round trip;
"fully synthetic" = the TAEF2 decoder applied to latents drawn from a Gaussian prior fitted on
the train split's real latents. Patch scorer: ResNet-10 of width 8 on noise residuals, trained
on random 32x32 patches (stage 1: 25 epochs, stage 2: 12); images are scored by 16 random
patches, M = 8.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fakebench import detectors
from fakebench.detectors.base import Detector
from fakebench.detectors.laundering import LAUNDERED, REAL, SYNTHETIC, LaunderingStage, LaunderingTwoStage, two_stage_verdict
from fakebench.generators.latent_prior import LatentGaussianPrior, phase_randomize
from fakebench.train.laundering import build_laundering_dataset, train_laundering
from fakebench.metrics import auc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import shared_dir  # noqa: E402

SMALL = dict(arch="resnet10", width=8, patch=32, num_patches=16, M=8, min_side=0)


pytestmark = pytest.mark.usefixtures("one_thread")


def _small(name: str, **kw) -> LaunderingStage:
    torch.manual_seed(0)
    det = detectors.create(name, **{**SMALL, **kw})
    det.train()
    with torch.no_grad():  # non-trivial batch-norm statistics
        det(torch.rand(4, 3, 32, 32))
    return det.eval()


# -- interface (no weights needed) -------------------------------------------------------------

def test_defaults_follow_the_authors_code():
    det = detectors.create("laundering-stage1")
    assert (det.patch, det.num_patches, det.M, det.min_side, det.sampling) == (96, 800, 600, 256, "random")
    names = {e.name: e for e in detectors.entries()}
    for n in ("laundering-stage1", "laundering-stage2"):
        assert "2024" in names[n].paper and "Mandelli" in names[n].paper
        assert "no public checkpoint" in names[n].weights_hint()


@pytest.mark.parametrize("name", ["laundering-stage1", "laundering-stage2"])
@pytest.mark.parametrize("hw", [(40, 56), (20, 27)])
@pytest.mark.parametrize("sampling", ["random", "grid"])
def test_forward_shape_and_gradient(name, hw, sampling):
    det = _small(name, sampling=sampling)
    x = torch.rand(2, 3, *hw, requires_grad=True)
    y = det(x)
    assert y.shape == (2,)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name,pick", [("laundering-stage1", "highest"), ("laundering-stage2", "lowest")])
def test_score_is_mean_of_selected_patch_logits(name, pick):
    det = _small(name)
    x = torch.rand(3, 3, 45, 50)
    with torch.no_grad():
        uniq, inverse = det.positions(45, 50)
        assert inverse.shape == (16,) and uniq.min() >= 0
        assert (uniq[:, 0] <= 45 - 32).all() and (uniq[:, 1] <= 50 - 32).all()
        xn = (x - det.mean) / det.std
        by_hand = torch.stack([det.net(xn[:, :, i:i + 32, j:j + 32]).squeeze(1)
                               for i, j in uniq[inverse].tolist()], 1)
        assert torch.allclose(det.patch_logits(x), by_hand, atol=1e-5)
        srt = by_hand.sort(1, descending=(pick == "highest")).values
        assert torch.allclose(det(x), srt[:, :8].mean(1), atol=1e-5)
        det.M = 100  # M >= number of patches: plain mean
        assert torch.allclose(det(x), by_hand.mean(1), atol=1e-5)


def test_small_images_are_upscaled_and_patch_sized_ones_cost_one_patch():
    det = _small("laundering-stage1", min_side=48)
    assert det.prepare(torch.rand(1, 3, 24, 40)).shape[-2:] == (48, 80)
    det.min_side = 0
    uniq, inverse = det.positions(32, 32)
    assert len(uniq) == 1 and len(inverse) == 16


def test_same_image_same_score_and_save_load_identical(tmp_path):
    det = _small("laundering-stage2", residual=True)
    det.threshold = -0.4
    x = torch.rand(2, 3, 64, 48)
    assert torch.equal(det(x), det(x))
    det.save(tmp_path / "ck")
    back = detectors.load(tmp_path / "ck")
    assert isinstance(back, LaunderingStage) and back.residual and back.threshold == pytest.approx(-0.4)
    assert torch.equal(det(x), back(x))


def test_pgd_evasion_lowers_the_patch_averaged_score():
    from fakebench import attacks

    det = _small("laundering-stage1", residual=True)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(3))
    x_adv = attacks.create("pgd", eps=4 / 255, steps=5, direction="evade")(det, x, torch.ones(2, dtype=torch.long))
    assert (x_adv - x).abs().max() <= 4 / 255 + 1e-6
    assert (det.score(x_adv) < det.score(x)).all()


class _Fixed(Detector):
    """Returns the mean of channel 0 (stage 1) or channel 1 (stage 2) as the logit."""

    def __init__(self, ch: int, thr: float) -> None:
        super().__init__()
        self.ch, self.threshold = ch, thr

    def forward(self, x):
        return x[:, self.ch].mean((1, 2))


def test_three_way_verdict_logic(tmp_path):
    x = torch.zeros(4, 3, 8, 8)
    x[0, 0], x[0, 1] = 0.2, 0.9  # stage 1 says real: stage 2 not consulted
    x[1, 0], x[1, 1] = 0.8, 0.2  # synthetic, stage 2 below threshold -> laundered
    x[2, 0], x[2, 1] = 0.8, 0.9  # synthetic, stage 2 above threshold -> fully synthetic
    x[3, 0], x[3, 1] = 0.5, 0.9  # exactly at stage 1's threshold -> real
    s1, s2 = _Fixed(0, 0.5), _Fixed(1, 0.5)
    assert two_stage_verdict(s1, s2, x) == [REAL, LAUNDERED, SYNTHETIC, REAL]
    both = LaunderingTwoStage(_small("laundering-stage1"), _small("laundering-stage2"))
    y = both(torch.rand(2, 3, 40, 40))
    assert y.shape == (2, 2)
    v = both.verdict(torch.rand(3, 3, 40, 40))
    assert len(v) == 3 and set(v) <= {REAL, LAUNDERED, SYNTHETIC}
    both.save(tmp_path / "two")
    back = LaunderingTwoStage.load(tmp_path / "two")
    z = torch.rand(2, 3, 36, 44)
    assert torch.equal(back(z), both.eval()(z))


def test_latent_generators_keep_the_statistics_they_claim():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 4, 8, 8, generator=g) * torch.tensor([1.0, 2.0, 0.5, 1.0]).view(1, 4, 1, 1) + 0.3
    z[:, 3] = z[:, 0] * 0.8 + 0.2 * z[:, 3]  # correlated channels
    prior = LatentGaussianPrior(z)
    s = prior.sample(2000, torch.Generator().manual_seed(1))
    assert s.shape == (2000, 4, 8, 8)
    assert torch.allclose(s.mean((0, 2, 3)), z.mean((0, 2, 3)), atol=0.1)
    zc, sc = z.transpose(0, 1).flatten(1), s.transpose(0, 1).flatten(1)
    assert torch.allclose(torch.cov(sc), torch.cov(zc), atol=0.15)
    p = phase_randomize(z, torch.Generator().manual_seed(2))
    assert torch.allclose(torch.fft.fft2(p).abs(), torch.fft.fft2(z).abs(), atol=1e-4)
    assert torch.allclose(p.mean((2, 3)), z.mean((2, 3)), atol=1e-5)
    assert not torch.allclose(p, z, atol=0.1)


# -- end to end on the built-in benchmark (needs the TAEF2 weights) ----------------------------

SHARED = shared_dir()
TAE = SHARED / "weights" / "taef2" if SHARED else None
needs_tae = pytest.mark.skipif(TAE is None or not TAE.is_dir(),
                               reason="shared folder with weights/taef2 not found (../shared or $FAKEBENCH_SHARED)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from fakebench.train import TrainConfig

    root = tmp_path_factory.mktemp("laundering")
    t0 = time.time()
    paths = build_laundering_dataset(root / "data", TAE, seed=0, builtin_options=dict(
        n_train=120, n_val=48, n_test=48, train_steps=0, progress=False))
    t1 = time.time()
    cfg1 = TrainConfig(epochs=25, batch_size=16, lr=1e-3, blur_prob=0.0, jpeg_prob=0.0, patience=25, seed=0,
                       progress=False)
    cfg2 = TrainConfig(epochs=12, batch_size=16, lr=1e-3, blur_prob=0.0, jpeg_prob=0.0, patience=12, seed=0,
                       progress=False)
    model, hists = train_laundering(paths, root / "model", cfg1, cfg2, residual=True, **SMALL)
    t2 = time.time()
    rows = [r for r in csv.DictReader(open(paths["manifest"])) if r["split"] == "test"]
    from fakebench.io import load_image

    x = torch.from_numpy(np.stack([load_image(paths["manifest"].parent / r["path"]) for r in rows]))
    x = x.permute(0, 3, 1, 2).contiguous()
    kinds = np.array([r["kind"] for r in rows])
    print(f"laundering: dataset {t1 - t0:.1f} s, training {t2 - t1:.1f} s")
    return dict(paths=paths, root=root, model=model, hists=hists, x=x, kinds=kinds,
                s1=model.stage1.score(x).numpy(), s2=model.stage2.score(x).numpy())


def _auc(kinds, scores, neg, pos):
    m = np.isin(kinds, (neg, pos))
    return auc((kinds[m] == pos).astype(int), scores[m])


@needs_tae
def test_dataset_keeps_sources_and_splits(trained):
    paths = trained["paths"]
    rows = list(csv.DictReader(open(paths["manifest"])))
    by_kind = {k: [r for r in rows if r["kind"] == k] for k in (REAL, LAUNDERED, SYNTHETIC)}
    assert len(by_kind[REAL]) == len(by_kind[LAUNDERED]) == len(by_kind[SYNTHETIC]) == 108
    real_src = {(r["source"], r["split"]) for r in by_kind[REAL]}
    assert {(r["source"], r["split"]) for r in by_kind[LAUNDERED]} <= real_src
    s2 = list(csv.DictReader(open(paths["stage2"])))
    assert len(s2) == 216 and {r["label"] for r in s2} == {"0", "1"}
    s1 = list(csv.DictReader(open(paths["stage1"])))
    assert sum(r["label"] == "0" for r in s1) == 108
    # laundering keeps the content (high PSNR); the fully synthetic images do not
    from fakebench.io import load_image

    base = paths["manifest"].parent
    real = {Path(r["path"]).name: load_image(base / r["path"]) for r in by_kind[REAL]}
    psnr = {k: np.mean([10 * np.log10(1 / max(np.mean((load_image(base / r["path"]) - real[Path(r["path"]).name]) ** 2),
                                             1e-10)) for r in by_kind[k]]) for k in (LAUNDERED, SYNTHETIC)}
    print(f"PSNR vs the real patch: laundered {psnr[LAUNDERED]:.1f} dB, synthetic {psnr[SYNTHETIC]:.1f} dB")
    assert psnr[LAUNDERED] > 25 and psnr[SYNTHETIC] < 20
    t = time.time()  # same settings: reused
    assert build_laundering_dataset(trained["root"] / "data", TAE, seed=0, builtin_options=dict(
        n_train=120, n_val=48, n_test=48, train_steps=0, progress=False)) == paths
    assert time.time() - t < 5


@needs_tae
def test_stage2_separates_laundered_from_fully_synthetic(trained):
    a = _auc(trained["kinds"], trained["s2"], LAUNDERED, SYNTHETIC)
    print(f"stage 2 AUC laundered vs fully synthetic: {a:.3f}")
    assert a >= 0.9


@needs_tae
def test_stage1_separates_real_from_both(trained):
    k, s = trained["kinds"], trained["s1"]
    a_l, a_s = _auc(k, s, REAL, LAUNDERED), _auc(k, s, REAL, SYNTHETIC)
    a_both = auc((k != REAL).astype(int), s)
    print(f"stage 1 AUC real vs laundered {a_l:.3f}, real vs fully synthetic {a_s:.3f}, real vs both {a_both:.3f}")
    assert a_l >= 0.9 and a_s >= 0.9 and a_both >= 0.9


@needs_tae
def test_three_way_verdict_on_held_out_patches(trained, tmp_path):
    model, x, k = trained["model"], trained["x"], trained["kinds"]
    v = np.array(model.verdict(x))
    acc = {c: float((v[k == c] == c).mean()) for c in (REAL, LAUNDERED, SYNTHETIC)}
    print("three-way accuracy:", {c: round(a, 2) for c, a in acc.items()}, "overall", round(float((v == k).mean()), 2))
    assert min(acc.values()) >= 0.6 and float((v == k).mean()) >= 0.75
    back = LaunderingTwoStage.load(trained["root"] / "model")
    assert back.verdict(x) == list(v)
    assert back.stage1.threshold == model.stage1.threshold == trained["hists"]["stage1"]["image_threshold"]
