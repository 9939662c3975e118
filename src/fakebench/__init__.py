"""fakebench: measure and harden the adversarial robustness of AI-generated-image detectors.

The first lines of Python::

    import fakebench
    det = fakebench.create_detector("cnnspot", arch="resnet10", width=16)
    atk = fakebench.create_attack("pgd", eps=4/255, steps=10, direction="evade")
    store = fakebench.evaluate({"dataset": {"path": "data/"}, "detectors": [...], "attacks": [...]})

Everything here is imported on first use (``import fakebench`` stays fast).
"""

from __future__ import annotations

from typing import Any

from ._version import __version__


def create_detector(name: str, **options: Any) -> Any:
    """A registered detector (``fakebench list detectors``); see :func:`fakebench.detectors.create`."""
    from .detectors import create

    return create(name, **options)


def load_detector(directory: Any) -> Any:
    """A detector saved by ``Detector.save`` / ``fakebench train``."""
    from .detectors import load

    return load(directory)


def create_attack(name: str, **options: Any) -> Any:
    """A registered attack (``fakebench list attacks``); see :func:`fakebench.attacks.create`."""
    from .attacks import create

    return create(name, **options)


def load_dataset(path: Any, format: Any = None, **options: Any) -> Any:
    """The samples of a dataset folder or manifest, or of a public benchmark in its release
    layout (``format="truefake", ids="gan2:pre&real:pre", split_file=...``); see
    :func:`fakebench.data.load_dataset`."""
    from .data import load_dataset as _load

    return _load(path, format=format, **options)


def evaluate(config: Any, base: Any = ".", progress: bool = False) -> Any:
    """Run an experiment: a YAML file path or a config mapping (relative paths against ``base``).
    Returns the path of the results store; the report is written next to it."""
    from pathlib import Path

    from .report import build_report
    from .runner import evaluate as _evaluate, load_experiment, parse_experiment

    if isinstance(config, (str, Path)):
        exp = load_experiment(config)
    else:
        exp = parse_experiment(config, Path(base).resolve(), default_run=str(config.get("run") or "run"))
    store = _evaluate(exp, progress=progress)
    build_report(store, exp.run, exp.output, title=f"fakebench: {exp.run}")
    return store


def robustness(detectors: Any, data: Any, eps: Any = (2 / 255, 4 / 255, 8 / 255), out: Any = None, **settings: Any) -> Any:
    """Adaptive robustness leaderboard: ``{name: detector or checkpoint folder}`` on a dataset
    with val / test splits; see :func:`fakebench.experiments.robustness.robustness`. Extra
    keywords go to :class:`~fakebench.experiments.robustness.Settings` (``fpr``, ``steps``,
    ``queries``, ...) or to the call (``limit``, ``val_limit``, ``device``, ``progress``)."""
    from .experiments.robustness import Settings, robustness as _robustness

    call = {k: settings.pop(k) for k in ("limit", "val_limit", "device", "progress") if k in settings}
    return _robustness(detectors, data, Settings(eps=tuple(eps) if not isinstance(eps, float) else (eps,), **settings),
                       out=out, **call)


__all__ = ["__version__", "create_detector", "load_detector", "create_attack", "load_dataset", "evaluate", "robustness"]
