"""Black-box attacks for detectors without (useful) gradients: Square (score-based) and
HopSkipJump (decision-based).

Both only call the detector's ``forward`` under ``torch.no_grad`` and never ask for a
gradient, so they run on non-differentiable detectors (SVMs on hand-made features, geometric
analyzers; ``differentiable = False``) as well as on any other. Every call goes through a
:class:`QueryCounter`, which counts, per sample, the rows that reached the detector: the
attack's ``queries`` after a call is the number of detector evaluations each sample cost.

The one-logit detector is read as the two-class model with logits ``[0, z]`` (class 1 =
synthetic). With the attacker's sign ``s`` (``-1`` to evade, ``+1`` to spoof, see
:func:`~fakebench.attacks.base.push_sign`) the untargeted margin of the true class is
``-s * z``, so maximising ``s * z`` (the ``score`` loss) or reaching ``s * z > kappa`` (the
``margin`` loss) is exactly the two-class margin objective of the papers. Both measure ``z``
from the detector's decision threshold ``t`` (``detector.threshold``, a calibrated value
fakebench detectors carry; 0 when absent): a sample counts as adversarial when
``s * (z - t) > kappa``, i.e. when the detector's actual decision has flipped, by ``kappa``.

- :class:`Square` (Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a
  query-efficient black-box adversarial attack via random search", ECCV 2020), Linf: start
  from vertical stripes of +-eps, then at each iteration redraw one random square window
  (per channel +-eps) and keep it if the objective improves; the square's area follows the
  paper's schedule for ``p`` (fraction of pixels), rescaled to the query budget.
- :class:`HopSkipJump` (Chen, Jordan, Wainwright, "HopSkipJumpAttack: a query-efficient
  decision-based attack", IEEE S&P 2020), Linf or L2: from an adversarial starting point,
  alternate a binary search to the decision boundary, a Monte-Carlo estimate of the
  boundary's normal from ``B_t = B_0 sqrt(t)`` decisions, and a geometric step search along
  it. HopSkipJump minimises the distance to the clean image without a budget; with a finite
  ``eps`` the result is projected onto the eps-ball (so it may then stop short of the
  boundary), with ``norm="none"`` it is returned as found.

Square attacks all targeted samples of a batch in parallel (vectorised), so a batch costs
about as many detector calls as one sample, each with more rows. HopSkipJump runs its starting
point search, binary searches and step searches in parallel over the samples too, but its
gradient estimate loops over the samples (one detector call of ``n_evals`` probes each, which
bounds memory at ``n_evals`` images), so its detector calls grow with the batch size.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, attack_loss, decision_threshold, push_sign
from .gradient import threat_from


class QueryCounter:
    """Wraps a detector for black-box use: ``counter(x_rows, owner)`` returns the logits of
    ``x_rows`` (R, 3, H, W), evaluated under ``no_grad`` in chunks of ``batch_size``, and adds
    one query to ``counts[owner[r]]`` for each row ``r``. ``counts`` is (N,) int64."""

    def __init__(self, detector: torch.nn.Module, n: int, batch_size: int = 256) -> None:
        self.detector = detector
        self.counts = torch.zeros(n, dtype=torch.long)
        self.batch_size = max(int(batch_size), 1)
        self.calls = 0  # forward calls made (one per chunk)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        if len(x) == 0:
            return torch.zeros(0)
        out = []
        for i in range(0, len(x), self.batch_size):
            z = self.detector(x[i : i + self.batch_size])
            out.append(torch.as_tensor(z).detach().float().reshape(-1).cpu())
            self.calls += 1
        self.counts.index_add_(0, owner.cpu().long(), torch.ones(len(owner), dtype=torch.long))
        return torch.cat(out)


def _rand_sign(shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=generator).float() * 2 - 1


# -- Square ----------------------------------------------------------------------------------

def square_p(p_init: float, it: int, n_iters: int) -> float:
    """Fraction of pixels changed at iteration ``it`` (Andriushchenko et al. 2020): ``p_init``
    halved at iterations 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000 of a 10000-query run,
    those points rescaled to ``n_iters``."""
    i = int(it / max(n_iters, 1) * 10000)
    cuts = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
    halvings = sum(1 for c in cuts if i > c)
    return p_init / (2**halvings)


class Square(Attack):
    """Square attack, Linf (Andriushchenko, Croce, Flammarion, Hein, ECCV 2020).

    Score-based random search: ``n_queries`` detector evaluations per sample at most (the paper's
    vertical-stripe initialisation, the clean image (returned instead of the result if the
    search never beat it), then one per iteration). With ``loss="margin"`` (the default, the
    paper's margin loss on ``[0, z]``) a sample stops as soon as it crosses the boundary by
    ``kappa`` and stops costing queries; with ``loss="score"`` it keeps pushing the logit.
    ``p_init`` (0.8 in the paper for Linf, 0.05 for ImageNet-sized models) is the initial
    fraction of pixels of a square. Success is measured from ``detector.threshold``."""

    name = "square"
    needs_gradients = False

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, n_queries: int = 1000,
                 p_init: float = 0.8, batch_size: int = 256) -> None:
        super().__init__(threat, seed)
        if self.threat.norm != "linf":
            raise ConfigError(f"norm: square is implemented for linf only, got {self.threat.norm!r}")
        if int(n_queries) < 1:
            raise ConfigError(f"n_queries: must be >= 1, got {n_queries!r}")
        if not 0 < float(p_init) <= 1:
            raise ConfigError(f"p_init: expected a fraction in (0, 1], got {p_init!r}")
        self.n_queries, self.p_init, self.batch_size = int(n_queries), float(p_init), int(batch_size)
        self._thr = 0.0  # the detector's decision threshold, set at the start of each run

    def params(self) -> dict[str, Any]:
        return {**super().params(), "n_queries": self.n_queries, "p_init": self.p_init}

    def _objective(self, z: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        return attack_loss(z, sign, self.threat.loss, self.threat.kappa, self._thr)

    def _done(self, z: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        if self.threat.loss != "margin":
            return torch.zeros(len(z), dtype=torch.bool)
        return sign * (z - self._thr) > self.threat.kappa

    def run(self, detector, x, y, generator):
        t = self.threat
        self._thr = decision_threshold(detector)
        n, c, h, w = x.shape
        eps = float(t.eps)
        sign = push_sign(y, t.direction).float().cpu()
        count = QueryCounter(detector, n, self.batch_size)
        all_idx = torch.arange(n)
        # initialisation: vertical stripes, one random sign per (channel, column)
        stripes = _rand_sign((n, c, 1, w), generator).to(x) * eps
        best = (x + stripes).clamp(0, 1)
        z = count(best, all_idx)
        obj = self._objective(z, sign)
        used = 1
        clean_obj = None
        if self.n_queries > 1:  # the clean image's objective: returned instead if never beaten
            clean_obj = self._objective(count(x, all_idx), sign)
            used = 2
        done = self._done(z, sign)
        rows = torch.arange(h).view(1, h, 1)
        cols = torch.arange(w).view(1, 1, w)
        for it in range(self.n_queries - used):
            active = (~done).nonzero().flatten()
            if len(active) == 0 or eps == 0:
                break
            k = len(active)
            p = square_p(self.p_init, it, self.n_queries)
            s = int(round(math.sqrt(p * h * w)))
            s = max(1, min(s, h - 1 if h > 1 else 1, w - 1 if w > 1 else 1))
            r0 = torch.randint(0, h - s + 1, (k, 1, 1), generator=generator)
            c0 = torch.randint(0, w - s + 1, (k, 1, 1), generator=generator)
            win = ((rows >= r0) & (rows < r0 + s) & (cols >= c0) & (cols < c0 + s)).unsqueeze(1).to(x.device)
            vals = _rand_sign((k, c, 1, 1), generator).to(x) * eps
            xa = x[active]
            cand = torch.where(win, (xa + vals).clamp(0, 1), best[active])
            zc = count(cand, active)
            oc = self._objective(zc, sign[active])
            better = oc > obj[active]
            if better.any():
                upd = active[better]
                best[upd] = cand[better]
                obj[upd] = oc[better]
                done[upd] = self._done(zc[better], sign[upd])
        if clean_obj is not None:
            worse = clean_obj > obj
            best[worse] = x[worse]
        return best, count.counts


def build_square(seed: int = 0, n_queries: int = 1000, p_init: float = 0.8, batch_size: int = 256, **options: Any) -> Square:
    return Square(threat_from(options, {"loss": "margin"}), seed=seed, n_queries=n_queries, p_init=p_init,
                  batch_size=batch_size)


# -- HopSkipJump -----------------------------------------------------------------------------

def _dist(a: torch.Tensor, b: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample distance, on the CPU (where the attack's bookkeeping lives)."""
    d = (a - b).flatten(1)
    return (d.abs().amax(1) if norm == "linf" else d.norm(dim=1)).float().cpu()


def _project(x: torch.Tensor, x_adv: torch.Tensor, r: torch.Tensor, norm: str) -> torch.Tensor:
    """Point at parameter ``r`` between ``x`` and ``x_adv``: for linf the clip of
    ``x_adv - x`` to radius ``r``; for l2 the blend ``x + r (x_adv - x)``, r in [0, 1]."""
    r = r.view(-1, 1, 1, 1).to(x)
    if norm == "linf":
        return x + torch.maximum(torch.minimum(x_adv - x, r), -r)
    return x + r * (x_adv - x)


class HopSkipJump(Attack):
    """HopSkipJumpAttack (Chen, Jordan, Wainwright, IEEE S&P 2020), untargeted, Linf or L2.

    Uses only the detector's decisions (``sign * (z - threshold) > kappa``, ``threshold`` =
    ``detector.threshold`` or 0). ``steps`` iterations of:
    binary search to the boundary, gradient-direction estimate from ``min(init_evals *
    sqrt(t), max_evals)`` random probes at radius ``delta_t`` (the paper's ``sqrt(d) theta
    dist`` for L2, ``d theta dist`` for Linf, ``theta = gamma / d^{3/2}`` resp.
    ``gamma / d^2``), geometric step search of initial size ``dist / sqrt(t)``. Starting
    points: up to ``init_tries`` candidates (uniform noise, the image plus Gaussian noise of
    growing strength, a blurred noisy copy) until one is adversarial. ``max_queries`` caps
    the queries per sample (checked before each iteration, so the last iteration may run past
    it by one iteration's worth). Samples with no adversarial start are returned unchanged.

    The budget: with ``norm="linf"``/``"l2"`` and finite ``eps`` the final point is projected
    onto the eps-ball around the clean image; ``norm="none"`` keeps the unbounded result
    (the distance HopSkipJump reached is then the measurement; Linf is used for the search).
    """

    name = "hopskipjump"
    needs_gradients = False

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, init_evals: int = 100,
                 max_evals: int = 1000, init_tries: int = 100, gamma: float = 1.0, max_queries: int = 5000,
                 search: str | None = None, batch_size: int = 256) -> None:
        super().__init__(threat, seed)
        search = search or (self.threat.norm if self.threat.norm in ("linf", "l2") else "linf")
        if search not in ("linf", "l2"):
            raise ConfigError(f"search: expected 'linf' or 'l2', got {search!r}")
        if self.threat.norm not in ("linf", "l2", "none"):
            raise ConfigError(f"norm: hopskipjump supports linf, l2 or none, got {self.threat.norm!r}")
        for label, v in (("init_evals", init_evals), ("max_evals", max_evals), ("init_tries", init_tries),
                         ("max_queries", max_queries)):
            if int(v) < 1:
                raise ConfigError(f"{label}: must be >= 1, got {v!r}")
        if float(gamma) <= 0:
            raise ConfigError(f"gamma: must be > 0, got {gamma!r}")
        self.search = search
        self.init_evals, self.max_evals, self.init_tries = int(init_evals), int(max_evals), int(init_tries)
        self.gamma, self.max_queries, self.batch_size = float(gamma), int(max_queries), int(batch_size)
        self._thr = 0.0  # the detector's decision threshold, set at the start of each run

    def params(self) -> dict[str, Any]:
        return {**super().params(), "init_evals": self.init_evals, "max_evals": self.max_evals,
                "init_tries": self.init_tries, "gamma": self.gamma, "max_queries": self.max_queries,
                "search": self.search}

    # -- pieces -----------------------------------------------------------------------------
    def _is_adv(self, count: QueryCounter, xr: torch.Tensor, owner: torch.Tensor, sign: torch.Tensor) -> torch.Tensor:
        return (sign[owner] * (count(xr, owner) - self._thr)) > self.threat.kappa

    def _init(self, count, x, sign, generator, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        start = x.clone()
        found = skip.clone()
        for t in range(self.init_tries):
            todo = (~found).nonzero().flatten()
            if len(todo) == 0:
                break
            xt = x[todo]
            kind = t % 3
            if kind == 0:
                cand = torch.rand(xt.shape, generator=generator).to(x)
            else:
                sigma = 0.05 * (1 + t // 3)
                cand = xt + sigma * torch.randn(xt.shape, generator=generator).to(x)
                if kind == 2:
                    k = 2 * (1 + t // 3) + 1
                    cand = F.avg_pool2d(F.pad(cand, (k // 2,) * 4, mode="replicate"), k, stride=1)
                cand = cand.clamp(0, 1)
            ok = self._is_adv(count, cand, todo, sign)
            start[todo[ok]] = cand[ok]
            found[todo[ok]] = True
        return start, found

    def _binary_search(self, count, x, x_adv, idx, sign, theta: float) -> torch.Tensor:
        """Boundary point between ``x`` (not adversarial) and ``x_adv`` (adversarial), on the
        adversarial side, for the samples ``idx`` (rows of x / x_adv correspond to idx)."""
        norm = self.search
        if norm == "linf":
            hi = _dist(x, x_adv, "linf")
            tol = torch.clamp(hi * theta, max=theta)
        else:
            hi = torch.ones(len(x))
            tol = torch.full((len(x),), theta)
        lo = torch.zeros_like(hi)
        for _ in range(64):
            todo = ((hi - lo) > tol).nonzero().flatten()
            if len(todo) == 0:
                break
            mid = (hi[todo] + lo[todo]) / 2
            ok = self._is_adv(count, _project(x[todo], x_adv[todo], mid, norm), idx[todo], sign)
            hi[todo] = torch.where(ok, mid, hi[todo])
            lo[todo] = torch.where(ok, lo[todo], mid)
        return _project(x, x_adv, hi, norm).clamp(0, 1)

    def _grad_direction(self, count, xb, idx, sign, delta: torch.Tensor, n_evals: int, generator) -> torch.Tensor:
        """Monte-Carlo estimate of the boundary normal at ``xb`` (rows = samples ``idx``):
        one sample at a time (``n_evals`` probes in one counted call each), not vectorised
        across samples, so that at most ``n_evals`` probe images are held at once."""
        k = len(xb)
        shape = (n_evals,) + tuple(xb.shape[1:])
        grads = []
        for j in range(k):
            if self.search == "l2":
                u = torch.randn(shape, generator=generator)
                u = u / u.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
            else:
                u = torch.rand(shape, generator=generator) * 2 - 1
            u = u.to(xb)
            probe = (xb[j : j + 1] + delta[j] * u).clamp(0, 1)
            u = (probe - xb[j : j + 1]) / delta[j]
            owner = idx[j].repeat(n_evals)
            phi = self._is_adv(count, probe, owner, sign).float() * 2 - 1
            mean = phi.mean()
            if abs(float(mean)) < 1:  # baseline subtraction (variance reduction)
                phi = phi - mean
            grads.append((phi.view(-1, 1, 1, 1).to(u) * u).mean(0))
        g = torch.stack(grads)
        if self.search == "l2":
            return g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return g.sign()

    # -- the attack ------------------------------------------------------------------------
    def run(self, detector, x, y, generator):
        t = self.threat
        self._thr = decision_threshold(detector)
        n = len(x)
        d = x[0].numel()
        sign = push_sign(y, t.direction).float().cpu()
        count = QueryCounter(detector, n, self.batch_size)
        idx_all = torch.arange(n)
        theta = self.gamma / (d * math.sqrt(d)) if self.search == "l2" else self.gamma / (d * d)
        already = self._is_adv(count, x, idx_all, sign)
        start, found = self._init(count, x, sign, generator, skip=already)
        best = x.clone()
        dist = torch.full((n,), float("inf"))
        live = (found & ~already).nonzero().flatten()
        cur = x.clone()
        if len(live):
            cur[live] = self._binary_search(count, x[live], start[live], live, sign, theta)
            dist[live] = _dist(cur[live], x[live], self.search)
            best[live] = cur[live]
        dist[already] = 0.0
        for it in range(1, int(t.steps) + 1):
            live = live[count.counts[live] < self.max_queries]
            if len(live) == 0:
                break
            xl, xb = x[live], cur[live]
            dl = dist[live]
            delta = (math.sqrt(d) if self.search == "l2" else d) * theta * dl
            delta = delta.clamp_min(1e-6)
            n_evals = int(min(self.init_evals * math.sqrt(it), self.max_evals))
            v = self._grad_direction(count, xb, live, sign, delta, n_evals, generator)
            # geometric step search: halve until the step lands on the adversarial side
            xi = dl / math.sqrt(it)
            step_ok = torch.zeros(len(live), dtype=torch.bool)
            nxt = xb.clone()
            for _ in range(25):
                todo = (~step_ok).nonzero().flatten()
                if len(todo) == 0:
                    break
                cand = (xb[todo] + xi[todo].view(-1, 1, 1, 1).to(xb) * v[todo]).clamp(0, 1)
                ok = self._is_adv(count, cand, live[todo], sign)
                nxt[todo[ok]] = cand[ok]
                step_ok[todo[ok]] = True
                xi[todo[~ok]] = xi[todo[~ok]] / 2
            nb = self._binary_search(count, xl, nxt, live, sign, theta)
            nd = _dist(nb, xl, self.search)
            cur[live] = nb
            dist[live] = nd
            better = nd < _dist(best[live], xl, self.search)
            upd = live[better]
            best[upd] = nb[better]
        # the threat model's budget
        final_dist = torch.where(found, _dist(best, x, self.search), torch.full((n,), float("inf")))
        out = best
        if t.norm in ("linf", "l2") and math.isfinite(float(t.eps)):
            delta = out - x
            if t.norm == "linf":
                delta = delta.clamp(-float(t.eps), float(t.eps))
            else:
                nrm = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
                delta = delta * torch.clamp(float(t.eps) / nrm, max=1.0).view(-1, 1, 1, 1)
            out = (x + delta).clamp(0, 1)
        return out, count.counts, {"distance": final_dist}


def build_hopskipjump(seed: int = 0, init_evals: int = 100, max_evals: int = 1000, init_tries: int = 100,
                 gamma: float = 1.0, max_queries: int = 5000, search: str | None = None, batch_size: int = 256,
                 **options: Any) -> HopSkipJump:
    return HopSkipJump(threat_from(options, {"steps": 20, "loss": "margin"}), seed=seed, init_evals=init_evals,
                       max_evals=max_evals, init_tries=init_tries, gamma=gamma, max_queries=max_queries,
                       search=search, batch_size=batch_size)
