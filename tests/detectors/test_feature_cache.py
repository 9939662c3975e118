"""On-disk feature cache: storage, keys, weights-file hash memo, cached extraction."""

from __future__ import annotations

import hashlib
import shutil

import numpy as np

from fakebench.detectors import feature_cache as fc
from fakebench.io import save_png


def _write_images(root, n, seed=0, size=(12, 16)):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = root / f"im{i:02d}.png"
        save_png(p, rng.random((*size, 3)))
        paths.append(p)
    return paths


def _mean_colour(images):
    """A cheap 'backbone': per-image channel means (3-d features)."""
    return np.stack([im.reshape(-1, 3).mean(0) for im in images])


def test_put_get_roundtrip_is_exact_and_isolated_by_model_key(tmp_path):
    cache = fc.FeatureCache(tmp_path / "c")
    rng = np.random.default_rng(0)
    vecs = {f"img{i}": rng.standard_normal(7).astype(np.float32) for i in range(5)}
    cache.put("modelA", vecs)
    got = cache.get("modelA", ["img0", "img3", "nope"])
    assert set(got) == {"img0", "img3"}
    assert np.array_equal(got["img3"], vecs["img3"]) and got["img3"].dtype == np.float32
    assert cache.get("modelB", list(vecs)) == {}
    assert cache.count("modelA") == 5 and cache.count("modelB") == 0 and cache.count() == 5
    cache.clear("modelA")
    assert cache.count() == 0


def test_cache_persists_across_instances(tmp_path):
    with fc.FeatureCache(tmp_path) as c1:
        c1.put("m", {"k": np.arange(4, dtype=np.float32)})
    with fc.FeatureCache(tmp_path) as c2:
        assert np.array_equal(c2.get("m", ["k"])["k"], np.arange(4, dtype=np.float32))
    assert (tmp_path / fc.DB_NAME).exists()


def test_default_dir_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(fc.ENV_VAR, str(tmp_path / "env-cache"))
    assert fc.default_cache_dir() == tmp_path / "env-cache"
    monkeypatch.delenv(fc.ENV_VAR)
    assert fc.default_cache_dir().parts[-3:] == (".cache", "fakebench", "features")


def test_make_key_is_order_independent_and_sensitive():
    assert fc.make_key(a=1, b={"x": 2, "y": 3}) == fc.make_key(b={"y": 3, "x": 2}, a=1)
    assert fc.make_key(a=1, version=1) != fc.make_key(a=1, version=2)


def test_file_sha256_memoised_and_invalidated_on_change(tmp_path, monkeypatch):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc" * 1000)
    cache = fc.FeatureCache(tmp_path / "c")
    assert cache.file_sha256(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    calls = []
    real = fc.sha256_file
    monkeypatch.setattr(fc, "sha256_file", lambda p: calls.append(p) or real(p))
    cache.file_sha256(f)
    assert calls == []  # memoised: the file was not read again
    f.write_bytes(b"abcd" * 1000)  # size (and mtime) change
    assert cache.file_sha256(f) == hashlib.sha256(b"abcd" * 1000).hexdigest()
    assert len(calls) == 1


def test_extract_cached_computes_misses_only_and_keys_by_content(tmp_path):
    paths = _write_images(tmp_path / "imgs", 6)
    cache = fc.FeatureCache(tmp_path / "c")
    seen = []

    def compute(images):
        seen.append(len(images))
        return _mean_colour(images)

    f1, kept1, s1 = fc.extract_cached(paths, "m", compute, cache, batch_size=4)
    assert f1.shape == (6, 3) and kept1.all()
    assert (s1.hits, s1.computed, seen) == (0, 6, [4, 2])
    # a renamed copy of a file (same bytes) is a hit; a duplicate in the list is computed once
    copy = tmp_path / "renamed.png"
    shutil.copy(paths[2], copy)
    new = _write_images(tmp_path / "new", 1, seed=9)[0]
    seen.clear()
    f2, kept2, s2 = fc.extract_cached([*paths, copy, new, new], "m", compute, cache)
    assert (s2.hits, s2.computed, seen) == (7, 1, [1])
    assert np.array_equal(f2[:6], f1) and np.array_equal(f2[6], f1[2]) and np.array_equal(f2[7], f2[8])
    # another model key sees nothing
    _, _, s3 = fc.extract_cached(paths, "other", compute, cache)
    assert s3.hits == 0 and s3.computed == 6


def test_extract_cached_skips_bad_and_missing_files(tmp_path):
    paths = _write_images(tmp_path / "imgs", 3)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16)
    missing = tmp_path / "missing.png"
    cache = fc.FeatureCache(tmp_path / "c")
    feats, kept, stats = fc.extract_cached([paths[0], broken, missing, paths[1]], "m", _mean_colour, cache)
    assert kept.tolist() == [True, False, False, True]
    assert feats.shape == (2, 3)
    assert len(stats.skipped) == 2
    assert any("broken.png" in s for s in stats.skipped) and any("missing.png" in s for s in stats.skipped)
    assert cache.count("m") == 2  # nothing stored for the bad files
