"""Expectation over transformation (EOT): random, differentiable image processing.

Athalye, Engstrom, Ilyas, Kwok, "Synthesizing robust adversarial examples", ICML 2018: an
attack that must survive a random processing ``T`` maximises ``E_T[loss(f(T(x)))]``; each
gradient step averages over fresh samples of ``T``. :meth:`fakebench.attacks.base.Attack.loss`
calls :func:`apply_eot` once per EOT sample.

``eot`` is a list of transforms applied in order, each a dict with an ``op`` and its
parameters; a parameter given as ``[lo, hi]`` is drawn uniformly at every call from the
generator passed in (seeded by the attack), a number is used as is. Every entry also takes
``p`` (probability that the transform is applied at this call, default 1).

- ``{"op": "jpeg", "quality": [60, 95]}``: JPEG round trip (quality drawn per image).
  ``mode: "diff"`` (default) uses kornia's differentiable codec (Reich et al., WACV 2024;
  standard IJG tables scaled by quality, 4:2:0 chroma subsampling, differentiable rounding);
  ``mode: "bpda"`` runs the real PIL codec forward and passes the gradient straight through
  (BPDA, Athalye, Carlini, Wagner, ICML 2018).
- ``{"op": "resize", "scale": [0.5, 1.0]}`` or ``{"op": "resize", "max_side": 1280}``:
  bilinear (antialiased) resize, one factor per call; ``restore: true`` resizes back to the
  input size.
- ``{"op": "blur", "sigma": [0, 1.5]}``: Gaussian blur (sigma in pixels, drawn per image);
  the ``blur`` degradation's own operation (:func:`fakebench.data.degrade.blur`).
- ``{"op": "crop", "fraction": [0.8, 1.0]}`` or ``{"op": "crop", "size": 224}``: random crop
  (one side fraction per call, a random position per image).
- ``{"op": "sharing", "platform": "facebook"}``: the differentiable approximation of a
  social-network upload (:func:`fakebench.data.sharing.eot_entries`).

Shapes: (N, 3, H, W) in [0, 1] in; (N, 3, H', W') out (resize and crop change H, W).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..data import degrade
from ..errors import ConfigError

Range = tuple[float, float]

# op -> {field: (kind, lo, hi)}; kind "range" accepts a number or [lo, hi] inside [lo, hi].
_FIELDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "jpeg": {"quality": ("range", 1.0, 100.0), "mode": ("choice", "diff", "bpda")},
    "resize": {"scale": ("range", 0.05, 4.0), "max_side": ("int", 8, 1 << 16), "restore": ("bool",),
               "interpolation": ("choice", "bilinear", "bicubic", "area", "nearest")},
    "blur": {"sigma": ("range", 0.0, 20.0)},
    "crop": {"fraction": ("range", 0.05, 1.0), "size": ("int", 1, 1 << 16)},
    "sharing": {"platform": ("platform",)},
}
# ops that need one of these fields
_NEEDS = {"jpeg": ("quality",), "resize": ("scale", "max_side"), "blur": ("sigma",),
          "crop": ("fraction", "size"), "sharing": ("platform",)}


def _where(i: int) -> str:
    return f"eot[{i}]"


def validate_eot(eot: Any) -> list[dict[str, Any]]:
    """Check an EOT list; raise :class:`ConfigError` with one line naming the bad field.
    Returns the list unchanged (entries are plain dicts)."""
    if not isinstance(eot, (list, tuple)):
        raise ConfigError(f"eot: expected a list of transforms, got {eot!r}")
    for i, entry in enumerate(eot):
        w = _where(i)
        if not isinstance(entry, dict):
            raise ConfigError(f"{w}: expected a dict like {{'op': 'jpeg', 'quality': [60, 95]}}, got {entry!r}")
        op = entry.get("op")
        if op not in _FIELDS:
            raise ConfigError(f"{w}.op: {op!r} is not one of {sorted(_FIELDS)}")
        fields = _FIELDS[op]
        for key, value in entry.items():
            if key == "op":
                continue
            if key == "p":
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                    raise ConfigError(f"{w}.p: expected a probability in [0, 1], got {value!r}")
                continue
            if key not in fields:
                raise ConfigError(f"{w}.{key}: unknown field for op {op!r} (known: {', '.join(sorted(fields) + ['p'])})")
            _check_field(f"{w}.{key}", value, fields[key])
        need = _NEEDS[op]
        present = [k for k in need if k in entry]
        if not present:
            raise ConfigError(f"{w}: op {op!r} needs {' or '.join(repr(k) for k in need)}")
        if len(present) > 1:
            raise ConfigError(f"{w}: op {op!r} takes only one of {', '.join(repr(k) for k in need)}")
    return list(eot)


def _check_field(where: str, value: Any, spec: tuple[Any, ...]) -> None:
    kind = spec[0]
    if kind == "range":
        lo, hi = spec[1], spec[2]
        vals = value if isinstance(value, (list, tuple)) else [value]
        if isinstance(value, (list, tuple)) and len(value) != 2:
            raise ConfigError(f"{where}: expected a number or [lo, hi], got {value!r}")
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
                raise ConfigError(f"{where}: values must be numbers in [{lo:g}, {hi:g}], got {value!r}")
        if len(vals) == 2 and vals[0] > vals[1]:
            raise ConfigError(f"{where}: range [lo, hi] needs lo <= hi, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or not spec[1] <= value <= spec[2]:
            raise ConfigError(f"{where}: expected an integer in [{spec[1]}, {spec[2]}], got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
    elif kind == "choice":
        if value not in spec[1:]:
            raise ConfigError(f"{where}: {value!r} is not one of {list(spec[1:])}")
    elif kind == "platform":
        from ..data.sharing import PLATFORMS

        if value not in PLATFORMS:
            raise ConfigError(f"{where}: {value!r} is not one of {sorted(PLATFORMS)}")


# -- sampling ------------------------------------------------------------------------------

def _bounds(value: Any) -> Range:
    if isinstance(value, (list, tuple)):
        return float(value[0]), float(value[1])
    return float(value), float(value)


def _sample(value: Any, n: int, generator: torch.Generator | None) -> torch.Tensor:
    """(n,) float64 draws, uniform in the range (constant for a number)."""
    lo, hi = _bounds(value)
    if lo == hi:
        return torch.full((n,), lo, dtype=torch.float64)
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return lo + (hi - lo) * u


def _coin(p: float, generator: torch.Generator | None) -> bool:
    if p >= 1:
        return True
    return bool(torch.rand(1, generator=generator).item() < p)


# -- differentiable operations (also usable on their own) ---------------------------------

def jpeg_diff(x: torch.Tensor, quality: torch.Tensor | float) -> torch.Tensor:
    """Differentiable JPEG round trip (kornia, 4:2:0). ``quality``: scalar or (N,) in [1, 100]."""
    from kornia.enhance import jpeg_codec_differentiable

    q = torch.as_tensor(quality, dtype=torch.float32, device=x.device).reshape(-1)
    if q.numel() == 1:
        q = q.expand(len(x)).contiguous()
    out = jpeg_codec_differentiable(x.float(), q)
    return out.clamp(0, 1).to(x.dtype)


def jpeg_bpda(x: torch.Tensor, quality: torch.Tensor | float, subsampling: str = "4:2:0") -> torch.Tensor:
    """Real (PIL) JPEG forward, identity gradient backward (BPDA). ``quality`` scalar or (N,)."""
    q = torch.as_tensor(quality, dtype=torch.float64).reshape(-1)
    if q.numel() == 1:
        q = q.expand(len(x))
    with torch.no_grad():
        xd = x.detach()
        coded = torch.cat([degrade.jpeg(xd[i : i + 1].cpu(), int(round(float(q[i]))), subsampling=subsampling)
                           for i in range(len(x))]).to(x)
    return x + (coded - x).detach()


def resize_diff(x: torch.Tensor, size: tuple[int, int], interpolation: str = "bilinear") -> torch.Tensor:
    """Resize to ``size`` = (h, w): the ``resize`` degradation's operation
    (:func:`fakebench.data.degrade.resize_to`, antialiased when shrinking), clamped to [0, 1]."""
    out = degrade.resize_to(x, size, interpolation)
    return out if out is x else out.clamp(0, 1)


#: the degradation's output-size rule (scale factor or longest side), shared with EOT
scaled_size = degrade.resized_size

#: the ``blur`` degradation itself (one sigma per image allowed)
gaussian_blur_diff = degrade.blur


def random_crop(x: torch.Tensor, size: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
    """A (h, w) window at a random position per image (differentiable indexing)."""
    n, _, H, W = x.shape
    h, w = min(int(size[0]), H), min(int(size[1]), W)
    if (h, w) == (H, W):
        return x
    tops = torch.randint(0, H - h + 1, (n,), generator=generator)
    lefts = torch.randint(0, W - w + 1, (n,), generator=generator)
    return torch.stack([degrade.crop(x[i], (h, w), int(t), int(l_)) for i, (t, l_) in enumerate(zip(tops, lefts))])


# -- the EOT entry point -------------------------------------------------------------------

def _apply_one(x: torch.Tensor, entry: dict[str, Any], generator: torch.Generator | None) -> torch.Tensor:
    op = entry["op"]
    n, _, h, w = x.shape
    if op == "jpeg":
        q = _sample(entry["quality"], n, generator)
        if entry.get("mode", "diff") == "bpda":
            return jpeg_bpda(x, q)
        return jpeg_diff(x, q)
    if op == "resize":
        interp = entry.get("interpolation", "bilinear")
        if "max_side" in entry:
            size = scaled_size(h, w, max_side=int(entry["max_side"]))
        else:
            size = scaled_size(h, w, scale=float(_sample(entry["scale"], 1, generator)[0]))
        y = resize_diff(x, size, interp)
        if entry.get("restore", False):
            y = resize_diff(y, (h, w), "bilinear" if interp == "area" else interp)
        return y
    if op == "blur":
        return gaussian_blur_diff(x, _sample(entry["sigma"], n, generator))
    if op == "crop":
        if "size" in entry:
            size = (int(entry["size"]), int(entry["size"]))
        else:
            f = float(_sample(entry["fraction"], 1, generator)[0])
            size = (max(1, int(round(h * f))), max(1, int(round(w * f))))
        return random_crop(x, size, generator)
    if op == "sharing":
        from ..data.sharing import eot_entries

        for sub in eot_entries(entry["platform"]):
            x = _apply_one(x, sub, generator)
        return x
    raise ConfigError(f"eot: unknown op {op!r}")  # pragma: no cover - validated before


def apply_eot(x: torch.Tensor, eot_list: Sequence[dict[str, Any]], generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply one random draw of the EOT transform chain to a batch (differentiable).

    ``x``: (N, 3, H, W) in [0, 1]. ``eot_list``: see the module docstring. ``generator``: the
    attack's seeded generator (parameters are drawn from it; ``None`` uses torch's global RNG).
    Raises :class:`ConfigError` naming the bad field of an invalid entry.
    """
    validate_eot(list(eot_list))
    for entry in eot_list:
        if not _coin(float(entry.get("p", 1.0)), generator):
            continue
        x = _apply_one(x, entry, generator)
    return x
