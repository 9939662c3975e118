"""Black-box attacks (Square, HopSkipJump) on a detector without gradients: budgets, scores,
query counts, and comparisons with torchattacks' Square and ART's HopSkipJump."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakebench import attacks
from fakebench.detectors.base import Detector


pytestmark = pytest.mark.usefixtures("one_thread")


class NoGrad(Detector):
    """A detector whose score has no gradient: evaluated under no_grad, through numpy."""

    differentiable = False
    non_differentiable_reason = "test wrapper"

    def __init__(self, det):
        super().__init__()
        self.det = det

    def forward(self, x):
        with torch.no_grad():
            z = self.det(x).numpy().copy()
        return torch.from_numpy(z)




def _data(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255


@pytest.fixture()
def setup(tiny_detector):
    x = _data(6)
    with torch.no_grad():
        z = tiny_detector(x)
    y = (z > 0).long()  # labels = the detector's decisions: every sample starts correct
    return NoGrad(tiny_detector).eval(), x, y, z


def test_nograd_wrapper_has_no_gradient(setup):
    det, x, y, _ = setup
    with pytest.raises(RuntimeError):
        attacks.create("pgd", eps=4 / 255, steps=1, direction="both")(det, x, y)


def test_square_lowers_scores_within_budget_and_counts_queries(setup):
    det, x, y, z = setup
    eps = 8 / 255
    atk = attacks.create("square", eps=eps, n_queries=60, direction="both", loss="score")
    res = atk.perturb(det, x, y)
    adv = res.x_adv
    with torch.no_grad():
        za = det(adv)
    sign = 1 - 2 * y.float()
    gain = sign * (za - z)
    assert float(gain.min()) >= 0  # never worse than the clean image (it is a starting candidate)
    assert float((gain > 0).float().mean()) >= 0.8  # and nearly every image moved the attacker's way
    assert float((adv - x).abs().max()) <= eps + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)
    assert res.queries.tolist() == [60] * len(x)  # score loss: the whole budget, counted per sample


def test_square_stops_querying_after_success(setup):
    det, x, y, z = setup
    evade = torch.ones(len(x), dtype=torch.long)
    atk = attacks.create("square", eps=16 / 255, n_queries=80, direction="evade")
    res = atk.perturb(det, x, evade)
    adv = res.x_adv
    with torch.no_grad():
        za = det(adv)
    done = za < 0
    assert bool(done.any())
    assert int(res.queries[done].max()) < 80  # stopped early
    assert int(res.queries.min()) >= 1


class Linear(torch.nn.Module):
    """A fast random linear one-logit model (seeded) for the library comparisons."""

    def __init__(self, size=16):
        super().__init__()
        g = torch.Generator().manual_seed(3)
        self.w = torch.nn.Parameter(torch.randn(3 * size * size, generator=g) / size, requires_grad=False)

    def forward(self, x):
        return (x - 0.5).flatten(1) @ self.w


def test_square_matches_torchattacks(two_class):
    """Same budget, same query limit, margin loss: our success rate is close to torchattacks'
    (which returns the clean image wherever it failed, so success rates are what compare)."""
    ta = pytest.importorskip("torchattacks")
    net = Linear().eval()
    x = _data(96, size=16, seed=2)
    with torch.no_grad():
        z = net(x)
    x = x[z > 0][:40]  # correctly detected "synthetic" images
    y = torch.ones(len(x), dtype=torch.long)
    eps, nq = 8 / 255, 100
    ours = attacks.create("square", eps=eps, n_queries=nq, direction="evade", quantize=False)
    res = ours.perturb(NoGrad(net).eval(), x, y)
    adv = res.x_adv
    ref = ta.Square(two_class(net).eval(), norm="Linf", eps=eps, n_queries=nq, p_init=0.8, loss="margin", seed=0)
    adv_ref = ref(x, y)
    with torch.no_grad():
        ok_ours, ok_ref = float((net(adv) < 0).float().mean()), float((net(adv_ref) < 0).float().mean())
    print(f"[square] success rate ours {ok_ours:.2f} torchattacks {ok_ref:.2f} ({nq} queries, {len(x)} images); "
          f"our mean queries {res.queries.float().mean():.1f}")
    assert 0.1 < ok_ref < 0.95  # the comparison is informative
    assert ok_ours >= ok_ref - 0.15
    assert float((adv - x).abs().max()) <= eps + 1e-6


def _linear_setup(n=6):
    net = Linear().eval()
    x = _data(n, size=16, seed=4)
    with torch.no_grad():
        z = net(x)
    return net, x, (z > 0).long(), z


def test_hopskipjump_unbounded_reaches_the_boundary():
    net, x, y, z = _linear_setup()
    atk = attacks.create("hopskipjump", norm="none", steps=6, init_evals=30, max_evals=100, quantize=False,
                         direction="both", max_queries=5000)
    res = atk.perturb(NoGrad(net).eval(), x, y)
    adv = res.x_adv
    with torch.no_grad():
        za = net(adv)
    sign = 1 - 2 * y.float()
    assert bool(torch.isfinite(res.info["distance"]).all())
    assert bool((sign * za > 0).all())  # every image is adversarial
    lin = (adv - x).flatten(1).abs().amax(1)
    assert torch.allclose(lin, res.info["distance"].float(), atol=1e-5)
    # the iterations shrink the distance well below that of the starting point (noise: ~0.5)
    assert float(res.info["distance"].max()) < 0.25
    assert bool((res.queries > 0).all())


def test_hopskipjump_budget_lowers_scores():
    net, x, _, z = _linear_setup(12)
    keep = z > 0
    x, z = x[keep], z[keep]
    y = torch.ones(len(x), dtype=torch.long)
    eps = 8 / 255
    atk = attacks.create("hopskipjump", eps=eps, steps=4, init_evals=30, max_evals=100, direction="evade")
    res = atk.perturb(NoGrad(net).eval(), x, y)
    adv = res.x_adv
    with torch.no_grad():
        za = net(adv)
    assert float((adv - x).abs().max()) <= eps + 1e-6  # projected onto the budget (then 8-bit rounded)
    assert bool((za < z).all())
    print(f"[hopskipjump] eps 8/255: score {z.mean():.3f} -> {za.mean():.3f}, "
          f"decisions flipped {(za < 0).float().mean():.2f}, queries per image {res.queries.tolist()}")
    assert bool((res.queries > 0).all())


def test_hopskipjump_close_to_art(two_class):
    pytest.importorskip("art")
    from art.attacks.evasion import HopSkipJump as ArtHSJ
    from art.estimators.classification import PyTorchClassifier

    net, x, y, _ = _linear_setup(4)
    iters = 4
    ours = attacks.create("hopskipjump", norm="none", search="l2", steps=iters, init_evals=50, max_evals=200,
                          quantize=False, direction="both", max_queries=100000)
    res = ours.perturb(NoGrad(net).eval(), x, y)
    d_ours = res.info["distance"]
    clf = PyTorchClassifier(two_class(net).eval(), loss=torch.nn.CrossEntropyLoss(), input_shape=(3, 16, 16),
                            nb_classes=2, clip_values=(0.0, 1.0))
    np.random.seed(0)
    art = ArtHSJ(clf, targeted=False, norm=2, max_iter=iters, max_eval=200, init_eval=50, init_size=100, verbose=False)
    adv_ref = torch.from_numpy(art.generate(x.numpy(), y=y.numpy())).float()
    d_ref = (adv_ref - x).flatten(1).norm(dim=1)
    with torch.no_grad():
        ok_ref = ((1 - 2 * y.float()) * net(adv_ref)) > 0
    print(f"[hopskipjump] L2 distances after {iters} iterations: ours {[round(v, 3) for v in d_ours.tolist()]} "
          f"ART {[round(v, 3) for v in d_ref.tolist()]}; our queries {res.queries.tolist()}")
    assert bool(torch.isfinite(d_ours).all()) and bool(ok_ref.all())
    assert float(d_ours.median()) <= 1.5 * float(d_ref.median()) + 1e-3


# -- success is the detector's decision at its threshold, not logit 0 ------------------------------

def test_square_success_is_measured_at_the_detector_threshold(setup):
    det, x, _, z = setup
    evade = torch.ones(len(x), dtype=torch.long)
    det.threshold = float(z.min()) - 0.05  # below every clean logit: logit 0 is not "real" here
    atk = attacks.create("square", eps=16 / 255, n_queries=80, direction="evade", quantize=False)
    res = atk.perturb(det, x, evade)
    adv = res.x_adv
    with torch.no_grad():
        za = det(adv)
    stopped = res.queries < 80
    assert bool(stopped.any())
    assert bool((za[stopped] < det.threshold).all())  # stopped only once the decision flipped
    # a threshold above every logit: each image is already judged real, nothing to search
    det.threshold = float(z.max()) + 1.0
    res = atk.perturb(det, x, evade)
    assert res.queries.tolist() == [2] * len(x)  # the stripes start and the clean image only


def test_hopskipjump_reaches_the_boundary_at_the_detector_threshold():
    net, x, y, z = _linear_setup()
    det = NoGrad(net).eval()
    det.threshold = -0.3
    y = (z > det.threshold).long()  # decisions at the threshold
    assert bool(((z < 0) & (y == 1)).any())  # "synthetic" at the threshold although below logit 0
    atk = attacks.create("hopskipjump", norm="none", steps=6, init_evals=30, max_evals=100, quantize=False,
                         direction="both", max_queries=5000)
    res = atk.perturb(det, x, y)
    adv = res.x_adv
    with torch.no_grad():
        za = net(adv)
    sign = 1 - 2 * y.float()
    assert bool(torch.isfinite(res.info["distance"]).all())
    assert bool((sign * (za - det.threshold) > 0).all())  # every decision flipped at the threshold
    assert float((za - det.threshold).abs().max()) < 0.5  # and the search ends near that boundary
    assert float(res.info["distance"].max()) < 0.25
