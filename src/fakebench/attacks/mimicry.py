"""Feature-space mimicry: hide a synthetic image, or plant a synthetic-looking decoy.

Boato, De Natale, De Stefano, Pasquini, Roli, "Adversarial mimicry attacks against image
splicing forensics: an approach for jointly hiding manipulations and creating false
detections" (Pattern Recognition Letters, 2024), attack a forensic detector in the space of
its internal features: the attacker estimates where pristine and manipulated content lie in
that space (class centroids over reference images) and perturbs pixels so that the features
of the attacked content move onto the *other* class's centroid. Adapted here from splicing
localisation to synthetic-image detection:

- ``mode="hide"``: the whole image (or each ``patch`` x ``patch`` patch of it) is pulled
  toward the centroid of the opposite class: a synthetic image toward the real centroid
  (default direction ``evade``);
- ``mode="decoy"``: only a chosen region (``box=(top, left, height, width)`` in pixels, or a
  ``mask`` tensor (H, W) / (N, 1, H, W)) is perturbed, and the features of that region are
  pulled toward the opposite centroid: a region of a real photo made to look synthetic
  (default direction ``spoof``). Pixels outside the region are never changed.

Features: the output of ``detector.feature_layers()[layer]`` captured with a forward hook
(the default layer is the last one listed, for ResNets the global-pooled ``pool``; a decoy
defaults to the deepest layer with a spatial map, ``layer4`` for ResNets, so the region can be
localised). ``pooling="gap"`` (default) averages a (N, C, h, w) map over its spatial cells (in
``decoy`` mode over the cells covered by the region, weighted by the fraction each covers;
with ``patch`` over each patch's cells, giving one feature vector per patch), averages a
(N, L, D) token sequence over its tokens, and keeps a (N, D) vector as is.
``pooling="flatten"`` keeps the whole map (one vector of C*h*w values: reference and attacked
images must then have the same size). A detector that calls the layer several times per image
(tiling) gets the mean of the pooled calls.

Centroids come from :meth:`Mimicry.fit` (tensors of reference real and fake images) or from
the ``reference`` option (a dataset folder / manifest, ``reference_split``,
``reference_limit`` images per class) or ``real_ref``/``fake_ref`` (folders of images); they
are recomputed when the attack meets another detector. The objective (minimised with
signed-gradient steps under the Linf pixel budget, PGD-style projection after every step) is
the squared Euclidean distance between the pooled features and the target centroid, divided
by the squared distance between the two centroids (so 1.0 is "as far as the classes are
apart"); the result's ``info`` holds it per sample, ``feature_distance_before`` and ``_after``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..errors import ConfigError, DataError
from .base import ThreatModel
from .gradient import PGD, threat_from

MODES = ("hide", "decoy")
POOLINGS = ("gap", "flatten")


@contextmanager
def capture(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect every output of ``module`` while the context is open (forward hook)."""
    outs: list[torch.Tensor] = []

    def hook(_m: Any, _inp: Any, out: Any) -> None:
        if isinstance(out, (tuple, list)):
            out = out[0]
        outs.append(out)

    handle = module.register_forward_hook(hook)
    try:
        yield outs
    finally:
        handle.remove()


def _weights(mask: torch.Tensor | None, h: int, w: int, n: int, patch_grid: tuple[int, int] | None,
             like: torch.Tensor) -> torch.Tensor:
    """(N, K, h, w) cell weights, each of the K groups summing to 1 (K = 1 without patches)."""
    if patch_grid is not None:
        gh, gw = patch_grid
        ys = torch.div(torch.arange(h) * gh, h, rounding_mode="floor")
        xs = torch.div(torch.arange(w) * gw, w, rounding_mode="floor")
        group = (ys.view(-1, 1) * gw + xs.view(1, -1)).flatten()
        wts = F.one_hot(group, gh * gw).T.reshape(1, gh * gw, h, w).to(like)
        wts = wts.expand(n, -1, -1, -1)
    else:
        wts = torch.ones(n, 1, h, w, dtype=like.dtype, device=like.device)
    if mask is not None:
        m = F.adaptive_avg_pool2d(mask.to(like), (h, w))  # fraction of each cell inside the region
        wts = wts * m
    return wts / wts.flatten(2).sum(2).clamp_min(1e-12)[..., None, None]


