"""The one image pipeline: decode (:func:`fakebench.io.load_image`), check, transform, batch.

Every command that turns files into tensors goes through here, so decoding rules (8-bit and
16-bit, EXIF, size limits) and bad-file handling are the same everywhere. Three ways in:

- :class:`ImageDataset` + :func:`collate_skip_bad` for a ``torch.utils.data.DataLoader``
  (training: random crops make every image the same size);
- :func:`iter_batches`, a streaming iterator that batches consecutive same-size images, or
  with ``bucket=True`` same-size images wherever they come (evaluation of images of any size,
  never holding the dataset in memory);
- :func:`load_stack`, one tensor of centre crops of a common side (small fit / reference sets).

Either way a file that fails (:class:`~fakebench.errors.ImageLoadError`, or a transform that
refuses the image) is skipped, logged once with its one-line message, and reported.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, ImageLoadError
from ..io import DEFAULT_MAX_PIXELS, load_image
from .loaders import Sample

log = logging.getLogger(__name__)

#: ``transform(img (H, W, 3) float32, rng) -> (3, H', W') float32``
Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one item: a pure function of (seed, epoch, index)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(epoch), int(index)])


def load_item(sample: Sample, transform: Transform | None, rng: np.random.Generator,
              max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int | None = None) -> np.ndarray:
    """Decode ``sample`` and apply ``transform``; returns (3, H, W) float32.

    Raises:
        ImageLoadError: the file cannot be decoded, or the transform refuses the image.
    """
    img = load_image(sample.path, max_pixels=max_pixels, draft_side=draft_side)
    if transform is None:
        return np.ascontiguousarray(np.transpose(img, (2, 0, 1)), dtype=np.float32)
    try:
        out = transform(img, rng)
    except DataError as exc:
        raise ImageLoadError(sample.path, str(exc)) from None
    return np.ascontiguousarray(out, dtype=np.float32)


class ImageDataset(Dataset):
    """Samples as ``(image (3, H, W) float32 tensor, label int, index int)``; ``None`` for a file
    that fails to load (drop it with :func:`collate_skip_bad`).

    The transform's generator is derived from (``seed``, epoch, index): call
    :meth:`set_epoch` at the start of every epoch for fresh augmentations; the same
    (seed, epoch, index) always gives the same tensor, whatever the worker or order.

    ``bad`` maps path -> reason for every failure seen by this process (with
    ``num_workers > 0`` each worker counts its own failures, which the main process does not
    see; the warnings are still logged).
    """

    def __init__(self, samples: Sequence[Sample], transform: Transform | None = None, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.seed = int(seed)
        self.max_pixels = int(max_pixels)
        self.epoch = 0
        self.bad: dict[str, str] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int] | None:
        s = self.samples[index]
        try:
            arr = load_item(s, self.transform, item_rng(self.seed, self.epoch, index), self.max_pixels)
        except ImageLoadError as exc:
            if s.path not in self.bad:
                log.warning("skipping %s", exc)
            self.bad[s.path] = exc.reason
            return None
        return torch.from_numpy(arr), int(s.label), int(index)


def collate_skip_bad(batch: Sequence[Any]) -> Batch | None:
    """Collate ``ImageDataset`` items, dropping ``None`` (bad files).

    Returns ``(x (N, 3, H, W), y (N,) long, indices (N,) long)`` or ``None`` when every item
    was bad. Raises DataError if the images differ in size (use a ``crop_size``,
    ``batch_size=1``, or :func:`iter_batches`, which groups images by size).
    """
    items = [b for b in batch if b is not None]
    if not items:
        return None
    shapes = {tuple(t.shape) for t, _, _ in items}
    if len(shapes) > 1:
        raise DataError(f"collate: images of different sizes in one batch ({', '.join(map(str, sorted(shapes)))}); "
                        "set crop_size, use batch_size=1, or use iter_batches which groups images by size")
    x = torch.stack([t for t, _, _ in items])
    y = torch.tensor([int(lbl) for _, lbl, _ in items], dtype=torch.long)
    idx = torch.tensor([int(i) for _, _, i in items], dtype=torch.long)
    return x, y, idx


BadList = list[tuple[str, str]]


def iter_batches(samples: Sequence[Sample], batch_size: int, transform: Transform | None = None, seed: int = 0,
                 max_pixels: int = DEFAULT_MAX_PIXELS, bucket: bool = False, draft_side: int | None = None
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor, BadList]]:
    """Stream ``samples`` as batches ``(x, y, indices, bad)``, decoding one file at a time.

    Without ``bucket``, consecutive images of the same (transformed) size are grouped, up to
    ``batch_size``; a batch is flushed early when the size changes, so a folder of mixed sizes
    gives more, smaller batches. With ``bucket=True`` images wait in one bucket per size until
    it holds ``batch_size`` images (remaining buckets are flushed at the end, in order of first
    appearance): full batches whatever the order, at most one partial batch per size in memory.
    ``indices`` are positions in ``samples``. ``bad`` lists ``(path, reason)`` of the files that
    failed since the previous batch (failures after the last good image are reported with the
    last batch). If no image at all can be loaded, one empty batch (``x`` of shape (0, 3, 0, 0))
    carries the failures. The transform's generator for sample ``i`` is ``item_rng(seed, 0, i)``.
    ``draft_side``: large JPEGs are decoded at a reduced DCT scale whose sides stay at least
    this (:func:`fakebench.io.load_image`); for detectors that resize their input anyway.
    """
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) < 1:
        raise ConfigError(f"batch_size: expected a positive integer, got {batch_size!r}")
    pending = None
    raw = _bucket_batches if bucket else _raw_batches
    for batch in raw(samples, int(batch_size), transform, seed, max_pixels, draft_side):
        if pending is not None:
            if len(batch[0]) == 0:  # failures after the last good image: report them with it
                pending = (*pending[:3], pending[3] + batch[3])
                continue
            yield pending
        pending = batch
    if pending is not None:
        yield pending


def _decoded(samples: Sequence[Sample], transform: Transform | None, seed: int, max_pixels: int,
             draft_side: int | None = None
             ) -> Iterator[tuple[int, np.ndarray | None, tuple[str, str] | None]]:
    """(index, array or None, (path, reason) or None) per sample, one decode at a time."""
    for i, s in enumerate(samples):
        try:
            yield i, load_item(s, transform, item_rng(seed, 0, i), max_pixels, draft_side), None
        except ImageLoadError as exc:
            log.warning("skipping %s", exc)
            yield i, None, (s.path, exc.reason)


def _stack(samples: Sequence[Sample], items: list[tuple[int, np.ndarray]], bad: BadList):
    return (torch.from_numpy(np.stack([a for _, a in items])),
            torch.tensor([int(samples[i].label) for i, _ in items], dtype=torch.long),
            torch.tensor([i for i, _ in items], dtype=torch.long), list(bad))


def _empty(bad: BadList):
    return (torch.zeros((0, 3, 0, 0)), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), list(bad))


def _bucket_batches(samples, batch_size, transform, seed, max_pixels, draft_side=None):
    buckets: dict[tuple[int, ...], list[tuple[int, np.ndarray]]] = {}
    bad: BadList = []
    for i, arr, failed in _decoded(samples, transform, seed, max_pixels, draft_side):
        if failed is not None:
            bad.append(failed)
            continue
        items = buckets.setdefault(tuple(arr.shape), [])
        items.append((i, arr))
        if len(items) >= batch_size:
            yield _stack(samples, items, bad)
            items.clear()
            bad.clear()
    for items in buckets.values():
        if items:
            yield _stack(samples, items, bad)
            bad.clear()
    if bad:
        yield _empty(bad)


def _raw_batches(samples, batch_size, transform, seed, max_pixels, draft_side=None):
    cur: list[tuple[int, np.ndarray]] = []
    bad: BadList = []
    for i, arr, failed in _decoded(samples, transform, seed, max_pixels, draft_side):
        if failed is not None:
            bad.append(failed)
            continue
        if cur and arr.shape != cur[0][1].shape:
            yield _stack(samples, cur, bad)
            cur.clear(), bad.clear()
        cur.append((i, arr))
        if len(cur) >= batch_size:
            yield _stack(samples, cur, bad)
            cur.clear(), bad.clear()
    if cur:
        yield _stack(samples, cur, bad)
    elif bad:
        yield _empty(bad)


def load_stack(samples: Sequence[Sample], size: int | None = None, limit: int | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[torch.Tensor, list[int]]:
    """Centre crops of side ``size`` of ``samples`` as one (N, 3, S, S) tensor.

    ``size`` defaults to the shortest side among the images (read from the file headers).
    ``limit`` keeps the first ``limit`` images that decode. Unreadable images and images
    smaller than ``size`` are skipped with a warning naming them. Returns (images, indices of
    the kept samples). Raises DataError when none is left."""
    from ..io import image_size

    if size is None:
        sides = []
        for s in samples:
            try:
                sides.append(min(image_size(s.path)))
            except ImageLoadError as exc:
                log.warning("skipping %s", exc)
                continue
            if limit is not None and len(sides) >= limit:
                break
        if not sides:
            raise DataError(f"no readable images among {len(samples)} files")
        size = min(sides)
    from .transforms import EvalTransform

    crop = EvalTransform(crop_size=int(size), pad_if_needed=False)
    xs: list[torch.Tensor] = []
    kept: list[int] = []
    for x, _, idx, _ in iter_batches(samples, 64, crop, max_pixels=max_pixels):
        take = len(x) if limit is None else min(len(x), limit - len(kept))
        xs.append(x[:take])
        kept += idx[:take].tolist()
        if limit is not None and len(kept) >= limit:
            break
    if not kept:
        raise DataError(f"no readable images of at least {size} px among {len(samples)} files")
    return torch.cat(xs).float().contiguous(), kept


def load_dataset_tensors(data: Any, split: str | None = "test", limit: int | None = None, size: int | None = None,
                         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[Sample]]:
    """Images of a dataset (any layout :func:`fakebench.data.load_dataset` reads) as one
    tensor (N, 3, S, S) of centre crops (:func:`load_stack`; ``size`` defaults to the smallest
    side among them); ``split`` (``None``/``"all"``: every sample) and a seeded random subset of
    ``limit``. Returns (x, y, samples kept)."""
    from .loaders import load_dataset, select

    samples = load_dataset(data)
    if split and split != "all":
        samples = select(samples, split=split)
    if limit is not None:
        samples = select(samples, limit=limit, seed=seed)
    if not samples:
        raise ConfigError(f"{data}: no samples{' in split ' + repr(split) if split else ''}")
    try:
        x, kept = load_stack(samples, size=size)
    except DataError as exc:
        raise ConfigError(f"{data}: {exc}") from None
    picked = [samples[i] for i in kept]
    return x, torch.tensor([int(s.label) for s in picked], dtype=torch.long), picked
