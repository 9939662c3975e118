"""The ``perspective`` detector: registry entry, (N,) output, non-differentiable, ordering.

Images are 192x192 renders of fakebench.forensics.synthetic.random_scene (pinhole camera,
principal point at the centre, five boxes on a ground plane; no cast shadows; noise 0.02); the
altered one draws one box through a camera rolled by 10 deg about its line of sight.
"""

from __future__ import annotations

import numpy as np
import torch

from fakebench import detectors
from fakebench.detectors.perspective import NEUTRAL_LOGIT, PerspectiveDetector
from fakebench.forensics.synthetic import random_scene, render


def _batch() -> torch.Tensor:
    rng = np.random.default_rng(12)
    ims = []
    for altered in (False, True):
        sc, _ = random_scene(rng, size=192, altered=altered, alter_axis="view", alter_deg=10.0)
        ims.append(render(sc, rng, noise=0.02, supersample=2, shadows=False))
    flat = np.full((192, 192, 3), 0.5, dtype=np.float32)
    ims.append(flat)
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).contiguous()


def test_registered_and_declared_non_differentiable() -> None:
    names = {e.name: e for e in detectors.entries()}
    assert "perspective" in names and "2206.14617" in names["perspective"].paper
    det = detectors.create("perspective", seed=0)
    assert isinstance(det, PerspectiveDetector)
    assert det.differentiable is False and names["perspective"].differentiable is False
    assert PerspectiveDetector(seed=0).differentiable is False  # built directly: its card is found by class
    assert "Hough" in det.non_differentiable_reason and det.card.paper


def test_forward_shape_and_scores() -> None:
    from fakebench.forensics.auto import NO_ABSTENTION

    assert detectors.create("perspective")(_batch()[:2]).eq(NEUTRAL_LOGIT).all()  # default: abstains on 192-px renders
    det = detectors.create("perspective", **NO_ABSTENTION)
    x = _batch()
    out = det(x)
    assert out.shape == (3,) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out[1] > out[0]  # the altered scene is more suspicious
    assert out[2].item() == NEUTRAL_LOGIT  # a flat image has no lines: neutral
    # deterministic, and score() batches the same way
    assert torch.equal(det.score(x, batch_size=2), out)


def test_bad_options_and_shapes() -> None:
    import pytest

    from fakebench.errors import ConfigError

    with pytest.raises(ConfigError):
        detectors.create("perspective", no_such_option=1)
    with pytest.raises(ConfigError):
        detectors.create("perspective")(torch.zeros(2, 1, 32, 32))