def pool_features(feat: torch.Tensor, n: int, pooling: str = "gap", mask: torch.Tensor | None = None,
                  patch_grid: tuple[int, int] | None = None) -> torch.Tensor:
    """Pool one captured layer output to (N, K, D) vectors (K = patches, 1 without)."""
    if pooling == "flatten":
        return feat.reshape(n, 1, -1)
    if feat.ndim == 4:
        wts = _weights(mask, feat.shape[2], feat.shape[3], n, patch_grid, feat)
        return torch.einsum("nchw,nkhw->nkc", feat, wts)
    if feat.ndim == 3:  # token sequence: (N, L, D) or (L, N, D)
        seq = feat if feat.shape[0] == n else feat.transpose(0, 1)
        return seq.mean(1, keepdim=True)
    if feat.ndim == 2:
        return feat.unsqueeze(1)
    return feat.reshape(n, 1, -1)


def _region_mask(n: int, h: int, w: int, box: Sequence[int] | None, mask: Any, device: Any) -> torch.Tensor | None:
    if mask is not None:
        m = torch.as_tensor(mask, dtype=torch.float32)
        if m.ndim == 2:
            m = m.view(1, 1, *m.shape)
        elif m.ndim == 3:
            m = m.unsqueeze(1)
        if m.shape[-2:] != (h, w):
            raise ConfigError(f"mask: shape {tuple(m.shape[-2:])} does not match the images ({h}, {w})")
        if m.shape[0] not in (1, n):
            raise ConfigError(f"mask: {m.shape[0]} masks for {n} images")
        m = (m > 0.5).float().expand(n, 1, h, w)
    else:
        if box is None:
            return None
        top, left, bh, bw = (int(v) for v in box)
        if bh <= 0 or bw <= 0 or top < 0 or left < 0 or top >= h or left >= w:
            raise ConfigError(f"box: {tuple(box)} (top, left, height, width) is empty or outside {h}x{w} images")
        m = torch.zeros(n, 1, h, w)
        m[..., top : top + bh, left : left + bw] = 1.0
    if float(m.flatten(1).sum(1).min()) == 0:
        raise ConfigError("mask: empty region")
    return m.to(device)


def load_reference_images(folder: str | Path, limit: int | None = None, size: int | None = None) -> torch.Tensor:
    """Images of ``folder`` (sorted, recursive) as (N, 3, S, S), centre-cropped to the smallest
    side among them (or ``size``); unreadable files are skipped."""
    from ..data import list_image_files

    d = Path(folder)
    if not d.is_dir():
        raise ConfigError(f"{d}: reference folder not found")
    files = list_image_files(d)
    return _stack_center([str(p) for p in files], limit, size)


def _stack_center(paths: Sequence[str], limit: int | None, size: int | None) -> torch.Tensor:
    """Centre crops of the first ``limit`` readable images (the shared pipeline's :func:`load_stack`)."""
    from ..data import Sample
    from ..data.pipeline import load_stack

    try:
        x, _ = load_stack([Sample(p, 0, "", "") for p in paths], size=size, limit=limit)
    except DataError as exc:
        raise ConfigError(f"mimicry references: {exc}") from None
    return x


def _device_dtype(detector: torch.nn.Module) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of the detector's first parameter (CPU / float32 without)."""
    p = next(iter(detector.parameters()), None) if hasattr(detector, "parameters") else None
    if p is None:
        return torch.device("cpu"), torch.float32
    return p.device, (p.dtype if p.is_floating_point() else torch.float32)


