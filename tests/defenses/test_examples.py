"""The analysis scripts under examples/defenses: the source re-cut is exact and the threshold rules are right."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fakebench.builtin import build_builtin
from fakebench.data import load_dataset, select
from fakebench.data.pipeline import load_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "defenses"
pytestmark = pytest.mark.usefixtures("one_thread")


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"fakebench_example_{name}", EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Path:
    return build_builtin(tmp_path_factory.mktemp("plain") / "ds", seed=0, tae_weights=False, postprocess=None,
                         patch=32, n_train=60, n_val=24, n_test=96, train_steps=20, progress=False)


def test_source_recut_reproduces_the_real_crops_exactly_and_not_the_fakes(plain):
    gap = _load("source_gap")
    test = select(load_dataset(plain), split="test")
    reals = [s for s in test if s.label == 0]
    fakes = [s for s in test if s.label == 1]
    assert reals and fakes
    x, keep = load_stack(reals)
    assert float((gap.sources(reals, keep, x.shape[-1]) - x).abs().max()) == 0.0  # same crop, same views
    xf, kf = load_stack(fakes)
    d = (gap.sources(fakes, kf, xf.shape[-1]) - xf).abs().flatten(1).amax(1)
    assert float(d.min()) > 0  # every fake differs from the crop it was made from


def test_source_gap_refuses_post_processed_builds(tmp_path, monkeypatch, capsys):
    gap = _load("source_gap")
    d = build_builtin(tmp_path / "pp", seed=0, tae_weights=False, patch=32, n_train=40, n_val=16, n_test=32,
                      train_steps=5, progress=False)
    monkeypatch.setattr(sys, "argv", ["source_gap.py", str(d)])
    with pytest.raises(SystemExit, match="post-processing; sources cannot be re-cut"):
        gap.main()


def test_protocol_thresholds_maximise_balanced_accuracy_and_keep_val_fpr_at_10_percent():
    prot = _load("protocols")
    s = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    t, tb = prot.thresholds(s, y)
    # best split: 0.35 and above is fake except the real at 0.6 -> cut at 0.3 (TPR 1, TNR 0.75) or 0.6 (0.75, 1)
    bacc = 0.5 * (np.mean(s[y == 1] > t) + np.mean(s[y == 0] <= t))
    assert bacc == pytest.approx(0.875)
    assert all(0.5 * (np.mean(s[y == 1] > c) + np.mean(s[y == 0] <= c)) <= bacc for c in s)
    reals = np.linspace(-3, 3, 40)  # 10% of 40: at most 4 reals above (b)
    _, tb = prot.thresholds(np.r_[reals, [5.0]], np.r_[np.zeros(40, int), [1]])
    assert np.sum(reals > tb) == 4
