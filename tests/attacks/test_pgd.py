"""PGD / FGSM: budgets, directions, and equivalence with torchattacks' PGD."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    y = torch.tensor([1, 0] * (n // 2))
    return x, y


@pytest.mark.parametrize("eps", [4 / 255, 3.5 / 255, 0.02])
def test_linf_budget_holds_after_8bit_rounding(tiny_detector, eps):
    x, y = _data()
    atk = attacks.create("pgd", eps=eps, steps=5, random_start=True, direction="evade")
    adv = atk(tiny_detector, x, y)
    d = (adv - x).abs()
    assert float(d.max()) <= eps + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)  # on the 8-bit grid
    assert torch.equal(adv[y == 0], x[y == 0])  # evade touches only synthetic images
    assert float(d[y == 1].max()) > 0


def test_linf_budget_when_input_is_off_grid(tiny_detector):
    x, y = _data()
    x = (x + 0.3 / 255).clamp(0, 1)  # not on the 8-bit grid
    eps = 2 / 255
    adv = attacks.create("pgd", eps=eps, steps=3)(tiny_detector, x, y)
    assert float((adv - x).abs().max()) <= eps + 1e-6


@pytest.mark.parametrize("direction,sign", [("evade", -1), ("spoof", 1)])
def test_direction_moves_score_the_right_way(tiny_detector, direction, sign):
    x, y = _data(8)
    atk = attacks.create("pgd", eps=8 / 255, steps=10, step_size=2 / 255, direction=direction)
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    target = (y == 1) if direction == "evade" else (y == 0)
    with torch.no_grad():
        before, after = tiny_detector(x), tiny_detector(adv)
    assert bool((sign * (after - before))[target].min() > 0)
    assert torch.equal(after[~target], before[~target])
    assert res.queries is not None and int(res.queries[target][0]) == 10 and int(res.queries[~target].sum()) == 0


def test_l2_budget_and_report(tiny_detector):
    x, y = _data()
    eps = 0.5
    atk = attacks.create("pgd", norm="l2", eps=eps, steps=5, step_size=0.2, quantize=False)
    adv = atk(tiny_detector, x, y)
    l2 = (adv - x).flatten(1).norm(dim=1)
    assert float(l2.max()) <= eps + 1e-5
    assert float(l2[y == 1].min()) > 0.1


def test_random_start_is_seeded(tiny_detector):
    x, y = _data()
    a = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(5))
    b = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(5))
    c = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)




@pytest.mark.parametrize("direction", ["evade", "spoof"])
def test_equivalent_to_torchattacks_pgd(tiny_detector, direction, two_class):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = _data(8, size=32, seed=3)
    eps, alpha, steps = 8 / 255, 2 / 255, 10
    target = (y == 1) if direction == "evade" else (y == 0)
    ours = attacks.create("pgd", eps=eps, step_size=alpha, steps=steps, direction=direction, quantize=False)
    adv = ours(tiny_detector, x, y)
    ref = torchattacks.PGD(two_class(tiny_detector), eps=eps, alpha=alpha, steps=steps, random_start=False)
    ref_adv = ref(x[target], y[target])  # untargeted: away from the true class
    diff = (adv[target] - ref_adv).abs().max()
    assert float(diff) <= 1e-5
    assert float((adv[target] - x[target]).abs().max()) > 1 / 255  # the attack did something


def test_fgsm_is_one_step_of_eps(tiny_detector):
    x, y = _data()
    adv = attacks.create("fgsm", eps=2 / 255, quantize=False)(tiny_detector, x, y)
    d = (adv - x)[y == 1].abs()
    inside = (x[y == 1] > 2 / 255) & (x[y == 1] < 1 - 2 / 255)
    assert float(d.max()) <= 2 / 255 + 1e-6
    assert float(((d - 2 / 255).abs() < 1e-6)[inside].float().mean()) > 0.9


def test_bad_threat_model_is_one_clear_line():
    from fakebench.errors import ConfigError

    with pytest.raises(ConfigError, match="direction"):
        attacks.create("pgd", direction="sideways")
    with pytest.raises(ConfigError, match="pgd"):
        attacks.create("pgd", epsilon=3)


# -- norms the PGD family implements ------------------------------------------------------------

@pytest.mark.parametrize("name,supported", [("pgd", "linf, l2"), ("fgsm", "linf, l2"), ("di-fgsm", "linf, l2"),
                                            ("r-fgsm", "linf"), ("mimicry", "linf, l2")])
@pytest.mark.parametrize("norm", ["l0", "patch", "none"])
def test_pgd_family_refuses_norms_it_does_not_implement(name, supported, norm):
    from fakebench.errors import ConfigError

    with pytest.raises(ConfigError, match=rf"^norm: {name} supports {supported}, got '{norm}'$") as err:
        attacks.create(name, norm=norm)
    assert "\n" not in str(err.value)


def test_other_norms_still_build_where_an_attack_implements_them():
    assert attacks.create("cf-patch").threat.norm == "patch"
    assert attacks.create("cf-distortion").threat.norm == "l2"
    assert attacks.create("hopskipjump", norm="none").threat.norm == "none"
    assert attacks.create("pgd", norm="l2").threat.norm == "l2"


# -- L2 budget after 8-bit rounding -------------------------------------------------------------

@pytest.mark.parametrize("off_grid", [0.0, 0.3 / 255])
@pytest.mark.parametrize("eps", [0.1, 0.5])
def test_l2_budget_holds_after_8bit_rounding(tiny_detector, off_grid, eps):
    from fakebench.attacks.base import quantize_tensor

    x, y = _data()
    x = (x + off_grid).clamp(0, 1)
    opts = dict(norm="l2", eps=eps, steps=5, step_size=eps / 2, direction="both")
    adv = attacks.create("pgd", **opts)(tiny_detector, x, y)
    raw = attacks.create("pgd", **opts, quantize=False)(tiny_detector, x, y)
    l2 = (adv.double() - x.double()).flatten(1).norm(dim=1)
    plain = (quantize_tensor(raw).double() - x.double()).flatten(1).norm(dim=1)
    assert float(plain.max()) > eps  # plain rounding would break the budget here
    assert float(l2.max()) <= eps + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)  # on the 8-bit grid
    assert float(l2.min()) > 0.5 * eps  # still (most of) the attack, not rounded back to x
    assert float((adv - raw).flatten(1).norm(dim=1).max()) < 0.1  # close to the unrounded result


def test_quantize_within_l2_keeps_in_budget_points_and_falls_back_to_round_x():
    from fakebench.attacks.base import quantize_tensor, quantize_within_l2

    g = torch.Generator().manual_seed(1)
    x = torch.round(torch.rand(3, 3, 16, 16, generator=g) * 255) / 255
    on_grid = quantize_tensor(x + torch.randint(-2, 3, x.shape, generator=g) / 255)
    eps = float((on_grid - x).flatten(1).norm(dim=1).max()) + 1e-4
    assert torch.equal(quantize_within_l2(on_grid, x, eps), on_grid)  # already fine: unchanged
    xo = (x + 0.4 / 255).clamp(0, 1)  # off-grid; ||round(x) - x|| ~ 0.025 > eps below
    out = quantize_within_l2(xo + 0.01, xo, 0.001)
    assert torch.equal(out, quantize_tensor(xo))


# -- restarts -----------------------------------------------------------------------------------

def test_restarts_keep_per_sample_the_restart_with_the_higher_final_loss(tiny_detector, monkeypatch):
    from fakebench.attacks.gradient import PGD

    x, y = _data()
    y = torch.ones(len(x), dtype=torch.long)
    restarts, steps = 3, 2
    atk = attacks.create("pgd", eps=8 / 255, steps=steps, restarts=restarts, random_start=True, quantize=False)
    runs = []
    real_one_run = PGD._one_run

    def recording(self, detector, xx, sign, generator, random_start):
        adv, loss = real_one_run(self, detector, xx, sign, generator, random_start)
        runs.append((adv, loss))
        return adv, loss

    monkeypatch.setattr(PGD, "_one_run", recording)
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    assert len(runs) == restarts
    losses = torch.stack([loss for _, loss in runs])  # (restarts, N)
    with torch.no_grad():  # the recorded final loss is the objective at that restart's result
        for a, loss in runs:
            assert torch.allclose(loss, -tiny_detector(a), atol=1e-6)
    best = losses.argmax(0)
    expect = torch.stack([runs[int(r)][0][i] for i, r in enumerate(best)])
    assert torch.equal(adv, expect)
    assert len(set(best.tolist())) > 1  # the choice really is per sample here
    with torch.no_grad():
        assert bool((-tiny_detector(adv) >= losses.max(0).values - 1e-6).all())
    assert res.queries.tolist() == [steps * restarts + restarts] * len(x)


def test_restart_selection_is_per_sample_with_synthetic_runs(monkeypatch):
    from fakebench.attacks.gradient import PGD

    n = 4
    x = torch.zeros(n, 3, 4, 4)
    y = torch.ones(n, dtype=torch.long)
    wins = torch.tensor([2, 0, 1, 2])  # the restart that must win for each sample
    calls = []

    def fake_run(self, detector, xx, sign, generator, random_start):
        r = len(calls)
        calls.append(random_start)
        loss = torch.where(wins == r, torch.tensor(1.0), torch.tensor(-float(r)))
        return torch.full_like(xx, (r + 1) / 10), loss

    monkeypatch.setattr(PGD, "_one_run", fake_run)
    atk = attacks.create("pgd", restarts=3, steps=5, quantize=False)
    res = atk.perturb(torch.nn.Identity(), x, y)
    adv = res.x_adv
    assert calls == [False, True, True]  # later restarts start at random points
    assert torch.allclose(adv.flatten(1)[:, 0], (wins.float() + 1) / 10)
    assert res.queries.tolist() == [5 * 3 + 3] * n
    one = attacks.create("pgd", restarts=1, steps=5, quantize=False)
    assert one.run(torch.nn.Identity(), x, y, torch.Generator())[1] == 5  # no extra forward without restarts


# -- margin loss and the detector's decision threshold --------------------------------------------

def test_attack_loss_margin_caps_at_kappa_past_the_threshold():
    from fakebench.attacks.base import attack_loss

    z = torch.tensor([0.0, 0.5, 1.0, 2.0])
    sign = torch.ones(4)
    assert torch.allclose(attack_loss(z, sign, "margin", kappa=0.3, threshold=0.5),
                          torch.tensor([-0.5, 0.0, 0.3, 0.3]))
    assert torch.allclose(attack_loss(z, -sign, "margin", kappa=0.0, threshold=0.5),
                          torch.tensor([0.0, 0.0, -0.5, -1.5]))
    assert torch.allclose(attack_loss(z, sign, "score", threshold=0.5), z - 0.5)


def test_margin_loss_uses_the_detector_threshold_and_stops_past_kappa(tiny_detector):
    x, _ = _data()
    y = torch.ones(len(x), dtype=torch.long)
    with torch.no_grad():
        z = tiny_detector(x)
    zs_ = z.sort().values
    thr = float(zs_[2] + zs_[3]) / 2  # a calibrated-looking threshold, not 0, between two logits
    tiny_detector.threshold = thr
    judged_real = z < thr
    assert bool(((z > 0) & judged_real).any())  # "fake" at logit 0 but already real at the threshold
    opts = dict(eps=8 / 255, steps=20, step_size=1 / 255, quantize=False)
    margin = attacks.create("pgd", loss="margin", kappa=0.0, **opts)
    adv = margin(tiny_detector, x, y)
    score = attacks.create("pgd", loss="score", **opts)(tiny_detector, x, y)
    with torch.no_grad():
        za, zs = tiny_detector(adv), tiny_detector(score)
    # already past the threshold: no gradient, no change; the others are pushed across it
    assert torch.equal(adv[judged_real], x[judged_real])
    assert float((adv - x)[~judged_real].abs().max()) > 0
    assert bool((za[~judged_real] < thr).all())
    # and stop there, well short of where the score loss goes
    assert bool((za[~judged_real] > zs[~judged_real] + 0.05).all())
    # kappa is a margin beyond the threshold
    k = 0.1
    adv_k = attacks.create("pgd", loss="margin", kappa=k, **opts)(tiny_detector, x, y)
    with torch.no_grad():
        zk = tiny_detector(adv_k)
    assert torch.equal(adv_k[z < thr - k], x[z < thr - k])
    assert bool((zk[~judged_real] < thr - k).all())
