"""The demo's zoo step: with a local open_clip tower the demo fits UnivFD and CLIPDet on the
built-in train split and fuses CLIPDet with res50nodown; without one it skips them (one line
each); `fakebench evaluate` runs the saved checkpoints and skips `optional` detectors whose
weights are missing. A tiny random ViT (open_clip config, saved to a local file) stands in for
ViT-L/14. Data: reals are bright smooth colour fields, fakes darker fields plus a 2-px
checkerboard (a crude fingerprint a random tiny ViT's features still separate), 32 px, with a
manifest giving train/val/test splits."""

from __future__ import annotations

import pytest
import torch
import yaml

pytest.importorskip("open_clip")

from fakebench import detectors  # noqa: E402
from fakebench.demo import train_clip_probes, zoo_skip_lines  # noqa: E402
from fakebench.detectors import clip_backbone  # noqa: E402
from fakebench.runner import Store, evaluate, load_experiment  # noqa: E402
from fakebench.train import TrainConfig, train_detector  # noqa: E402

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8,
                                        "head_width": 32, "pool_type": "avg"}}


def _easy_dataset(root, n_per_class=16, seed=0):
    import csv

    import numpy as np

    from fakebench.io import save_png

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(2 * n_per_class):
        label = i % 2
        img = np.kron(rng.random((9, 9, 3)), np.ones((4, 4, 1)))[:32, :32]
        if label:
            img = img * 0.5 + 0.1 * (np.indices((32, 32)).sum(0) % 2)[..., None]
        else:
            img = 0.4 + 0.6 * img
        name = f"{'fake' if label else 'real'}_{i:03d}.png"
        save_png(root / name, np.clip(img, 0, 1))
        k = i // 2
        split = "train" if k < n_per_class // 2 else ("val" if k < 3 * n_per_class // 4 else "test")
        rows.append((name, label, "checker" if label else "real", split))
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "generator", "split"])
        w.writerows(rows)
    return root / "manifest.csv"


def _tower_file(path):
    from safetensors.torch import save_file

    vis = clip_backbone.build_visual(TINY["embed_dim"], TINY["vision_cfg"], False, seed=3)
    save_file({f"visual.{k}": v.contiguous() for k, v in vis.state_dict().items()}, str(path))
    return path


def test_skip_lines_name_what_each_detector_needs():
    lines = zoo_skip_lines(None)
    names = [ln.split(":")[0].removeprefix("skipping ") for ln in lines]
    registered = set(detectors.REGISTRY.names()) - {"cnnspot", "res50nodown"}
    assert set(names) == registered  # every zoo detector is accounted for, once
    assert all("\n" not in ln for ln in lines)
    univfd = next(ln for ln in lines if ln.startswith("skipping univfd"))
    assert "--clip-weights" in univfd and "fc_weights.pth" in univfd
    assert not any(ln.startswith(("skipping univfd", "skipping clipdet")) for ln in zoo_skip_lines("w.safetensors"))


@pytest.fixture()
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)  # later tests (the demo) must not inherit it


def test_clip_probes_are_trained_saved_and_evaluated(tmp_path, capsys, one_thread):
    tiny_dataset = _easy_dataset(tmp_path / "data")
    weights = _tower_file(tmp_path / "open_clip_model.safetensors")
    corvi, _ = train_detector("res50nodown", tiny_dataset, tmp_path / "ck" / "res50nodown",
                              TrainConfig(epochs=2, batch_size=8, lr=1e-3, progress=False), arch="resnet10", width=8)
    saved = train_clip_probes(tiny_dataset, tmp_path, weights, corvi=tmp_path / "ck" / "res50nodown",
                              model_config=TINY, seed=0)
    assert set(saved) == {"univfd", "clipdet", "clipdet+corvi"}
    out = capsys.readouterr().out
    assert "univfd: " in out and "clipdet: " in out and "val AUC" in out
    x = torch.rand(3, 3, 32, 32)
    for name, ck in saved.items():
        det = detectors.load(ck)
        assert det.registry_name == name
        with torch.no_grad():
            assert det(x).shape == (3,)
    # the probes learned the fixture's fingerprint (validation AUC stored with the checkpoint)
    for name in ("univfd", "clipdet"):
        assert detectors.load(saved[name]).meta["val_auc"] >= 0.8, name
    # a second fit (same cache folder) embeds nothing
    again = train_clip_probes(tiny_dataset, tmp_path, weights, model_config=TINY, seed=0)
    assert set(again) == {"univfd", "clipdet"}
    assert capsys.readouterr().out.count("(0 embedded, 16 from the feature cache)") == 2

    cfg = {"run": "zoo", "output": str(tmp_path / "res"), "batch_size": 16,
           "dataset": {"path": str(tiny_dataset), "split": "test"},
           "detectors": [{"name": n, "checkpoint": str(p)} for n, p in saved.items()]
           + [{"name": "official-univfd", "detector": "univfd", "optional": True,
               "options": {"backbone_weights": "missing/open_clip_model.safetensors"}}],
           "attacks": [{"attack": "jpeg", "options": {"quality": 75}}]}
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    evaluate(load_experiment(path), progress=False)
    with Store(tmp_path / "res" / "results.sqlite") as st:
        rows = list(st.rows("zoo"))
    assert {r["detector"] for r in rows} == set(saved)  # the optional one was skipped, not fatal
    n_test = len({r["sample"] for r in rows})
    assert n_test > 0 and len(rows) == n_test * len(saved) * 2  # clean + jpeg per detector


def test_missing_weights_of_a_required_detector_is_one_config_line(tmp_path, tiny_dataset):
    from fakebench.errors import ConfigError
    from fakebench.runner import prepare

    cfg = {"run": "x", "output": str(tmp_path / "res"), "dataset": {"path": str(tiny_dataset)},
           "detectors": [{"detector": "univfd", "options": {"backbone_weights": "nope.safetensors"}}]}
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(cfg))
    exp = load_experiment(path)
    # relative weight paths resolve against the config's folder; a CLIP tag stays a tag
    assert exp.detectors[0].options["backbone_weights"] == str(tmp_path / "nope.safetensors")
    with pytest.raises(ConfigError, match=r"detectors\[0\] \(univfd\).*nope.safetensors") as e:
        prepare(exp)
    assert "\n" not in str(e.value)
    cfg["detectors"] = [{"detector": "univfd", "options": {"pretrained": "openai"}}]
    path.write_text(yaml.safe_dump(cfg))
    assert load_experiment(path).detectors[0].options["pretrained"] == "openai"
