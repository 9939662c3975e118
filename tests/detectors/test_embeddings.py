"""embedding-pca / embedding-ae (Mundra et al., CVPRW 2023): interface, persistence, separation.

Face test data (built offline from ``skimage.data.lfw_subset()``, 100 grey 25x25 LFW faces, which
are already aligned crops -- eyes near rows 8, columns 7 and 15):

* "synthetic" = every face warped by ONE fixed similarity transform into a 32x32 frame that puts
  the eyes at the canonical positions (11, 12) and (21, 12): all faces share one rigid
  alignment, as GAN profile photos inherit the eye alignment of their training faces;
* "real" = the same faces with a random similarity ON TOP (rotation +-30 deg, scale x0.7-1.4
  log-uniform, shift +-8 px, redrawn until the eyes move >= 3 px on average), two poses per
  face: the free pose and framing of real profile photos.

Both kinds go through one bilinear warp with reflected borders, so resampling and borders are
no cue; identities are the same on both sides, so only geometry differs. The embeddings are
fitted on synthetic faces only (plus mirror images, which keep the eye alignment), and
evaluated by 5-fold cross-validation over identities: a face's test versions never take part
in fitting.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import AffineTransform, warp

from fakebench import detectors
from fakebench.detectors.embeddings import EmbeddingPCA
from fakebench.train.embeddings import fit_autoencoder, fit_pca
from fakebench.metrics import auc

OUT = 32
LFW_EYES = ((7.0, 8.0), (15.0, 8.0))  # (x, y) of the eyes in lfw_subset crops
CANON = ((11.0, 12.0), (21.0, 12.0))  # (x, y) of the eyes in the 32x32 synthetic-face frame


pytestmark = pytest.mark.usefixtures("one_thread")


def _similarity(src, dst) -> np.ndarray:
    """3x3 similarity mapping the two points ``src`` onto ``dst`` (complex-number form)."""
    (x1, y1), (x2, y2) = src
    (u1, v1), (u2, v2) = dst
    s = complex(u2 - u1, v2 - v1) / complex(x2 - x1, y2 - y1)
    t = complex(u1, v1) - s * complex(x1, y1)
    return np.array([[s.real, -s.imag, t.real], [s.imag, s.real, t.imag], [0.0, 0.0, 1.0]])


def _pose(rng: np.random.Generator, max_angle=30.0, scales=(0.7, 1.4), max_shift=8.0, min_eye_move=3.0) -> np.ndarray:
    c = (OUT - 1) / 2
    while True:
        th = np.deg2rad(rng.uniform(-max_angle, max_angle))
        s = np.exp(rng.uniform(np.log(scales[0]), np.log(scales[1])))
        r = s * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        t = np.array([c, c]) - r @ np.array([c, c]) + rng.uniform(-max_shift, max_shift, 2)
        moved = np.mean([np.linalg.norm(r @ np.array(e) + t - np.array(e)) for e in CANON])
        if moved >= min_eye_move:
            return np.vstack([np.hstack([r, t[:, None]]), [0.0, 0.0, 1.0]])


def _warp(face: np.ndarray, m: np.ndarray) -> np.ndarray:
    g = warp(face, AffineTransform(matrix=m).inverse, output_shape=(OUT, OUT), order=1, mode="reflect")
    return np.repeat(g[None], 3, 0)


def lfw_aligned_vs_posed(seed: int = 0, poses: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(synthetic (100, 3, 32, 32), real (poses, 100, 3, 32, 32)), see the module docstring."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    rng = np.random.default_rng(seed)
    m = _similarity(LFW_EYES, CANON)
    fake = np.stack([_warp(f, m) for f in faces])
    real = np.stack([np.stack([_warp(f, _pose(rng) @ m) for f in faces]) for _ in range(poses)])
    return (torch.tensor(fake, dtype=torch.float32).clamp(0, 1), torch.tensor(real, dtype=torch.float32).clamp(0, 1))


@pytest.fixture(scope="module")
def face_sets():
    return lfw_aligned_vs_posed()


def _cross_validated(fit, fake, real, folds=5):
    s_fake, s_real = [], []
    for k in range(folds):
        test = np.arange(len(fake))[k::folds]
        train = np.setdiff1d(np.arange(len(fake)), test)
        det = fit(torch.cat([fake[train], fake[train].flip(-1)]))
        s_fake.append(det.score(fake[test]))
        s_real.append(det.score(real[:, test].flatten(0, 1)))
    sf, sr = torch.cat(s_fake).numpy(), torch.cat(s_real).numpy()
    y = np.r_[np.ones(len(sf)), np.zeros(len(sr))]
    return auc(y, np.r_[sf, sr]), float((sf > 0).mean()), float((sr < 0).mean())


def test_pca_separates_rigidly_aligned_faces_from_posed_faces(face_sets):
    fake, real = face_sets
    a, fake_pos, real_neg = _cross_validated(lambda x: fit_pca(x, dim=8, size=12, grayscale=True, seed=0), fake, real)
    print(f"embedding-pca AUC {a:.3f}, synthetic > 0: {fake_pos:.2f}, real < 0: {real_neg:.2f}")
    assert a >= 0.9
    # sign convention: tau is the 95% quantile of held-out synthetic errors
    assert fake_pos >= 0.8 and real_neg >= 0.6


def test_autoencoder_separates_rigidly_aligned_faces_from_posed_faces(face_sets):
    fake, real = face_sets
    a, fake_pos, real_neg = _cross_validated(
        lambda x: fit_autoencoder(x, steps=300, seed=0, dim=16, size=16, grayscale=True, width=8, lr=3e-3), fake, real)
    print(f"embedding-ae AUC {a:.3f}, synthetic > 0: {fake_pos:.2f}, real < 0: {real_neg:.2f}")
    assert a >= 0.9
    assert fake_pos >= 0.8 and real_neg >= 0.6


def test_pca_matches_reference_projection():
    """The fixed linear map reconstructs exactly like an SVD projection on the same data."""
    torch.manual_seed(0)
    x = torch.rand(40, 3, 16, 16)
    det = fit_pca(x, dim=5, size=16, standardize=False, calib_fraction=0.0)
    v = x.flatten(1).double()
    mu = v.mean(0)
    u = torch.linalg.svd(v - mu, full_matrices=False)[2][:5]
    ref = ((v - mu) - (v - mu) @ u.T @ u).pow(2).mean(1)
    assert torch.allclose(det.reconstruction_error(x).double(), ref, rtol=1e-4, atol=1e-7)
    c = det.components
    assert torch.allclose(c @ c.T, torch.eye(5), atol=1e-5)
    assert det.embed(x).shape == (40, 5)


def test_dim_is_clipped_to_the_number_of_faces(caplog):
    x = torch.rand(6, 3, 16, 16)
    det = fit_pca(x, dim=128, size=8, calib_fraction=0.0)
    assert det.dim == 5 and det.options["dim"] == 5
    assert "clipped" in caplog.text


@pytest.mark.parametrize("name,opts", [("embedding-pca", {"dim": 4, "size": 16}),
                                       ("embedding-ae", {"dim": 4, "size": 16, "width": 4})])
@pytest.mark.parametrize("hw", [(16, 16), (29, 41)])
def test_forward_shape_and_gradient(name, opts, hw):
    torch.manual_seed(0)
    det = detectors.create(name, **opts)
    if isinstance(det, EmbeddingPCA):  # non-trivial linear map
        det.components.copy_(torch.linalg.qr(torch.randn(det.components.shape[1], 4))[0].T)
        det.mean.uniform_(-0.5, 0.5)
    det.eval()
    x = torch.rand(3, 3, *hw, requires_grad=True)
    y = det(x)
    assert y.shape == (3,) and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert det.differentiable


@pytest.mark.parametrize("fit", ["pca", "ae"])
def test_save_load_roundtrip_identical(tmp_path, fit):
    torch.manual_seed(1)
    x = torch.rand(24, 3, 20, 20)
    if fit == "pca":
        det = fit_pca(x, dim=6, size=16, seed=1)
    else:
        det = fit_autoencoder(x, steps=5, seed=1, dim=6, size=16, width=4)
    det.save(tmp_path / "ck")
    back = detectors.load(tmp_path / "ck")
    assert type(back) is type(det) and back.options == det.options
    probe = torch.rand(5, 3, 33, 27)
    assert torch.equal(det(probe), back(probe))
    assert float(back.log_tau) == float(det.log_tau) != 0.0


def test_registry_and_hints():
    names = {e.name: e for e in detectors.entries()}
    for n in ("embedding-pca", "embedding-ae"):
        assert n in names and "2023" in names[n].paper
    assert "fit_pca" in names["embedding-pca"].weights_hint() and names["embedding-ae"].weights_hint()


def test_pgd_moves_a_posed_face_towards_the_synthetic_model(face_sets):
    """White-box 'spoof' on embedding-pca: 8 grey levels make a real (posed) face reconstruct
    better from the synthetic-face embedding (its logit rises)."""
    from fakebench import attacks

    fake, real = face_sets
    det = fit_pca(torch.cat([fake[:80], fake[:80].flip(-1)]), dim=8, size=12, grayscale=True)
    x = real[0, 80:86]
    x_adv = attacks.create("pgd", eps=8 / 255, steps=10, direction="spoof")(det, x, torch.zeros(6, dtype=torch.long))
    assert (x_adv - x).abs().max() <= 8 / 255 + 1e-6
    assert (det.score(x_adv) > det.score(x)).all()
