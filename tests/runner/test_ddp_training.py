"""``fakebench train`` under torchrun (DistributedDataParallel, gloo on CPU): 2 ranks with B/2
images each take the same 5 steps as one process with B images."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import make_tiny_dataset
from safetensors.torch import load_file
from test_distributed import finish, torchrun

from fakebench.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.slow  # two fresh processes importing torch
def test_two_ranks_half_batch_equal_one_rank_full_batch_after_5_steps(tmp_path):
    data = make_tiny_dataset(tmp_path / "data", n_per_class=36, size=16)  # 43 train images: 5 steps of 8 in epoch 0
    common = ["cnnspot", "--data", str(data), "--arch", "resnet10", "--width", "8", "--crop", "16", "--epochs", "1",
              "--max-steps", "5", "--batch-size", "8", "--lr", "1e-3", "--seed", "3", "--no-progress"]
    assert main(["train", *common, "--out", str(tmp_path / "one")]) == 0
    finish(torchrun(["--standalone", "--nproc-per-node", "2", "-m", "fakebench", "train", *common,
                     "--out", str(tmp_path / "two")]))
    one, two = load_file(str(tmp_path / "one" / "model.safetensors")), load_file(str(tmp_path / "two" / "model.safetensors"))
    assert one.keys() == two.keys()
    start = {}
    with torch.random.fork_rng(devices=[]):  # the seed's initial weights, to show training moved them
        torch.manual_seed(3)
        from fakebench import detectors

        start = detectors.create("cnnspot", arch="resnet10", width=8).state_dict()
    moved = max(float((one[k].float() - start[k].float()).abs().max()) for k in one if one[k].is_floating_point())
    assert moved > 1e-3
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-5, msg=k)  # BN running stats included
    for d in ("one", "two"):
        assert json.loads((tmp_path / d / "train_log.json").read_text())["epochs"][0]["steps"] == 5
