"""fakebench.data.dataset: bad files are skipped and counted; batches stream by size."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fakebench.data import Sample, load_dataset
from fakebench.data import pipeline as ds_mod
from fakebench.data.pipeline import ImageDataset, collate_skip_bad, iter_batches
from fakebench.data.transforms import EvalTransform, TrainTransform
from fakebench.errors import ConfigError, DataError
from fakebench.io import load_image, save_png


def good(path: Path, h: int = 8, w: int = 8, value: float | None = None, seed: int = 0) -> Path:
    img = np.random.default_rng(seed).random((h, w, 3)) if value is None else np.full((h, w, 3), value)
    return save_png(path, img)


def bad_corpus(root: Path) -> dict[str, Path]:
    """Three kinds of undecodable files."""
    root.mkdir(parents=True, exist_ok=True)
    good(root / "tmp.png", 16, 16)
    data = (root / "tmp.png").read_bytes()
    (root / "tmp.png").unlink()
    files = {"truncated": root / "truncated.png", "empty": root / "empty.png", "text": root / "text.jpg"}
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["empty"].write_bytes(b"")
    files["text"].write_text("not an image")
    return files


def samples_of(paths: list[Path], labels: list[int] | None = None) -> list[Sample]:
    labels = labels or [i % 2 for i in range(len(paths))]
    return [Sample(str(p), lbl, "g" if lbl else "real", "t") for p, lbl in zip(paths, labels)]


@pytest.fixture()
def mixed(tmp_path) -> tuple[list[Sample], dict[str, Path]]:
    bad = bad_corpus(tmp_path / "bad")
    paths = [good(tmp_path / "g0.png", seed=0), bad["truncated"], good(tmp_path / "g1.png", seed=1), bad["empty"],
             good(tmp_path / "g2.png", seed=2), bad["text"], good(tmp_path / "g3.png", seed=3)]
    return samples_of(paths), bad


def test_dataset_skips_and_counts_bad_files(mixed, caplog):
    samples, bad = mixed
    ds = ImageDataset(samples)
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))]
    assert [it is None for it in items] == [False, True, False, True, False, True, False]
    assert set(ds.bad) == {str(p) for p in bad.values()}
    assert all(reason and "\n" not in reason for reason in ds.bad.values())
    assert sum("skipping" in r.message for r in caplog.records) == 3
    x, y, idx = items[0]
    assert x.dtype == torch.float32 and x.shape == (3, 8, 8) and y == 0 and idx == 0


def test_dataloader_with_collate_drops_bad_items(mixed):
    samples, bad = mixed
    ds = ImageDataset(samples)
    batches = [b for b in DataLoader(ds, batch_size=3, collate_fn=collate_skip_bad) if b is not None]
    idx = torch.cat([b[2] for b in batches]).tolist()
    assert idx == [0, 2, 4, 6]
    assert torch.cat([b[1] for b in batches]).tolist() == [samples[i].label for i in idx]
    assert len(ds.bad) == 3
    assert collate_skip_bad([None, None]) is None


def test_collate_refuses_mixed_sizes_with_a_hint():
    with pytest.raises(DataError, match="iter_batches"):
        collate_skip_bad([(torch.zeros(3, 4, 4), 0, 0), (torch.zeros(3, 5, 4), 1, 1)])


def test_dataset_augmentation_is_a_function_of_seed_epoch_index(tmp_path):
    samples = samples_of([good(tmp_path / f"{i}.png", 32, 32, seed=i) for i in range(3)])
    tt = TrainTransform(crop_size=16, blur_prob=0.5, jpeg_prob=0.5)
    a, b = ImageDataset(samples, tt, seed=5), ImageDataset(samples, tt, seed=5)
    assert torch.equal(a[1][0], b[1][0])
    first = a[1][0]
    a.set_epoch(1)
    assert not torch.equal(a[1][0], first)
    a.set_epoch(0)
    assert torch.equal(a[1][0], first)
    assert not torch.equal(ImageDataset(samples, tt, seed=6)[1][0], first)


def test_transform_refusal_counts_as_bad(tmp_path):
    samples = samples_of([good(tmp_path / "small.png", 4, 4), good(tmp_path / "big.png", 16, 16)])
    ds = ImageDataset(samples, TrainTransform(crop_size=8, pad_if_needed=False))
    assert ds[0] is None and ds[1][0].shape == (3, 8, 8)
    assert "smaller than crop_size" in ds.bad[samples[0].path]


def test_max_pixels_applies(tmp_path):
    samples = samples_of([good(tmp_path / "a.png", 20, 20)])
    ds = ImageDataset(samples, max_pixels=100)
    assert ds[0] is None and "too large" in ds.bad[samples[0].path]


def test_training_pipeline_on_the_shared_tiny_dataset(tmp_path):
    from conftest import make_tiny_dataset

    samples = load_dataset(make_tiny_dataset(tmp_path / "tiny", n_per_class=4, bad=True))
    ds = ImageDataset(samples, TrainTransform(crop_size=24, blur_prob=0.5, jpeg_prob=0.5), seed=0)
    dl = DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0),
                    collate_fn=collate_skip_bad)
    n = sum(len(b[0]) for b in dl if b is not None)
    assert n == 8 and list(ds.bad) == [str((tmp_path / "tiny" / "broken.png").resolve())]


# -- iter_batches --------------------------------------------------------------------------

def test_iter_batches_groups_consecutive_sizes_and_reports_bad(tmp_path):
    bad = bad_corpus(tmp_path / "bad")
    sizes = [(8, 8), (8, 8), None, (6, 10), (6, 10), (6, 10), (8, 8), None]
    paths, k = [], 0
    for i, sz in enumerate(sizes):
        if sz is None:
            paths.append(list(bad.values())[k])
            k += 1
        else:
            paths.append(good(tmp_path / f"{i}.png", *sz, seed=i))
    samples = samples_of(paths)
    out = list(iter_batches(samples, batch_size=2))
    assert [b[2].tolist() for b in out] == [[0, 1], [3, 4], [5], [6]]
    assert [tuple(b[0].shape) for b in out] == [(2, 3, 8, 8), (2, 3, 6, 10), (1, 3, 6, 10), (1, 3, 8, 8)]
    # the failure at index 2 comes with the first batch after it; the trailing one with the last
    assert [[p for p, _ in b[3]] for b in out] == [[], [str(paths[2])], [], [str(paths[7])]]
    for x, y, idx, _ in out:
        assert y.tolist() == [samples[i].label for i in idx.tolist()]
        for row, i in zip(x, idx.tolist()):
            assert torch.equal(row, torch.from_numpy(load_image(paths[i])).permute(2, 0, 1))


def test_iter_batches_all_bad_yields_one_empty_batch(tmp_path):
    bad = bad_corpus(tmp_path)
    out = list(iter_batches(samples_of(list(bad.values())), batch_size=4))
    assert len(out) == 1 and out[0][0].shape[0] == 0 and len(out[0][3]) == 3
    assert list(iter_batches([], batch_size=4)) == []
    with pytest.raises(ConfigError):
        list(iter_batches([], batch_size=0))


def test_iter_batches_streams(tmp_path, monkeypatch):
    samples = samples_of([good(tmp_path / f"{i}.png", seed=i) for i in range(10)])
    calls = []
    real = ds_mod.load_image
    monkeypatch.setattr(ds_mod, "load_image", lambda p, **kw: calls.append(p) or real(p, **kw))
    it = iter_batches(samples, batch_size=3)
    first = next(it)
    assert first[2].tolist() == [0, 1, 2]
    assert len(calls) <= 6  # at most the next batch is read ahead, never the whole dataset
    assert sum(len(b[0]) for b in it) == 7


def test_iter_batches_applies_the_transform(tmp_path):
    samples = samples_of([good(tmp_path / f"{i}.png", 8 + i, 12, seed=i) for i in range(3)])
    out = list(iter_batches(samples, batch_size=8, transform=EvalTransform(crop_size=6)))
    assert len(out) == 1 and out[0][0].shape == (3, 3, 6, 6)  # cropping makes them one batch
