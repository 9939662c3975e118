"""Auto-PGD (APGD): step-size-free PGD with momentum (Croce & Hein, ICML 2020).

Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020. The algorithm of the authors' code (fra31/auto-attack,
``APGDAttack``), for a one-logit detector and fakebench's threat model:

- random start: Linf ``x + eps * t / max|t|`` with ``t ~ U(-1, 1)`` per value (a point on the
  surface of the cube, not uniform in it), L2 ``x + eps * t / ||t||`` with ``t ~ N(0, I)``;
- initial step ``2 eps``; the first step without momentum, then
  ``x_{k+1} = P(x_k + 0.75 (z_{k+1} - x_k) + 0.25 (x_k - x_{k-1}))`` with
  ``z_{k+1} = P(x_k + step * sign(grad))`` (Linf; L2: normalised gradient);
- checkpoints after ``k = max(int(0.22 N), 1)`` steps, then every ``k`` steps with ``k``
  shrinking by ``max(int(0.03 N), 1)`` down to ``max(int(0.06 N), 1)``; at a checkpoint the
  step is halved and the iterate restarts from the best point when (1) at most ``rho k`` of
  the last ``k`` steps increased the loss (``rho`` 0.75), or (2) the step was not halved at
  the previous checkpoint and the best loss did not improve since it;
- restarts attack only the samples not fooled yet (one generator for all of them);
- ``eot_iter``: gradients averaged over that many forward/backward passes (randomised
  defences; the threat model's EOT transforms apply inside each pass).

The loss is the threat model's: ``score`` (the logit pushed across the detector's threshold,
the binary form of APGD-CE: on the two-logit wrapper ``[0, z]`` cross-entropy is a monotone
function of ``z``, so the Linf steps, the loss comparisons and hence the whole run are the
same) or ``margin`` (capped at ``kappa`` past the threshold). The DLR loss and the targeted
variants need three or more classes and do not apply to binary detectors.

Returned per sample: the last iterate that crossed the detector's threshold when one did
(as the reference implementation returns), otherwise the iterate of highest loss (the
reference returns the clean image there; the worst case is more useful to report).
``tests/attacks/test_apgd.py`` compares this implementation with torchattacks' APGD.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import ConfigError
from .base import Attack, ThreatModel, decision_threshold, push_sign
from .gradient import threat_from


def _lp_norm(t: torch.Tensor, norm: str) -> torch.Tensor:
    f = t.flatten(1)
    return (f.abs().amax(1) if norm == "linf" else (f ** 2).sum(1).sqrt()).view(-1, 1, 1, 1)


def checkpoint_schedule(steps: int) -> tuple[int, int, int]:
    """(first checkpoint length, decrease, minimum) = (max(int(0.22 N), 1), max(int(0.03 N), 1),
    max(int(0.06 N), 1)): the integer form of the paper's p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)."""
    n = int(steps)
    return max(int(0.22 * n), 1), max(int(0.03 * n), 1), max(int(0.06 * n), 1)