class Mimicry(PGD):
    """Feature-space mimicry attack (Boato, De Natale, De Stefano, Pasquini, Roli, Pattern
    Recognition Letters 2024), adapted to synthetic-image detection; see the module docstring.

    Args:
        mode: ``hide`` (whole image) or ``decoy`` (``box``/``mask`` region only).
        layer: key of ``detector.feature_layers()`` (default: see the module docstring).
        pooling: ``gap`` or ``flatten``.
        patch: side in pixels of the patches whose features are matched one by one (hide).
        box / mask: the decoy region.
        reference / reference_split / reference_limit, real_ref / fake_ref: where the
            centroids come from when :meth:`fit` was not called.
    """

    name = "mimicry"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, mode: str = "hide", layer: str | None = None,
                 pooling: str = "gap", patch: int | None = None, box: Sequence[int] | None = None, mask: Any = None,
                 reference: str | None = None, reference_split: str | None = "train", reference_limit: int = 64,
                 real_ref: str | None = None, fake_ref: str | None = None, batch_size: int = 32) -> None:
        super().__init__(threat, seed)
        if mode not in MODES:
            raise ConfigError(f"mode: {mode!r} is not one of {MODES}")
        if pooling not in POOLINGS:
            raise ConfigError(f"pooling: {pooling!r} is not one of {POOLINGS}")
        if mode == "decoy" and box is None and mask is None:
            raise ConfigError("mimicry decoy: needs a region, box=(top, left, height, width) or mask")
        if patch is not None and (int(patch) < 1 or mode != "hide" or pooling != "gap"):
            raise ConfigError("patch: a positive size, for mode='hide' with pooling='gap' only")
        if box is not None and len(box) != 4:
            raise ConfigError(f"box: expected (top, left, height, width), got {box!r}")
        self.mode, self.layer, self.pooling = mode, layer, pooling
        self.patch = int(patch) if patch is not None else None
        self.box = tuple(int(v) for v in box) if box is not None else None
        self.mask = mask
        self.reference, self.reference_split, self.reference_limit = reference, reference_split, int(reference_limit)
        self.real_ref, self.fake_ref = real_ref, fake_ref
        self.batch_size = int(batch_size)
        self.centroids: dict[str, torch.Tensor] | None = None  # {"real": (D,), "fake": (D,)}
        self._fitted_on: int | None = None
        self._resolved: tuple[Any, str] | None = None
        self._ctx: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {**super().params(), "mode": self.mode, "layer": self.layer, "pooling": self.pooling,
                "patch": self.patch, "box": self.box, "mask": self.mask is not None, "reference": self.reference,
                "reference_split": self.reference_split, "reference_limit": self.reference_limit,
                "real_ref": self.real_ref, "fake_ref": self.fake_ref}

    # -- features ---------------------------------------------------------------------------
    def _module(self, detector: torch.nn.Module) -> torch.nn.Module:
        layers = detector.feature_layers() if hasattr(detector, "feature_layers") else {}
        if not layers:
            raise ConfigError(f"mimicry: detector {type(detector).__name__} exposes no feature_layers()")
        key = (id(detector), tuple(layers))
        if self._resolved is None or self._resolved[0] != key:
            name = self.layer or self._default_layer(detector, layers)
            if name not in layers:
                raise ConfigError(f"layer: {name!r} is not one of {list(layers)}")
            self._resolved = (key, name)
        return layers[self._resolved[1]]

    @property
    def layer_name(self) -> str | None:
        """The layer actually used (the option, or the default picked for the last detector)."""
        return self._resolved[1] if self._resolved is not None else self.layer

    def _default_layer(self, detector: torch.nn.Module, layers: dict[str, torch.nn.Module]) -> str:
        names = list(layers)
        if self.mode == "hide" and self.patch is None:
            return names[-1]
        device, dtype = _device_dtype(detector)
        probe = torch.rand(1, 3, 64, 64, device=device, dtype=dtype)
        spatial = []
        for nm in names:
            with capture(layers[nm]) as outs, torch.no_grad():
                detector(probe)
            if outs and outs[0].ndim == 4 and outs[0].shape[-1] * outs[0].shape[-2] > 1:
                spatial.append(nm)
        return spatial[-1] if spatial else names[-1]

    def features(self, detector: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled features (N, K, D) of ``x`` at the attack's layer (differentiable)."""
        module = self._module(detector)
        grid = None
        if self.patch is not None:
            grid = (max(x.shape[-2] // self.patch, 1), max(x.shape[-1] // self.patch, 1))
        with capture(module) as outs:
            detector(x)
        if not outs:
            raise ConfigError(f"layer: {self.layer_name!r} was not called by the detector's forward")
        pooled = [pool_features(o, len(x), self.pooling, mask, grid) for o in outs]
        return torch.stack(pooled).mean(0) if len(pooled) > 1 else pooled[0]

    @torch.no_grad()
    def fit(self, detector: torch.nn.Module, real_x: torch.Tensor, fake_x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Centroids of the pooled features of reference real (N, 3, H, W) and fake images
        (every patch counts once with ``patch``), moved chunk by chunk to the detector's device
        (and floating dtype). Returns and stores ``{"real", "fake"}``."""
        if len(real_x) == 0 or len(fake_x) == 0:
            raise ConfigError("mimicry fit: needs at least one real and one fake reference image")
        device, dtype = _device_dtype(detector)
        was = detector.training
        detector.eval()
        try:
            cents = {}
            for key, xs in (("real", real_x), ("fake", fake_x)):
                parts = [self.features(detector, xs[i : i + self.batch_size].to(device=device, dtype=dtype))
                         .flatten(0, 1)
                         for i in range(0, len(xs), self.batch_size)]
                cents[key] = torch.cat(parts).float().mean(0)
        finally:
            detector.train(was)
        if cents["real"].shape != cents["fake"].shape:
            raise ConfigError("mimicry fit: real and fake features differ in size (pooling='flatten' needs one image size)")
        self.centroids = cents
        self._fitted_on = id(detector)
        return cents

    def _fit_from_options(self, detector: torch.nn.Module, size: int) -> None:
        if self.reference is not None:
            from ..data import load_dataset, select

            samples = load_dataset(self.reference)
            if self.reference_split:
                picked = select(samples, split=self.reference_split)
                samples = picked or samples
            real = [s.path for s in samples if int(s.label) == 0]
            fake = [s.path for s in samples if int(s.label) == 1]
            crop = size if self.pooling == "flatten" else None
            rx = _stack_center(real, self.reference_limit, crop)
            fx = _stack_center(fake, self.reference_limit, crop)
        elif self.real_ref is not None and self.fake_ref is not None:
            crop = size if self.pooling == "flatten" else None
            rx = load_reference_images(self.real_ref, self.reference_limit, crop)
            fx = load_reference_images(self.fake_ref, self.reference_limit, crop)
        else:
            raise ConfigError("mimicry: no centroids: call fit(detector, real_x, fake_x) or pass "
                              "reference=DATASET or real_ref=DIR and fake_ref=DIR")
        self.fit(detector, rx, fx)

    # -- the attack -------------------------------------------------------------------------
    def _distance(self, feats: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        scale = (self.centroids["real"] - self.centroids["fake"]).pow(2).sum().clamp_min(1e-12)
        return (feats - target[:, None, :]).pow(2).sum(2).mean(1) / scale.to(feats)

    def loss(self, detector, x_adv, sign, generator=None):
        """Per-sample objective to maximise: minus the normalised squared distance of the
        pooled features to the target centroid (averaged over EOT draws)."""
        ctx = self._ctx
        t = self.threat
        draws = max(int(t.eot_samples), 1) if t.eot else 1
        total = 0.0
        for _ in range(draws):
            xin = x_adv
            if t.eot:
                from .eot import apply_eot

                xin = apply_eot(x_adv, t.eot, generator)
            mask = ctx["mask"] if xin.shape[-2:] == x_adv.shape[-2:] else None
            total = total - self._distance(self.features(detector, xin, mask), ctx["target"])
        return total / draws

    def _start(self, x, generator, random_start):
        start = super()._start(x, generator, random_start)
        mask = self._ctx.get("mask")
        return start if mask is None else x + (start - x) * mask

    def _direction(self, grad, state):
        mask = self._ctx.get("mask")
        if mask is not None:
            grad = grad * mask
        return super()._direction(grad, state)

    def run(self, detector, x, y, generator):
        has_refs = self.reference is not None or (self.real_ref is not None and self.fake_ref is not None)
        if self.centroids is None or (self._fitted_on != id(detector) and has_refs):
            self._fit_from_options(detector, min(x.shape[-2:]))
        elif self._fitted_on != id(detector):
            raise ConfigError("mimicry: the centroids were fitted on another detector; call fit() with this one "
                              "or pass reference=DATASET so that they are refitted")
        assert self.centroids is not None
        sign = torch.as_tensor(self._signs(y)).to(x)
        real_c, fake_c = (self.centroids[k].to(x) for k in ("real", "fake"))
        target = torch.where(sign.view(-1, 1) > 0, fake_c.view(1, -1), real_c.view(1, -1))
        mask = _region_mask(len(x), x.shape[-2], x.shape[-1], self.box, self.mask, x.device) \
            if self.mode == "decoy" else None
        self._ctx = {"target": target, "mask": mask}
        try:
            with torch.no_grad():
                before = self._distance(self.features(detector, x, mask), target)
            adv, q = super().run(detector, x, y, generator)
            if mask is not None:  # exact zero outside the region
                adv = torch.where(mask > 0, adv, x)
            with torch.no_grad():
                after = self._distance(self.features(detector, adv, mask), target)
        finally:
            self._ctx = {}
        return adv, q, {"feature_distance_before": before.cpu(), "feature_distance_after": after.cpu()}

    def _signs(self, y: torch.Tensor) -> torch.Tensor:
        from .base import push_sign

        return push_sign(y, self.threat.direction)


def build_mimicry(seed: int = 0, mode: str = "hide", layer: str | None = None, pooling: str = "gap",
             patch: int | None = None, box: Sequence[int] | None = None, mask: Any = None,
             reference: str | None = None, reference_split: str | None = "train", reference_limit: int = 64,
             real_ref: str | None = None, fake_ref: str | None = None, batch_size: int = 32,
             **options: Any) -> Mimicry:
    defaults = {"steps": 20, "direction": "evade" if mode == "hide" else "spoof"}
    return Mimicry(threat_from(options, defaults), seed=seed, mode=mode, layer=layer, pooling=pooling, patch=patch,
                   box=box, mask=mask, reference=reference, reference_split=reference_split,
                   reference_limit=reference_limit, real_ref=real_ref, fake_ref=fake_ref, batch_size=batch_size)
