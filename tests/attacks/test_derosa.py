"""De Rosa et al. (2024) attack settings, checked against the code they ran.

DI-FGSM against torchattacks' DIFGSM (their attack); presets; Robust FGSM (Hussain et al.
2021) and the DeepFool universal perturbation (Moosavi-Dezfooli et al. 2017) on the built-in
benchmark's CPU-sized cnnspot.
"""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks
from fakebench.attacks.gradient import PRESETS, input_diversity
from fakebench.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    return x, torch.tensor([1, 0] * (n // 2))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size,rate", [(32, 0.9), (40, 0.9), (32, 330 / 299)])
def test_input_diversity_equals_torchattacks(tiny_detector, seed, size, rate):
    torchattacks = pytest.importorskip("torchattacks")
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(100 + seed))
    ref_atk = torchattacks.DIFGSM(tiny_detector, resize_rate=rate, diversity_prob=0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = ref_atk.input_diversity(x)
    ours = input_diversity(x, 0.5, rate, torch.Generator().manual_seed(seed))
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) <= 1e-5


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_di_fgsm_equals_torchattacks_difgsm(tiny_detector, two_class, decay):
    """The whole attack, same seed: the same transforms are drawn at every step, so the
    adversarial images agree (before fakebench's 8-bit rounding)."""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = _data(4)
    x, y = x[y == 1], y[y == 1]
    eps, alpha, steps = 8 / 255, 2 / 255, 10
    ref_atk = torchattacks.DIFGSM(two_class(tiny_detector), eps=eps, alpha=alpha, steps=steps, decay=decay)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ref = ref_atk(x, y)
    ours = attacks.create("di-fgsm", preset="derosa2024", momentum=decay, quantize=False).perturb(
        tiny_detector, x, y, torch.Generator().manual_seed(7)).x_adv
    assert float((ours - ref).abs().max()) <= 1e-5
    assert float((ours - x).abs().max()) > 4 / 255  # the attack moved the images


def test_derosa_presets_are_their_code_settings():
    pgd = attacks.create("pgd", preset="derosa2024").threat
    assert (pgd.norm, pgd.eps, pgd.step_size, pgd.steps, pgd.random_start) == ("linf", 8 / 255, 2 / 255, 10, True)
    l2 = attacks.create("pgd", preset="derosa2024-l2").threat
    assert (l2.norm, l2.eps, l2.step_size, l2.steps, l2.random_start) == ("l2", 8.0, 1.6, 10, False)
    di = attacks.create("di-fgsm", preset="derosa2024")
    assert (di.threat.eps, di.threat.steps, di.threat.step_size, di.threat.random_start) == (8 / 255, 10, 2 / 255, False)
    assert (di.resize_rate, di.p, di.interpolation, di.momentum) == (0.9, 0.5, "bilinear", 0.0)
    fgsm = attacks.create("fgsm", preset="derosa2024").threat  # the README's promise: the budget
    assert (fgsm.eps, fgsm.steps, fgsm.step_size) == (8 / 255, 1, 8 / 255)
    assert PRESETS["derosa2024-linf"] is PRESETS["derosa2024"]
    with pytest.raises(ConfigError, match="no setting for r-fgsm"):  # Tramèr's R+FGSM is not theirs
        attacks.create("r-fgsm", preset="derosa2024")
    with pytest.raises(ConfigError, match="no setting for di-fgsm"):
        attacks.create("di-fgsm", preset="derosa2024-l2")


# -- Robust FGSM ------------------------------------------------------------------------------

def test_robust_fgsm_transforms_are_the_official_set():
    from fakebench.attacks.robust import robust_transforms, translate

    names = [n for n, _ in robust_transforms()]
    assert len(names) == 17 and names[0] == "identity"
    assert sum(n.startswith("blur") for n in names) == 4 and sum(n.startswith("shift") for n in names) == 8
    assert [n for n in names if n.startswith("down")] == ["down0.1", "down0.2", "down0.3"]
    x = torch.rand(1, 3, 32, 32)
    s = translate(x, 10, -10)  # right 10, up 10, zero fill
    assert torch.equal(s[..., :22, 10:], x[..., 10:, :22]) and float(s[..., :, :10].abs().max()) == 0
    assert [n for n, _ in robust_transforms(("gauss_blur",))] == ["identity", "blur5s5", "blur5s10", "blur7s5",
                                                                  "blur7s10"]
    with pytest.raises(ConfigError, match="jpeg"):
        robust_transforms(("jpeg",))


class _Linear(torch.nn.Module):
    """z = mean(x) * 40 - 20 + bias: fooled (evade) once the mean drops; threshold 0."""

    threshold = 0.0

    def __init__(self, bias: float = 0.0) -> None:
        super().__init__()
        self.bias = bias

    def forward(self, x):
        return x.mean((1, 2, 3)) * 40 - 20 + self.bias


def test_robust_fgsm_stops_early_once_every_transform_is_fooled():
    x = torch.full((3, 3, 32, 32), 0.5)
    y = torch.ones(3, dtype=torch.long)
    # z(x) = 20 * (2 * mean - 1) + bias: with bias -3.5 the clean image is already fooled at 0.95 (z <= -2.94)
    # under every transform but the zero-filled shifts, which darken it; a few steps fix those
    det = _Linear(bias=-3.5)
    atk = attacks.create("robust-fgsm", preset="derosa2024", quantize=False)
    res = atk.perturb(det, x, y)
    it = res.info["iterations"]
    assert bool(res.info["all_fooled"].all())
    assert int(it.max()) < 10  # stopped before max_iter
    n_t = len(atk.transforms)
    assert torch.equal(res.queries, (it + 1) * n_t)  # one check pass more than steps taken
    # already fooled under every transform at the start: no step at all, image unchanged
    easy = attacks.create("robust-fgsm", preset="derosa2024", transforms=("gauss_blur",), quantize=False)
    r2 = easy.perturb(_Linear(bias=-10.0), x, y)
    assert torch.equal(r2.x_adv, x) and int(r2.info["iterations"].max()) == 0
    assert torch.equal(r2.queries, torch.full((3,), 5))
    # never satisfiable (confidence needs z <= -2.94, impossible at eps 8/255 with bias +30): runs all 10 steps
    r3 = atk.perturb(_Linear(bias=30.0), x, y)
    assert torch.equal(r3.info["iterations"], torch.full((3,), 10)) and not bool(r3.info["all_fooled"].any())
    assert float((r3.x_adv - x).abs().max()) <= 8 / 255 + 1e-6


def test_robust_fgsm_refuses_what_it_does_not_implement():
    with pytest.raises(ConfigError, match="norm"):
        attacks.create("robust-fgsm", norm="l2")
    with pytest.raises(ConfigError, match="eot"):
        attacks.create("robust-fgsm", eot=[{"op": "blur", "sigma": 1}])
    with pytest.raises(ConfigError, match="confidence"):
        attacks.create("robust-fgsm", confidence=1.5)
    t = attacks.create("robust-fgsm").threat  # Hussain et al.'s defaults
    assert (t.eps, t.step_size, t.steps, t.kappa) == (16 / 255, 1 / 255, 100, 10.0)


# -- DeepFool UAP ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["resize", "tile"])
def test_uap_is_one_tensor_applied_to_every_image_size(tiny_detector, mode):
    x, y = _data(12, 32, seed=3)
    atk = attacks.create("uap", eps=8 / 255, max_passes=2, apply=mode, quantize=False, seed=1)
    delta = atk.fit(tiny_detector, x, y)
    assert delta.shape == (3, 32, 32) and float(delta.abs().max()) <= 8 / 255 + 1e-7
    report = atk.fit_report(tiny_detector)
    assert (report["n_fit"], report["n_val"]) == (5, 1)  # the 6 fakes, 80 / 20 (direction evade: fakes only)
    assert 1 <= len(report["fooling_rate"]) <= 2
    xt = torch.rand(4, 3, 48, 40, generator=torch.Generator().manual_seed(9)).clamp(8 / 255, 1 - 8 / 255)
    yt = torch.ones(4, dtype=torch.long)
    adv = atk(tiny_detector, xt, yt)
    d = adv - xt
    assert adv.shape == xt.shape and float(d.abs().max()) <= 8 / 255 + 1e-6
    assert torch.allclose(d, d[:1].expand_as(d), atol=1e-6)  # the same perturbation on every image
    assert torch.allclose(d[0], atk.perturbation(tiny_detector, (48, 40)), atol=1e-6)
    if mode == "tile":
        assert torch.allclose(d[0, :, :32, :32], delta, atol=1e-6)


def test_deepfool_flips_a_linear_decision_in_one_step():
    from fakebench.attacks.universal import deepfool_binary

    det = _Linear()  # z = 40 mean(x) - 20: linear, so one DeepFool step (+ overshoot) crosses
    x = torch.full((1, 3, 8, 8), 0.6)
    r, k = deepfool_binary(det, x, overshoot=0.02, max_iter=10)
    assert k == 1 and float(det(x + r)) < 0 < float(det(x))
    assert torch.allclose(r, r.flatten()[0].expand_as(r))  # along the gradient: a uniform shift here


# -- on the built-in benchmark with a trained detector ---------------------------------------

from _bench import _load, asr, build_bench, scores, threshold  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    """The attack-suite benchmark detector (built once per process, see tests/attacks/_bench.py)."""
    return build_bench()


@pytest.mark.slow
def test_robust_fgsm_survives_each_transform_at_least_as_well_as_pgd(trained):
    from fakebench.attacks.robust import robust_transforms

    bench = trained
    det, x, y = bench.detector, bench.fake_x, bench.fake_y
    robust = attacks.create("robust-fgsm", preset="derosa2024", seed=0)(det, x, y)
    pgd = attacks.create("pgd", eps=8 / 255, step_size=2 / 255, steps=10, seed=0)(det, x, y)  # same budget
    rows = []
    for name, f in robust_transforms():
        with torch.no_grad():
            r = asr(det, f(robust, torch.Generator().manual_seed(1)))
            p = asr(det, f(pgd, torch.Generator().manual_seed(1)))
        rows.append((name, r, p))
    bench.record("robust-fgsm vs pgd success per transform (min over transforms)",
                 [min(r for _, r, _ in rows), min(p for _, _, p in rows)])
    print("\n".join(f"  {n:12s} robust-fgsm {r:.3f}  pgd {p:.3f}" for n, r, p in rows))
    mean_r, mean_p = (sum(v[i] for v in rows) / len(rows) for i in (1, 2))
    bench.record("robust-fgsm vs pgd mean success over the 17 transforms", [mean_r, mean_p])
    # measured (seed 0, 32 test fakes, the bench detector of tests/attacks/_bench.py): plain PGD,
    # which optimises the untransformed image alone, is ahead without a transform and under the
    # tiny noise (1.0 vs 0.781 for both); under the 15 transforms that move, blur or resample the
    # image robust-fgsm is ahead or equal on every one (e.g. shift-20-20 1.0 vs 0.781, down0.3
    # 0.219 vs 0.062; mean 0.573 vs 0.504). Across other trainings of the bench detector the
    # mean lead over all 17 ranged 0.01-0.15, so the mean is asserted ahead by 0.03 and each transform within one image
    moved = [(n, r, p) for n, r, p in rows if n not in ("identity", "noise0.01")]
    assert len(moved) == 15
    for name, r, p in moved:
        assert r >= p - 1.5 / len(x), f"{name}: robust-fgsm {r:.3f} < pgd {p:.3f} by more than one image"
    mean_r, mean_p = (sum(v[i] for v in moved) / len(moved) for i in (1, 2))
    assert mean_r >= mean_p + 0.03
    assert float((robust - x).abs().max()) <= 8 / 255 + 1e-6


@pytest.mark.slow
def test_uap_fools_half_of_the_held_out_fakes_at_8_255(trained):
    from fakebench.data import load_dataset, select

    bench = trained
    det = bench.detector
    train_fakes = [s for s in select(load_dataset(bench.manifest), split="train") if int(s.label) == 1]
    xf = _load(train_fakes, 96, tuple(bench.fake_x.shape[-2:]))
    atk = attacks.create("uap", preset="derosa2024", seed=0)
    delta = atk.fit(det, xf, torch.ones(len(xf), dtype=torch.long))
    assert delta.shape == (3, *xf.shape[-2:]) and float(delta.abs().max()) <= 8 / 255 + 1e-7
    report = atk.fit_report(det)
    # held out: test-split fakes the detector gets right, never seen by the fit
    adv = atk(det, bench.fake_x, bench.fake_y)
    rate = asr(det, adv)
    bench.record("uap (DeepFool) fooling rate on held-out test fakes at 8/255", rate)
    bench.record("uap fooling rate per pass on the fit set's held-out 20%", report["fooling_rate"])
    assert report["n_fit"] + report["n_val"] == len(xf) and report["n_val"] == int(len(xf) * 0.2)
    # measured: 0.969 (seed 0, the test's; 0.41-0.63 on weaker trainings of the bench detector,
    # 3 of the 5 trainings tried at or above one half), far above random sign noise of the same budget (0.0)
    noise = (torch.randint(0, 2, (1, *bench.fake_x.shape[1:]), generator=torch.Generator().manual_seed(0)) * 2 - 1)
    noise_rate = asr(det, (bench.fake_x + noise * 8 / 255).clamp(0, 1))
    bench.record("random sign noise 8/255: fooling rate on the same images", noise_rate)
    assert rate >= 0.5 and rate >= noise_rate + 0.25
    d = adv - bench.fake_x
    assert float(d.abs().max()) <= 8 / 255 + 1e-6


@pytest.mark.slow
def test_uap_fools_half_of_the_demo_cnnspots_held_out_fakes_at_8_255(demo_run):
    """The issue's setting: the demo's own cnnspot (``fakebench demo``, seed 0). The UAP is fitted
    on 96 training-split fakes and judged on test-split fakes the detector gets right (held out,
    generators the fit never saw included)."""
    from fakebench import detectors
    from fakebench.data import load_dataset, select

    out, _ = demo_run
    det = detectors.load(out / "checkpoints" / "cnnspot").eval()
    samples = load_dataset(out / "data" / "manifest.csv")
    fakes = {split: [s for s in select(samples, split=split) if int(s.label) == 1] for split in ("train", "test")}
    xf = _load(fakes["train"], 96)
    xt = _load(fakes["test"], 200, tuple(xf.shape[-2:]))
    xt = xt[scores(det, xt) > threshold(det)][:64]
    assert len(xt) >= 32
    atk = attacks.create("uap", preset="derosa2024", seed=0)
    atk.fit(det, xf, torch.ones(len(xf), dtype=torch.long))
    yt = torch.ones(len(xt), dtype=torch.long)
    rate = asr(det, atk(det, xt, yt))
    noise = (torch.randint(0, 2, (1, *xt.shape[1:]), generator=torch.Generator().manual_seed(0)) * 2 - 1)
    noise_rate = asr(det, (xt + noise * 8 / 255).clamp(0, 1))
    print(f"[demo cnnspot] uap fooling rate on held-out test fakes at 8/255: {rate:.4f} (sign noise {noise_rate:.4f})")
    # measured (seed 0): 1.0, and random sign noise of the same 8/255 also fools 1.0 of them: the
    # demo's cnnspot, trained without noise augmentation, is not robust even to random noise of
    # that budget, so unlike on the attack-suite detector (noise 0.0) no margin over noise is asserted
    assert rate >= 0.5
