"""Named training recipes (fakebench.train.recipes): the papers' settings, rot90, the CLI flag,
and UnivFD's official head training (Adam + blur/JPEG on the images) through the shared loop."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import make_tiny_dataset

from fakebench.data.transforms import TrainTransform
from fakebench.errors import ConfigError
from fakebench.train.recipes import RECIPES, get_recipe, recipe_config

pytestmark = pytest.mark.usefixtures("one_thread")


def test_recipes_carry_the_papers_settings_under_explicit_options():
    w = recipe_config("wang2020", "cnnspot")
    assert (w.blur_prob, w.jpeg_prob, w.crop, w.lr, w.batch_size, w.flip) == (0.5, 0.5, 224, 1e-4, 64, True)
    assert (recipe_config("wang2020-p0.1").blur_prob, recipe_config("wang2020-p0.1").jpeg_prob) == (0.1, 0.1)
    g = recipe_config("grag2021", "res50nodown")
    assert (g.blur_prob, g.jpeg_prob, g.rot90) == (0.5, 0.5, True)
    o = recipe_config("ojha2023", "univfd", epochs=2)
    assert (o.lr, o.batch_size, o.crop, o.blur_prob, o.jpeg_prob, o.epochs) == (1e-4, 256, 224, 0.5, 0.5, 2)
    demo = recipe_config("cpu-demo", "cnnspot", lr=None)  # None = not set: the recipe's value stays
    assert (demo.lr, demo.schedule, demo.crop) == (1e-3, "cosine", 48) and RECIPES["cpu-demo"].options["arch"] == "resnet10"
    assert "ImageNet" in get_recipe("wang2020").needs
    with pytest.raises(ConfigError, match="trains cnnspot, not 'res50nodown'"):
        recipe_config("wang2020", "res50nodown")
    with pytest.raises(ConfigError, match="not one of"):
        get_recipe("wang2021")


def test_rot90_rotates_by_a_seeded_multiple_of_90_degrees():
    img = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32)
    t = TrainTransform(flip=False, rot90=True)
    outs = [t(img, np.random.default_rng(s)) for s in range(12)]
    chw = np.transpose(img, (2, 0, 1))
    rots = [np.ascontiguousarray(np.transpose(np.rot90(img, k), (2, 0, 1))) for k in range(4)]
    assert all(any(np.array_equal(o, r) for r in rots) for o in outs)
    assert len({next(k for k, r in enumerate(rots) if np.array_equal(o, r)) for o in outs}) >= 3  # several angles
    assert np.array_equal(t(img, np.random.default_rng(5)), t(img, np.random.default_rng(5)))
    assert np.array_equal(TrainTransform(flip=False)(img, np.random.default_rng(0)), chw)


def test_cli_recipe_trains_with_the_recipe_and_explicit_flags_win(tmp_path, capsys):
    from fakebench.cli import main

    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=8)
    out = tmp_path / "ck"
    rc = main(["train", "cnnspot", "--recipe", "cpu-demo", "--data", str(manifest), "--out", str(out),
               "--epochs", "1", "--max-steps", "1", "--width", "8", "--crop", "32", "--no-progress"])
    assert rc == 0
    cfg = json.loads((out / "train_log.json").read_text())["config"]
    assert (cfg["lr"], cfg["schedule"], cfg["patience"], cfg["blur_prob"]) == (1e-3, "cosine", 6, 0.1)  # the recipe
    assert (cfg["epochs"], cfg["crop"]) == (1, 32)  # explicit flags
    saved = json.loads((out / "config.json").read_text())["options"]
    assert saved == {"arch": "resnet10", "width": 8}  # the recipe's backbone, the explicit width
    assert main(["train", "res50nodown", "--recipe", "wang2020", "--data", str(manifest), "--out",
                 str(tmp_path / "x")]) != 0
    assert "trains cnnspot" in capsys.readouterr().err


def test_ojha2023_trains_the_univfd_head_on_augmented_views(tmp_path):
    pytest.importorskip("open_clip")
    from fakebench.train import train_detector

    tiny = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8,
                                            "head_width": 16}}
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=8)
    cfg = recipe_config("ojha2023", "univfd", epochs=2, crop=32, batch_size=8, progress=False)
    det, hist = train_detector("univfd", manifest, tmp_path / "ck", cfg, backbone_weights="random", model_config=tiny)
    ref = torch.nn.Linear(16, 1)
    with torch.no_grad():  # the head's initialisation (seed 0): training moved it
        ref.weight.normal_(0.0, 0.02, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(det.head.weight, ref.weight)
    assert sorted(det.state_dict()) == ["head.bias", "head.weight"]  # the tower stays frozen, outside the state
    assert hist["config"]["blur_prob"] == 0.5 and hist["config"]["jpeg_prob"] == 0.5 and len(hist["epochs"]) == 2
