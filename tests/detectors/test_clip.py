"""UnivFD and CLIPDet on tiny random open_clip towers: interface, preprocessing, persistence,
official head formats, local-only backbone weights, probe training with cached features, PGD."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from fakebench import attacks, detectors  # noqa: E402
from fakebench.detectors import clip as clipmod  # noqa: E402
from fakebench.detectors import clip_backbone as backbone  # noqa: E402
from fakebench.detectors.feature_cache import FeatureCache  # noqa: E402
from fakebench.errors import CheckpointError, ConfigError, DataError  # noqa: E402
from fakebench.io import save_png  # noqa: E402
from fakebench.train import probes  # noqa: E402

#: a tiny ViT in open_clip's config format (built offline, random weights, ~0.1 M parameters)
TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32, "pool_type": "avg"}}
FAMILIES = ["univfd", "clipdet"]


def tiny(name: str, **kw) -> clipmod.CLIPLinearDetector:
    opts = {"backbone_weights": "random", "model_config": TINY, **kw}
    return detectors.create(name, **opts).eval()


def make_images(root, n_per_class=10, seed=0):
    """Reals: bright smooth colour fields. Fakes: darker fields plus a 2-px checkerboard (a
    crude upsampling fingerprint), easy even for a random tiny ViT. Sizes vary. Returns
    (paths, labels)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i in range(2 * n_per_class):
        label = i % 2
        h, w = int(rng.integers(36, 56)), int(rng.integers(36, 56))
        base = np.kron(rng.random((h // 4 + 1, w // 4 + 1, 3)), np.ones((4, 4, 1)))[:h, :w]
        img = base * 0.5 + (0.1 if label else 0.4)
        if label:
            yy, xx = np.mgrid[:h, :w]
            img = img + 0.1 * (((yy // 2 + xx // 2) % 2) * 2 - 1)[..., None]
        p = root / f"{'fake' if label else 'real'}_{i:02d}.png"
        save_png(p, np.clip(img, 0, 1))
        paths.append(p)
        labels.append(label)
    return paths, labels


# -- interface ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("hw", [(32, 32), (37, 53), (90, 20)])
def test_forward_shape_and_gradient_any_size(name, hw):
    det = tiny(name)
    x = torch.rand(3, 3, *hw, requires_grad=True)
    y = det(x)
    assert y.shape == (3,)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert det.differentiable


@pytest.mark.parametrize("name", FAMILIES)
def test_backbone_is_frozen_and_follows_dtype_moves(name):
    det = tiny(name)
    # only the linear head is trainable / in the state dict
    assert sorted(det.state_dict()) == ["head.bias", "head.weight"]
    assert sum(p.numel() for p in det.parameters()) == det.feature_dim + 1
    assert not any(p.requires_grad for p in det.backbone.parameters())
    det.train()
    assert not det.backbone.training  # a frozen tower stays in eval mode
    det.double()
    assert next(det.backbone.parameters()).dtype == torch.float64
    assert det(torch.rand(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64


def test_preprocessing_matches_torchvision_resize_and_center_crop():
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    x = torch.rand(2, 3, 50, 77)
    ours = backbone.clip_preprocess(x, 32, "clip")
    ref = TF.center_crop(TF.resize(x, 32, InterpolationMode.BICUBIC, antialias=True), [32, 32]).clamp(0, 1)
    assert ours.shape == (2, 3, 32, 32)
    assert torch.allclose(ours, ref, atol=1e-5)
    # the official UnivFD evaluation geometry: crop only
    cc = backbone.clip_preprocess(x, 32, "center_crop")
    assert torch.equal(cc, TF.center_crop(x, [32, 32]))
    with pytest.raises(ConfigError):
        backbone.clip_preprocess(x, 32, "squash")


@pytest.mark.parametrize("name", FAMILIES)
def test_forward_is_head_of_clip_features_with_preprocessing_inside(name):
    det = tiny(name)
    x = torch.rand(2, 3, 40, 60)
    mode = "center_crop" if name == "univfd" else "clip"  # UnivFD's official evaluation crops without resizing
    z = (backbone.clip_preprocess(x, 32, mode) - torch.tensor(backbone.CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        backbone.CLIP_STD).view(1, 3, 1, 1)
    # an independent open_clip tower with the same seed and config
    ref = backbone.build_visual(TINY["embed_dim"], TINY["vision_cfg"], False, seed=0).eval()
    with torch.no_grad():
        if name == "clipdet":  # next-to-last (before the projection), L2-normalised, width-d
            ref.proj = None
            f = torch.nn.functional.normalize(ref(z), dim=-1)
            assert f.shape[1] == TINY["vision_cfg"]["width"]
            assert torch.allclose(f.norm(dim=1), torch.ones(2))
        else:  # the projected embedding, not normalised
            f = ref(z)
            assert f.shape[1] == TINY["embed_dim"]
        expected = det.head(f).squeeze(1)
        assert torch.allclose(det(x), expected, atol=1e-5)


# -- persistence -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_save_load_roundtrip_identical(tmp_path, name):
    det = tiny(name, seed=3)
    det.set_head(torch.randn(det.feature_dim), 0.25)
    det.threshold = 0.4
    det.save(tmp_path / "ck")
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(3, 3, 41, 33)
    assert torch.equal(det(x), back(x))
    assert back.threshold == pytest.approx(0.4)
    assert back.registry_name == name and back.options["seed"] == 3


def test_loaded_detector_does_not_need_the_official_head_file_again(tmp_path):
    path = tmp_path / "fc_weights.pth"
    torch.save({"weight": torch.randn(1, 32), "bias": torch.randn(1)}, path)
    det = tiny("univfd", pretrained_head=str(path))
    det.save(tmp_path / "ck")
    path.unlink()
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(det(x), back(x))


# -- official head formats -----------------------------------------------------------------------
def test_univfd_official_fc_weights_format(tmp_path):
    w, b = torch.randn(1, 32), torch.randn(1)
    path = tmp_path / "fc_weights.pth"
    torch.save({"weight": w, "bias": b}, path)  # nn.Linear(768, 1).state_dict() layout
    det = clipmod.UnivFD.from_pretrained(path, backbone_weights="random", model_config=TINY).eval()
    assert det.registry_name == "univfd" and det.meta["head"] == "official:fc_weights.pth"
    assert torch.equal(det.head.weight, w) and torch.equal(det.head.bias, b)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(det(x), det.features(x) @ w[0] + b, atol=1e-5)


def test_univfd_rejects_wrong_keys_and_shapes_naming_the_file(tmp_path):
    bad = tmp_path / "not_fc.pth"
    torch.save({"linear.w": torch.randn(1, 32), "linear.b": torch.randn(1)}, bad)
    with pytest.raises(CheckpointError, match="not_fc.pth") as e:
        tiny("univfd", pretrained_head=str(bad))
    assert "\n" not in str(e.value)
    wrong = tmp_path / "fc_768.pth"
    torch.save({"weight": torch.randn(1, 768), "bias": torch.randn(1)}, wrong)
    with pytest.raises(CheckpointError, match=r"fc_768.pth.*shape"):
        tiny("univfd", pretrained_head=str(wrong))


def test_clipdet_official_weights_format(tmp_path):
    w, b = torch.randn(1, 64), torch.randn(1)
    path = tmp_path / "weights.pth"
    # OpenClipLinear keeps its backbone outside the state dict: only fc (a ChannelLinear)
    torch.save({"model": {"module.fc.weight": w, "module.fc.bias": b}}, path)
    det = tiny("clipdet", pretrained_head=str(path))
    assert torch.equal(det.head.weight, w) and torch.equal(det.head.bias, b)
    bad = tmp_path / "other.pth"
    torch.save({"model": {"classifier.weight": w, "classifier.bias": b}}, bad)
    with pytest.raises(CheckpointError, match="other.pth.*fc"):
        tiny("clipdet", pretrained_head=str(bad))


# -- backbone weights: local files only ----------------------------------------------------------
def _full_clip_state(seed=5):
    """A full open_clip-style CLIP state dict (visual.* + text keys) for the TINY tower."""
    vis = backbone.build_visual(TINY["embed_dim"], TINY["vision_cfg"], False, seed=seed)
    state = {f"visual.{k}": v.clone() for k, v in vis.state_dict().items()}
    state["logit_scale"] = torch.tensor(4.6)
    state["token_embedding.weight"] = torch.randn(10, 8)
    return vis.eval(), state


@pytest.mark.parametrize("suffix", [".safetensors", ".bin"])
def test_backbone_weights_from_local_file(tmp_path, suffix):
    from safetensors.torch import save_file

    vis, state = _full_clip_state()
    path = tmp_path / f"open_clip_model{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    det = detectors.create("univfd", backbone_weights=str(path), model_config=TINY).eval()
    z = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(det.backbone(z), vis(z), atol=1e-6)
        assert not torch.allclose(det.backbone(z), tiny("univfd").backbone(z))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit deprecation, used to build a fixture
def test_backbone_weights_wrong_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "timm_model.safetensors"
    from safetensors.torch import save_file

    save_file({"patch_embed.proj.weight": torch.randn(64, 3, 8, 8)}, str(bad))
    with pytest.raises(CheckpointError, match="timm_model.safetensors") as e:
        detectors.create("univfd", backbone_weights=str(bad), model_config=TINY)
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="not found"):
        detectors.create("univfd", backbone_weights=str(tmp_path / "nope.bin"), model_config=TINY)
    ts = tmp_path / "ViT-L-14.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(ts))
    with pytest.raises(CheckpointError, match="TorchScript"):
        detectors.create("univfd", backbone_weights=str(ts), model_config=TINY)


@pytest.fixture()
def empty_hf_cache(tmp_path, monkeypatch):
    root = tmp_path / "hf"
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hub"))
    monkeypatch.setenv("HF_HOME", str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return root / "hub"


@pytest.mark.parametrize("name, repo", [("univfd", "timm/vit_large_patch14_clip_224.openai"),
                                        ("clipdet", "laion/CLIP-ViT-L-14-CommonPool.XL-s13B-b90K")])
def test_missing_backbone_names_the_file_and_never_downloads(empty_hf_cache, monkeypatch, name, repo):
    def no_network(*a, **k):  # any download attempt fails the test
        raise AssertionError("attempted a download")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    with pytest.raises(CheckpointError) as e:
        detectors.create(name)
    msg = str(e.value)
    assert "\n" not in msg and "open_clip_model.safetensors" in msg and f"huggingface.co/{repo}" in msg
    with pytest.raises(CheckpointError, match="no backbone"):
        detectors.create(name, pretrained=None)


def test_pretrained_tag_resolved_from_local_hf_cache_only(empty_hf_cache):
    from safetensors.torch import save_file

    vis, state = _full_clip_state(seed=11)
    snap = empty_hf_cache / "models--timm--vit_large_patch14_clip_224.openai" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    save_file(state, str(snap / "open_clip_model.safetensors"))
    det = detectors.create("univfd", pretrained="openai", model_config=TINY).eval()
    assert det.backbone_file == snap / "open_clip_model.safetensors"
    z = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(det.backbone(z), vis(z), atol=1e-6)
    with pytest.raises(ConfigError, match="not an open_clip tag"):
        detectors.create("univfd", pretrained="no-such-tag", model_config=TINY)


def test_missing_open_clip_is_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(ConfigError, match=r"pip install 'fakebench\[clip\]'"):
        tiny("univfd")


def test_registry_lists_weights_hints():
    names = {e.name: e for e in detectors.entries()}
    assert {"univfd", "clipdet", "clipdet+corvi"} <= set(names)
    assert "UniversalFakeDetect" in names["univfd"].weights_hint()
    assert "ClipBased-SyntheticImageDetection" in names["clipdet"].weights_hint()
    assert names["univfd"].weights[0].required and names["univfd"].weights[0].option == "backbone_weights"


# -- probe training ------------------------------------------------------------------------------
def _count_backbone_calls(det):
    calls = []
    det.backbone.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    return calls


@pytest.mark.parametrize("name", FAMILIES)
def test_second_probe_training_hits_the_cache_and_gives_the_same_probe(tmp_path, name):
    paths, labels = make_images(tmp_path / "imgs")
    det = tiny(name)
    calls = _count_backbone_calls(det)
    cache = FeatureCache(tmp_path / "cache")
    r1 = probes.train_probe(det, paths, labels, cache=cache, batch_size=8)
    w1, b1 = det.head.weight.detach().clone(), det.head.bias.detach().clone()
    assert r1["computed"] == len(paths) and r1["cache_hits"] == 0 and sum(calls) == len(paths)
    assert r1["train_accuracy"] >= 0.9
    calls.clear()
    det.set_head(torch.zeros(det.feature_dim), 0.0)
    r2 = probes.train_probe(det, paths, labels, cache=cache)
    assert calls == [] and r2["computed"] == 0 and r2["cache_hits"] == len(paths)
    assert torch.equal(det.head.weight, w1) and torch.equal(det.head.bias, b1)
    # a fresh detector with the same backbone shares the cache; another backbone does not
    same = tiny(name)
    assert probes.train_probe(same, paths, labels, cache=cache)["computed"] == 0
    other = tiny(name, seed=1)
    assert probes.train_probe(other, paths, labels, cache=cache)["computed"] == len(paths)
    assert same.feature_key(cache) != other.feature_key(cache)


def test_probe_features_equal_forward_features(tmp_path):
    from fakebench.io import load_image

    paths, labels = make_images(tmp_path / "imgs", n_per_class=2)
    det = tiny("clipdet")
    feats, kept, _ = probes.extract_features(det, paths, cache_dir=tmp_path / "cache")
    assert kept.all()
    x = torch.from_numpy(load_image(paths[1])).permute(2, 0, 1)[None]
    with torch.no_grad():
        assert np.allclose(det.features(x).numpy()[0], feats[1], atol=1e-5)


def test_train_probe_input_forms_and_errors(tmp_path):
    paths, labels = make_images(tmp_path / "imgs", n_per_class=4)
    broken = tmp_path / "imgs" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    cache = FeatureCache(tmp_path / "cache")

    class S:  # a Sample-like object
        def __init__(self, path, label):
            self.path, self.label = path, label

    heads = []
    for images, labs in [(paths + [broken], labels + [1]), (list(zip(paths, labels)), None),
                         ([S(p, y) for p, y in zip(paths, labels)], None)]:
        det = tiny("univfd")
        rep = probes.train_probe(det, images, labs, cache=cache)
        heads.append(det.head.weight.detach().clone())
        assert rep["n_used"] == len(paths)
    assert torch.equal(heads[0], heads[1]) and torch.equal(heads[1], heads[2])
    rep0 = probes.train_probe(tiny("univfd"), paths + [broken], labels + [1], cache=cache)
    assert rep0["n_images"] == len(paths) + 1 and any("broken.png" in s for s in rep0["skipped"])
    reals = [p for p, y in zip(paths, labels) if y == 0]
    with pytest.raises(DataError, match="real"):
        probes.train_probe(tiny("univfd"), reals, [0] * len(reals), cache=cache)
    with pytest.raises(DataError, match="labels"):
        probes.train_probe(tiny("univfd"), paths, labels[:-1], cache=cache)


def test_train_probe_accepts_a_dataset_folder(tmp_path):
    data = pytest.importorskip("fakebench.data")
    paths, labels = make_images(tmp_path / "flat", n_per_class=3)
    for p, y in zip(paths, labels):  # real/ + fake/<generator>/ layout
        dest = tmp_path / "ds" / ("fake/checker" if y else "real")
        dest.mkdir(parents=True, exist_ok=True)
        p.rename(dest / p.name)
    assert len(data.load_dataset(tmp_path / "ds")) == 6
    det = tiny("univfd")
    rep = probes.train_probe(det, str(tmp_path / "ds"), cache_dir=tmp_path / "cache")
    assert (rep["n_real"], rep["n_fake"]) == (3, 3)


def test_clipdet_head_is_platt_calibrated_svm_llr(tmp_path):
    from sklearn.svm import LinearSVC

    paths, labels = make_images(tmp_path / "imgs", n_per_class=10)
    # imbalanced on purpose: 2 fakes per real -> prior log-odds log(2) removed from the LLR
    keep = [i for i, y in enumerate(labels) if y == 1] + [i for i, y in enumerate(labels) if y == 0][:5]
    paths, labels = [paths[i] for i in keep], [labels[i] for i in keep]
    det = tiny("clipdet")
    rep = probes.train_probe(det, paths, labels, cache_dir=tmp_path / "cache", C=1.0, seed=0)
    cal = det.meta["calibration"]
    assert cal["prior_log_odds"] == pytest.approx(np.log(10 / 5))
    assert rep["platt_a"] > 0
    feats, _, _ = probes.extract_features(det, paths, cache_dir=tmp_path / "cache")
    svm = LinearSVC(C=1.0, max_iter=10000, random_state=0).fit(feats.astype(np.float64), labels)
    llr_expected = cal["a"] * svm.decision_function(feats.astype(np.float64)) + cal["b"] - cal["prior_log_odds"]
    with torch.no_grad():
        llr = det.head(torch.from_numpy(feats)).squeeze(1).numpy()
    assert np.allclose(llr, llr_expected, atol=1e-4)
    assert ((llr > 0) == np.asarray(labels, bool)).mean() >= 0.9


def test_platt_fit_recovers_a_logistic_model():
    rng = np.random.default_rng(0)
    m = rng.normal(0, 2, 20000)
    y = (rng.random(m.size) < 1 / (1 + np.exp(-(1.5 * m - 0.5)))).astype(int)
    a, b = probes.platt_fit(m, y)
    assert a == pytest.approx(1.5, rel=0.05) and b == pytest.approx(-0.5, abs=0.06)


# -- attacks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAMILIES)
def test_pgd_evasion_lowers_scores_of_a_trained_probe(tmp_path, name):
    from fakebench.io import load_image

    paths, labels = make_images(tmp_path / "imgs", n_per_class=8)
    det = tiny(name)
    probes.train_probe(det, paths, labels, cache_dir=tmp_path / "cache")
    fakes = [p for p, y in zip(paths, labels) if y == 1][:4]
    x = torch.stack([torch.from_numpy(load_image(p)[:36, :36]).permute(2, 0, 1) for p in fakes])
    y = torch.ones(len(x), dtype=torch.long)
    before = det.score(x)
    adv = attacks.create("pgd", eps=8 / 255, steps=5, direction="evade")(det, x, y)
    after = det.score(adv)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6
    assert (after < before).all()
    assert (before - after).mean() > 0.5
