"""Public-benchmark loaders on tiny trees built here in each benchmark's official release layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from conftest import make_truefake_tree
from conftest import write_image as _img

from fakebench.data import load_dataset
from fakebench.data.benchmarks import (
    from_cnndetection_splits,
    from_genimage,
    from_synthbuster,
    from_truefake,
    parse_truefake_ids,
)
from fakebench.errors import ConfigError, DataError


def test_truefake_ids_give_exactly_the_expected_files_and_labels(tmp_path, caplog):
    f = make_truefake_tree(tmp_path / "tf")
    with caplog.at_level(logging.WARNING):
        got = from_truefake(tmp_path / "tf", ids="gan2:pre&sdXL:fb&real:pre")
    want = {str(f[k].resolve()): lab for k, lab in
            [("gan2_a", 1), ("gan2_b", 1), ("sdxl_fb", 1), ("ffhq_1", 0), ("ffhq_2", 0)]}
    assert {s.path: s.label for s in got} == want
    by = {Path(s.path).name: s for s in got}
    assert (by["a.png"].share, by["a.png"].generator, by["a.png"].source) == ("PreSocial", "StyleGAN2",
                                                                              "StyleGAN2/conf-f-psi-0.5")
    assert (by["c.jpg"].share, by["c.jpg"].generator) == ("Facebook", "StableDiffusionXL")
    assert (by["r1.png"].share, by["r1.png"].generator, by["r1.png"].source) == ("PreSocial", "real", "FFHQ/00000")
    # the second real set (FORLAB / RAISE) is absent: warned by name, not silently dropped
    assert "PreSocial/Real/FORLAB" in caplog.text and "real:pre" in caplog.text


def test_truefake_unions_and_missing_share_warned(tmp_path, caplog):
    make_truefake_tree(tmp_path / "tf")
    assert {(s.share, s.generator) for s in from_truefake(tmp_path / "tf", ids="gan:shr")} == {("Facebook", "StyleGAN2")}
    sd_all = from_truefake(tmp_path / "tf", ids="sd:all")
    assert sorted(Path(s.path).name for s in sd_all) == ["c.jpg", "c.png"]
    assert len(from_truefake(tmp_path / "tf", ids="all:all")) == 9
    with caplog.at_level(logging.WARNING):
        assert from_truefake(tmp_path / "tf", ids="gan3:pre&gan2:tl") == []
    assert "PreSocial/Fake/StyleGAN3 (gan3:pre)" in caplog.text
    assert "Telegram/ (gan2:tl)" in caplog.text  # a whole share folder absent: named once


def test_truefake_split_json_is_honoured(tmp_path):
    make_truefake_tree(tmp_path / "tf")
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": ["StyleGAN2/conf-f-psi-0.5/b", "FFHQ/00000/r2"],
                                 "val": [], "test": ["StyleGAN2/conf-f-psi-0.5/a", "StableDiffusionXL/faces/c",
                                                     "FFHQ/00000/r1"]}))
    test = from_truefake(tmp_path / "tf", ids="gan2:all&sdXL:all&realFFHQ:all", split_file=split, split="test")
    assert sorted((s.share, Path(s.path).name) for s in test) == [
        ("Facebook", "a.jpg"), ("Facebook", "c.jpg"), ("Facebook", "r1.jpg"),
        ("PreSocial", "a.png"), ("PreSocial", "c.png"), ("PreSocial", "r1.png")]
    assert {s.split for s in test} == {"test"}
    every = from_truefake(tmp_path / "tf", ids="gan2:pre&real:pre", split_file=split)
    assert {Path(s.path).name: s.split for s in every} == {"a.png": "test", "b.png": "train", "r1.png": "test",
                                                          "r2.png": "train"}


def test_truefake_bad_ids_and_autodetect(tmp_path):
    make_truefake_tree(tmp_path / "tf")
    with pytest.raises(ConfigError, match="gan9"):
        parse_truefake_ids("gan9:pre")
    with pytest.raises(ConfigError, match="'gan2'"):
        parse_truefake_ids("gan2")
    with pytest.raises(ConfigError, match="split_file"):
        from_truefake(tmp_path / "tf", ids="gan2:pre", split="test")
    assert len(load_dataset(tmp_path / "tf")) == 9  # recognised without a format
    assert len(load_dataset(tmp_path / "tf", format="truefake", ids="flux:pre")) == 1
    with pytest.raises(ConfigError, match="real_dir"):
        load_dataset(tmp_path / "tf", format="truefake", real_dir="x")


def test_truefake_in_an_experiment_config(tmp_path):
    from fakebench.runner import parse_experiment

    make_truefake_tree(tmp_path / "tf")
    (tmp_path / "split.json").write_text(json.dumps({"train": [], "val": [], "test": ["StyleGAN2/conf-f-psi-0.5/a",
                                                                                    "FFHQ/00000/r1"]}))
    exp = parse_experiment({"dataset": {"format": "truefake", "root": "tf", "ids": "gan2:pre&sdXL:pre&real:pre",
                                        "split_file": "split.json", "split": "test"},
                            "detectors": [{"detector": "cnnspot", "options": {"arch": "resnet10", "width": 8}}]},
                           tmp_path)
    from fakebench.data import select

    got = select(exp.dataset.load(), split=exp.dataset.split)
    assert sorted(Path(s.path).name for s in got) == ["a.png", "r1.png"]
    with pytest.raises(ConfigError, match="dataset.format"):
        parse_experiment({"dataset": {"format": "nope", "root": "tf"}, "detectors": [{"detector": "cnnspot"}]}, tmp_path)


def test_genimage_layout(tmp_path):
    r = tmp_path / "genimage"
    _img(r / "BigGAN/train/ai/116_biggan_00094.png")
    _img(r / "BigGAN/train/nature/n01440764_10026.JPEG", 1)
    _img(r / "BigGAN/val/ai/1.png", 2)
    _img(r / "BigGAN/val/nature/ILSVRC2012_val_00000293.JPEG", 3)
    _img(r / "stable_diffusion_v_1_4/imagenet_ai_0419_sdv4/val/ai/x.png", 4)
    got = from_genimage(r)
    assert sorted((Path(s.path).name, s.label, s.generator, s.split) for s in got) == [
        ("1.png", 1, "BigGAN", "val"), ("116_biggan_00094.png", 1, "BigGAN", "train"),
        ("ILSVRC2012_val_00000293.JPEG", 0, "real", "val"), ("n01440764_10026.JPEG", 0, "real", "train"),
        ("x.png", 1, "stable_diffusion_v_1_4", "val")]
    assert len(load_dataset(r, format="genimage")) == 5
    with pytest.raises(DataError, match="GenImage"):
        from_genimage(tmp_path / "genimage" / "BigGAN" / "train" / "ai")


def test_synthbuster_layout(tmp_path):
    r = tmp_path / "synthbuster"
    _img(r / "dalle3/r0a1b2c3d.png")
    _img(r / "midjourney-v5/r0a1b2c3d.png", 1)
    _img(r / "stable-diffusion-xl/r11.png", 2)
    with pytest.raises(DataError, match="real_dir"):
        from_synthbuster(r)
    raise_dir = tmp_path / "RAISE-1k"
    _img(raise_dir / "r0a1b2c3d.tif", 3)
    got = from_synthbuster(r, real_dir=raise_dir)
    assert sorted((s.generator, s.label) for s in got) == [("dalle3", 1), ("midjourney-v5", 1), ("real", 0),
                                                           ("stable-diffusion-xl", 1)]
    _img(r / "RAISE/r0a1b2c3d.tif", 3)  # the reals inside the root are found without real_dir
    assert sorted(s.generator for s in from_synthbuster(r)) == ["dalle3", "midjourney-v5", "real",
                                                               "stable-diffusion-xl"]


def test_cnndetection_train_val_test_layout(tmp_path):
    r = tmp_path / "CNN_synth"
    _img(r / "train/airplane/0_real/00001.png")
    _img(r / "train/airplane/1_fake/00001.png", 1)
    _img(r / "train/cat/1_fake/00002.png", 2)
    _img(r / "val/cat/0_real/00003.png", 3)
    _img(r / "test/stylegan/bedroom/1_fake/4.png", 4)
    _img(r / "test/deepfake/0_real/5.png", 5)
    got = from_cnndetection_splits(r)
    assert sorted((s.split, s.label, s.generator, s.source) for s in got) == [
        ("test", 0, "real", "deepfake"), ("test", 1, "stylegan", "stylegan/bedroom"),
        ("train", 0, "real", "airplane"), ("train", 1, "progan", "airplane"), ("train", 1, "progan", "cat"),
        ("val", 0, "real", "cat")]
    assert [s.path for s in load_dataset(r)] == [s.path for s in got]  # recognised without a format


def test_shared_copies_pairing_and_psnr_against_a_resized_copy(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from fakebench.data.benchmarks import compare_to_copy, shared_copies

    make_truefake_tree(tmp_path / "tf")
    samples = from_truefake(tmp_path / "tf")
    pairs = {Path(a).name: Path(b.path).name for a, b in shared_copies(samples, "Facebook").items()}
    assert pairs == {"a.png": "a.jpg", "c.png": "c.jpg", "r1.png": "r1.jpg"}  # b.png / r2.png were not shared
    # a platform that halved the image: compared after resizing to the copy's size
    rng = np.random.default_rng(0)
    small = rng.random((8, 8, 3))
    orig = np.kron(small, np.ones((2, 2, 1)))  # 16 x 16, blocky
    Image.fromarray((small * 255).round().astype(np.uint8)).save(tmp_path / "copy.png")
    x = torch.from_numpy(orig.transpose(2, 0, 1)).float()
    ps, po, same = compare_to_copy(x, x, str(tmp_path / "copy.png"))
    assert not same and ps == po and 10 < ps < 80
    noisy = (x + 0.1 * torch.from_numpy(rng.standard_normal(x.shape)).float()).clamp(0, 1)
    ps2, po2, _ = compare_to_copy(noisy, x, str(tmp_path / "copy.png"))
    assert ps2 < po2 == po
