"""A real small run (tiny random-init detector, 48 images of 32 px, PGD / JPEG / an attack that
changes nothing) and its report, shared by the HTML, gallery and browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from conftest import make_tiny_dataset

ATTACKS = [
    {"name": "pgd", "attack": "pgd", "options": {"direction": "evade", "eps": "4/255", "steps": 3, "step_size": "2/255"}},
    {"attack": "jpeg", "options": {"quality": 75}},
    {"name": "noop", "attack": "blur", "options": {"sigma": 0}},  # changes nothing
]


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> dict:
    from fakebench import detectors
    from fakebench.report import build_report
    from fakebench.runner import evaluate, load_experiment

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        root = tmp_path_factory.mktemp("small_run")
        manifest = make_tiny_dataset(root / "data", n_per_class=24, size=32)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
        det.threshold = 0.0
        det.save(root / "det")
        cfg = {"run": "small", "output": str(root / "out"), "seed": 0, "batch_size": 16, "gallery": 3,
               "dataset": {"path": str(manifest)},
               "detectors": [{"name": "tiny", "checkpoint": str(root / "det")}], "attacks": ATTACKS}
        (root / "exp.yaml").write_text(yaml.safe_dump(cfg))
        exp = load_experiment(root / "exp.yaml")
        store = evaluate(exp, progress=False)
        log = exp.output / "run.log"
        log.write_text("log line\n")
        results = build_report(store, "small", exp.output, title="small run", log_file=log, gallery=3)
    finally:
        torch.set_num_threads(n)
    return {"root": root, "out": Path(exp.output), "store": store, "results": results, "manifest": manifest}
