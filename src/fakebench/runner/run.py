"""Run detectors x attacks x dataset into the resumable store.

Work is cut into fixed chunks of ``batch_size`` samples (the same cut on every run of the same
config). A chunk's images are decoded once; every detector scores them clean, then every
attack runs on them, and each (detector, attack, chunk) is committed atomically. Randomness is
seeded per (seed, detector, attack, chunk), so a resumed run reproduces an uninterrupted one
exactly. Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) chunks are sharded across processes
that all write to the same store.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import attacks as attack_registry
from .. import detectors as detector_registry
from ..data import Sample, load_dataset, select, select_split
from ..data.pipeline import iter_batches
from ..errors import CheckpointError, ConfigError, FakebenchError
from ..io import DEFAULT_MAX_PIXELS
from ..metrics import perturbation_norms
from ..progress import progress_bar
from .config import Experiment
from .store import Row, Store, canonical

log = logging.getLogger(__name__)

CLEAN = "clean"
STORE_FILE = "results.sqlite"


@dataclass
class Prepared:
    """Everything validated and built before work starts."""

    exp: Experiment
    samples: list[Sample]
    detectors: dict[str, torch.nn.Module]
    attacks: list[tuple[str, str, Any]]  # (label, params key, Attack)
    skipped_pairs: set[tuple[str, str]]
    root: Path | None = None

    def sid(self, s: Sample) -> str:
        return sample_id(s, self.root)


def sample_id(s: Sample, root: Path | None = None) -> str:
    """Store key of a sample: its path relative to the dataset root (portable across machines)."""
    if root is not None:
        try:
            return Path(s.path).resolve().relative_to(root).as_posix()
        except ValueError:
            pass
    return s.path


def prepare(exp: Experiment) -> Prepared:
    """Load the dataset, build every detector and attack; raise one ConfigError line on failure."""
    try:
        samples = load_dataset(exp.dataset.path, exp.dataset.root)
    except FakebenchError as exc:
        raise ConfigError(f"dataset.path: {exc}") from None
    try:
        samples = select_split(samples, exp.dataset.split, f"dataset.split ({exp.dataset.path})")
    except FakebenchError as exc:
        raise ConfigError(str(exc)) from None
    samples = select(samples, generators=exp.dataset.generators, limit=exp.dataset.limit)
    if not samples:
        raise ConfigError(f"dataset: no samples in {exp.dataset.path} (split={exp.dataset.split!r}, "
                          f"generators={exp.dataset.generators!r})")
    dets: dict[str, torch.nn.Module] = {}
    for spec in exp.detectors:
        try:
            det = detector_registry.load(spec.checkpoint, **spec.options) if spec.checkpoint else \
                detector_registry.create(str(spec.detector), **spec.options)
        except CheckpointError as exc:
            if not spec.optional:
                raise ConfigError(f"detectors[{spec.name}]: {exc}") from None
            log.warning("skipping detector %s (optional): %s", spec.name, exc)
            continue
        except FakebenchError as exc:
            raise ConfigError(f"detectors[{spec.name}]: {exc}") from None
        dets[spec.name] = det.to(exp.device).eval()
    if not dets:
        raise ConfigError("detectors: none could be built (every optional detector lacks its weights)")
    atks = []
    for spec in exp.attacks:
        try:
            atk = attack_registry.create(spec.attack, **spec.options)
        except FakebenchError as exc:
            raise ConfigError(f"attacks[{spec.name}]: {exc}") from None
        atks.append((spec.name, canonical(atk.params()), atk))
    keys = [(n, k) for n, k, _ in atks]
    if len(set(keys)) != len(keys):
        raise ConfigError("attacks: two entries have the same name and parameters")
    skipped = set()
    for dname, det in dets.items():
        for aname, _, atk in atks:
            if atk.needs_gradients and not getattr(det, "differentiable", True):
                log.warning("skipping %s on %s: the attack needs gradients and the detector is not differentiable",
                            aname, dname)
                skipped.add((dname, aname))
    p = (exp.dataset.root or exp.dataset.path).resolve()
    return Prepared(exp, samples, dets, atks, skipped, p if p.is_dir() else p.parent)


def _chunk_seed(*parts: Any) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _load_chunk(chunk: list[Sample], max_pixels: int, store: Store, run: str, sid):
    """Decode a chunk into same-size batches (:func:`fakebench.data.pipeline.iter_batches`,
    bucketed by size). Bad files are recorded in the store and skipped."""
    out = []
    by_path = {s.path: s for s in chunk}
    for x, y, idx, bad in iter_batches(chunk, max(len(chunk), 1), max_pixels=max_pixels, bucket=True):
        for path, reason in bad:
            store.add_bad_sample(run, sid(by_path[path]), f"{path}: {reason}")
        if len(x):
            out.append((x, y, [chunk[i] for i in idx.tolist()]))
    return out


def evaluate(exp: Experiment, progress: bool = True, prepared: Prepared | None = None) -> Path:
    """Run the experiment (resuming if the store already holds part of it). Returns the store path."""
    prep = prepared or prepare(exp)
    exp.output.mkdir(parents=True, exist_ok=True)
    store_path = exp.output / STORE_FILE
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = torch.device(exp.device)
    with Store(store_path) as store:
        store.ensure_run(exp.run, exp.raw)
        for name, det in prep.detectors.items():
            store.set_detector(exp.run, name, float(getattr(det, "threshold", 0.0)),
                               getattr(det, "config_dict", lambda: {})())
        done = store.done_chunks(exp.run)
        bs = exp.batch_size
        chunks = [prep.samples[i : i + bs] for i in range(0, len(prep.samples), bs)]
        units_per_chunk = len(prep.detectors) * (1 + len(prep.attacks))
        todo = [ci for ci in range(len(chunks)) if ci % world == rank]
        n_done = sum(1 for (d, a, p, c) in done if c in set(todo))
        bar = progress_bar(len(todo) * units_per_chunk, f"evaluate {exp.run}", progress, initial=n_done, unit="unit")
        clean_cache = {name: store.clean_scores(exp.run, name) for name in prep.detectors}
        max_pixels = exp.dataset.max_pixels or DEFAULT_MAX_PIXELS
        for ci in todo:
            pending = [(dn, a) for dn in prep.detectors for a in [(CLEAN, "{}", None)] + prep.attacks
                       if (dn, a[0], a[1], ci) not in done]
            if not pending:
                continue
            batches = _load_chunk(chunks[ci], max_pixels, store, exp.run, prep.sid)
            for dname, det in prep.detectors.items():
                for aname, akey, atk in [(CLEAN, "{}", None)] + prep.attacks:
                    if (dname, aname, akey, ci) in done:
                        continue
                    if (dname, aname) in prep.skipped_pairs:
                        store.commit_chunk(exp.run, dname, aname, akey, ci, [])
                        bar.update(1)
                        continue
                    rows = _run_unit(det, dname, aname, akey, atk, batches, clean_cache[dname], device,
                                     _chunk_seed(exp.seed, dname, aname, akey, ci), prep.sid)
                    store.commit_chunk(exp.run, dname, aname, akey, ci, rows)
                    if aname == CLEAN:
                        clean_cache[dname].update({r.sample: r.score_clean for r in rows})
                    bar.update(1)
        bar.close()
    return store_path


def _run_unit(det, dname, aname, akey, atk, batches, clean, device, seed, sid) -> list[Row]:
    rows: list[Row] = []
    gen = torch.Generator().manual_seed(seed)
    if callable(getattr(det, "reseed", None)):  # randomised defenses: the same draws on a resumed run
        det.reseed(seed)
    rejects = getattr(det, "rejects", None)
    for x, y, samples in batches:
        t0 = time.perf_counter()
        x = x.to(device)
        y = y.to(device)
        if atk is None:
            with torch.no_grad():
                s_clean = det(x).float().cpu()
            s_adv, x_adv, q = s_clean, x, torch.zeros(len(x), dtype=torch.long)
        else:
            res = atk.perturb(det, x, y, generator=gen)
            x_adv, q = res.x_adv, res.queries
            with torch.no_grad():
                s_adv = det(x_adv).float().cpu()
            s_clean = torch.tensor([clean[sid(s)] for s in samples])
        dt = (time.perf_counter() - t0) / max(len(x), 1)
        rej = rejects(x_adv).tolist() if callable(rejects) else [None] * len(x)
        if x_adv.shape == x.shape:
            norms = perturbation_norms(x.cpu(), x_adv.detach().cpu())
        else:
            nan = np.full(len(x), np.nan)
            norms = {"l0": nan, "l2": nan, "linf": nan, "psnr": nan}
        for i, s in enumerate(samples):
            rows.append(Row(dname, aname, akey, sid(s), int(s.label), s.generator, float(s_clean[i]),
                            float(s_adv[i]), float(norms["l0"][i]), float(norms["l2"][i]), float(norms["linf"][i]),
                            float(norms["psnr"][i]), int(q[i]), float(dt), rej[i]))
    return rows