class APGD(Attack):
    """APGD (Croce & Hein 2020) on the threat model's loss; see the module docstring.

    Args:
        threat: ``steps`` = iterations N, ``restarts``, ``eps``, ``norm`` (linf / l2),
            ``loss`` (score / margin + ``kappa``), ``eot`` / ``eot_samples``.
        rho: oscillation threshold of checkpoint condition 1 (0.75).
        eot_iter: forward/backward passes averaged per gradient (randomised defences).
    """

    name = "apgd"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, rho: float = 0.75, eot_iter: int = 1) -> None:
        super().__init__(threat, seed)
        if self.threat.norm not in ("linf", "l2"):
            raise ConfigError(f"norm: apgd supports linf, l2, got {self.threat.norm!r}")
        if int(self.threat.steps) < 1:
            raise ConfigError(f"steps: apgd needs at least 1 step, got {self.threat.steps}")
        if not math.isfinite(float(self.threat.eps)):  # its step size starts at 2 * eps
            raise ConfigError(f"eps: apgd needs a finite budget, got {self.threat.eps}")
        if not 0 < float(rho) <= 1:
            raise ConfigError(f"rho: expected a number in (0, 1], got {rho!r}")
        if int(eot_iter) < 1:
            raise ConfigError(f"eot_iter: must be >= 1, got {eot_iter!r}")
        self.rho, self.eot_iter = float(rho), int(eot_iter)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "rho": self.rho, "eot_iter": self.eot_iter}

    # -- pieces ------------------------------------------------------------------------------
    def _project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            return torch.clamp(torch.min(torch.max(x_adv, x - eps), x + eps), 0.0, 1.0)
        d = x_adv - x
        n = _lp_norm(d, "l2")
        return torch.clamp(x + d / (n + 1e-12) * torch.clamp(n, max=eps), 0.0, 1.0)

    def _start(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            t = 2 * torch.rand(x.shape, generator=generator) - 1
            t = t / _lp_norm(t, "linf")
        else:
            t = torch.randn(x.shape, generator=generator)
            t = t / (_lp_norm(t, "l2") + 1e-12)
        return (x + eps * t.to(x)).clamp(0.0, 1.0)

    def _loss_grad(self, detector: torch.nn.Module, x_adv: torch.Tensor, sign: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(per-sample loss, gradient, flipped-at-threshold) averaged over ``eot_iter`` passes."""
        x_adv = x_adv.detach().requires_grad_(True)
        grad = torch.zeros_like(x_adv)
        loss_sum = torch.zeros(len(x_adv), device=x_adv.device)
        margin_sum = torch.zeros(len(x_adv), device=x_adv.device)
        for _ in range(self.eot_iter):
            loss, margin = self.loss_and_margin(detector, x_adv, sign, generator)
            (g,) = torch.autograd.grad(loss.sum(), x_adv)
            grad += g.detach()
            loss_sum += loss.detach()
            margin_sum += margin.detach()
        return loss_sum / self.eot_iter, grad / self.eot_iter, margin_sum > 0

    def _single_run(self, detector: torch.nn.Module, x: torch.Tensor, sign: torch.Tensor,
                    generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One APGD run: (x_best, x_best_adv, fooled, loss_best)."""
        n_iter = int(self.threat.steps)
        k, size_decr, k_min = checkpoint_schedule(n_iter)
        eps = float(self.threat.eps)
        x_adv = self._start(x, generator)
        loss, grad, fooled = self._loss_grad(detector, x_adv, sign, generator)
        x_best, x_best_adv, grad_best, loss_best = x_adv.clone(), x_adv.clone(), grad.clone(), loss.clone()
        # -inf, not the reference's 0: its cross-entropy is always > 0, so the first checkpoint's
        # comparison with the unwritten last row always counts as an increase; -inf keeps that
        # for losses of any sign
        loss_steps = torch.full((n_iter, len(x)), -float("inf"))
        step = torch.full((len(x), 1, 1, 1), 2.0 * eps, device=x.device, dtype=x.dtype)
        x_old = x_adv.clone()
        counter, loss_best_last = 0, loss_best.clone()
        reduced_last = torch.ones(len(x), dtype=torch.bool)
        for i in range(n_iter):
            with torch.no_grad():
                momentum = x_adv - x_old
                x_old = x_adv.clone()
                a = 0.75 if i > 0 else 1.0
                if self.threat.norm == "linf":
                    z = self._project(x_adv + step * torch.sign(grad), x)
                else:
                    z = self._project(x_adv + step * grad / (_lp_norm(grad, "l2") + 1e-12), x)
                x_adv = self._project(x_adv + (z - x_adv) * a + momentum * (1 - a), x)
            loss, grad, crossed = self._loss_grad(detector, x_adv, sign, generator)
            fooled = fooled | crossed
            x_best_adv[crossed] = x_adv[crossed]
            loss_steps[i] = loss.detach().cpu()
            better = loss > loss_best
            x_best[better], grad_best[better], loss_best[better] = x_adv[better], grad[better], loss[better]
            counter += 1
            if counter == k:
                # condition 1: too few of the last k steps increased the loss (the reference reads
                # row -1, not yet written, at the first checkpoint: kept, so runs agree step by step)
                ups = sum((loss_steps[i - c] > loss_steps[i - c - 1]).float() for c in range(k))
                cond1 = ups <= k * self.rho
                cond2 = ~reduced_last & (loss_best_last.cpu() >= loss_best.cpu())
                halve = cond1 | cond2
                reduced_last, loss_best_last = halve.clone(), loss_best.clone()
                if bool(halve.any()):
                    idx = halve.nonzero().flatten().to(x.device)
                    step[idx] /= 2.0
                    x_adv[idx], grad[idx] = x_best[idx].clone(), grad_best[idx].clone()
                counter, k = 0, max(k - size_decr, k_min)
        return x_best, x_best_adv, fooled, loss_best

    def run(self, detector, x, y, generator):
        sign = push_sign(y, self.threat.direction).to(x)
        out = x.clone()
        best_loss = torch.full((len(x),), -float("inf"), device=x.device)
        fooled = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        with torch.no_grad():
            fooled |= sign * (detector(x) - decision_threshold(detector)) > 0  # already across: nothing to do
        per_run = (int(self.threat.steps) + 1) * self.eot_iter * max(int(self.threat.eot_samples), 1)
        queries = torch.ones(len(x), dtype=torch.long)  # the clean check
        for _ in range(int(self.threat.restarts)):
            todo = (~fooled).nonzero().flatten()
            if len(todo) == 0:
                break
            xb, xa, fo, lb = self._single_run(detector, x[todo], sign[todo], generator)
            queries[todo.cpu()] += per_run
            newly = todo[fo]
            out[newly] = xa[fo]
            fooled[newly] = True
            keep = todo[~fo]
            improve = lb[~fo] > best_loss[keep]
            out[keep[improve]] = xb[~fo][improve]
            best_loss[keep[improve]] = lb[~fo][improve]
        return out, queries, {"fooled": fooled.cpu()}


def build_apgd(seed: int = 0, rho: float = 0.75, eot_iter: int = 1, **options: Any) -> APGD:
    return APGD(threat_from(options, {"steps": 100, "eps": 8 / 255}), seed=seed, rho=rho, eot_iter=eot_iter)
