"""Adding a detector takes one new module and one registration: a toy detector registered from a
temporary module shows up in `fakebench list`, in the demo's skip lines and in config path
resolution, and builds through the one-call API, with no other file edited."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
import torch

TOY = textwrap.dedent('''
    """A toy plugin: one detector, one registration."""
    import torch

    from fakebench.detectors import register
    from fakebench.detectors.base import Detector
    from fakebench.registry import DetectorCard, WeightsFile


    class ToyMean(Detector):
        """Mean brightness as a logit (a stand-in for a real family)."""

        def __init__(self, gain: float = 1.0, toy_weights: str | None = None) -> None:
            super().__init__()
            self.gain = float(gain)
            self.toy_weights = toy_weights

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gain * (x.mean((1, 2, 3)) - 0.5)


    register(DetectorCard(
        name="toy-mean", summary="mean brightness minus one half (plugin test)", paper="Nobody, 2026",
        factory=__name__ + ":ToyMean", path_options=("toy_weights",),
        weights=(WeightsFile("toy_weights", "toy.pth", "the test's temporary folder"),),
        demo_note="a toy registered by tests/test_plugins.py"))
''')


@pytest.fixture()
def toy_module(tmp_path, monkeypatch):
    from fakebench import detectors

    (tmp_path / "toy_plugin.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("toy_plugin", None)
    mod = importlib.import_module("toy_plugin")
    yield mod, tmp_path
    detectors.REGISTRY.unregister("toy-mean")
    sys.modules.pop("toy_plugin", None)


def test_toy_detector_appears_everywhere(toy_module, capsys):
    from fakebench import create_detector
    from fakebench.cli import main
    from fakebench.demo import zoo_skip_lines
    from fakebench.runner.config import parse_experiment

    mod, tmp = toy_module
    assert main(["list", "detectors"]) == 0
    out = capsys.readouterr().out
    assert "toy-mean" in out and "Nobody, 2026" in out and "toy.pth (toy_weights=FILE)" in out

    assert "skipping toy-mean: a toy registered by tests/test_plugins.py" in zoo_skip_lines(None)

    (tmp / "data" / "real").mkdir(parents=True)
    (tmp / "data" / "fake").mkdir()
    exp = parse_experiment({"dataset": {"path": "data"},
                            "detectors": [{"detector": "toy-mean", "options": {"toy_weights": "w/toy.pth",
                                                                                "gain": 2.0}}]}, tmp)
    assert exp.detectors[0].options == {"toy_weights": str(tmp / "w" / "toy.pth"), "gain": 2.0}

    det = create_detector("toy-mean", gain=2.0)
    assert isinstance(det, mod.ToyMean) and det.card.name == "toy-mean" and det.differentiable
    x = torch.full((3, 3, 8, 8), 0.75)
    assert torch.allclose(det(x), torch.full((3,), 0.5))


def test_plugin_modules_reach_the_command_line(tmp_path):
    """FAKEBENCH_PLUGINS=module makes a plugin's cards visible to a fresh `fakebench` process."""
    (tmp_path / "toy_plugin.py").write_text(TOY)
    env = {**os.environ, "FAKEBENCH_PLUGINS": "toy_plugin",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "fakebench", "list", "detectors"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "toy-mean" in out
    bad = subprocess.run([sys.executable, "-m", "fakebench", "list", "detectors"], capture_output=True, text=True,
                         env={**env, "FAKEBENCH_PLUGINS": "no_such_plugin_module"})
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "fakebench: error: FAKEBENCH_PLUGINS: cannot import plugin module 'no_such_plugin_module' "
        "(No module named 'no_such_plugin_module')"]


def test_factory_type_errors_surface_and_bad_options_are_one_line():
    """Options the factory does not take: one ConfigError line; a TypeError raised inside the
    factory itself is a bug and surfaces as a TypeError (not reported as 'bad options')."""
    from fakebench import detectors
    from fakebench.errors import ConfigError
    from fakebench.registry import DetectorCard

    def broken(width: int = 4):
        return len(width)  # TypeError inside the factory

    detectors.register(DetectorCard(name="toy-broken", summary="x", factory=broken))
    try:
        with pytest.raises(ConfigError, match="toy-broken.*bad options.*heigth"):
            detectors.create("toy-broken", heigth=3)
        with pytest.raises(TypeError, match="has no len"):
            detectors.create("toy-broken")
    finally:
        detectors.REGISTRY.unregister("toy-broken")
