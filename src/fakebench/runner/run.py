"""Run detectors x attacks x dataset into the resumable store.

Work is cut into fixed chunks of ``batch_size`` samples (the same cut on every run of the same
config). A chunk's images are decoded once; every detector scores them clean, then every
attack runs on them, and each (detector, attack, chunk) is committed atomically. Randomness is
seeded per (seed, detector, attack, chunk), so a resumed run reproduces an uninterrupted one
exactly.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) chunks are sharded across processes: rank r
takes chunks r, r + W, ... and writes them to its own shard store ``OUTPUT/shards/rankNNNNN.sqlite``
(SQLite must not be shared over a network file system); after a ``torch.distributed`` barrier
(gloo) rank 0 merges every shard it can see into ``OUTPUT/results.sqlite``. Shards on other
machines' disks are merged by hand with ``fakebench merge``. A rerun resumes each shard.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import attacks as attack_registry
from .. import detectors as detector_registry
from ..attacks.base import target_mask
from ..data import Sample, select, select_split
from ..data.pipeline import iter_batches
from ..errors import CheckpointError, ConfigError, FakebenchError
from ..io import DEFAULT_MAX_PIXELS, safe_text
from ..metrics import perturbation_norms
from ..progress import progress_bar
from ..train.distributed import dist_env as dist_info
from ..train.distributed import init_process_group
from ..train.distributed import rank_device as run_device
from .config import Experiment
from .gallery import GalleryPicker, pushed
from .store import Row, Store, canonical

log = logging.getLogger(__name__)

CLEAN = "clean"
STORE_FILE = "results.sqlite"
SHARD_DIR = "shards"


def shard_path(output: Path, rank: int) -> Path:
    """Where rank ``rank`` writes its shard store."""
    return Path(output) / SHARD_DIR / f"rank{rank:05d}.sqlite"


def merge_shards(output: Path, world: int | None = None, dest: Path | None = None) -> tuple[Path, list[int]]:
    """Merge the shard stores under ``output/shards`` into ``dest`` (``output/results.sqlite``).
    Returns (dest, ranks whose shard is missing among ``range(world)``); with missing ranks
    nothing is merged (the report would be partial)."""
    shard_dir = Path(output) / SHARD_DIR
    present = sorted(shard_dir.glob("rank*.sqlite"))
    ranks = {int(p.stem[4:]) for p in present if p.stem[4:].isdigit()}
    missing = [r for r in range(world or 0) if r not in ranks]
    dest = dest or Path(output) / STORE_FILE
    if missing:
        return dest, missing
    with Store(dest) as store:
        for p in present:
            store.merge_from(p)
    return dest, []


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
    """Store key of a sample: its path relative to the dataset root (portable across machines);
    bytes of a non-UTF-8 file name appear as ``\\xNN`` (:func:`fakebench.io.safe_text`)."""
    if root is not None:
        p = Path(s.path)
        try:  # the folder is resolved, not the file: a symlink keeps its own name
            return safe_text((p.parent.resolve() / p.name).relative_to(root).as_posix())
        except (ValueError, OSError, RuntimeError):  # outside the root, unresolvable folder
            pass
    return safe_text(s.path)


def chunk_layout(prep: Prepared) -> dict[str, Any]:
    """What decides which samples chunk ``i`` holds and how its randomness is drawn: the ordered
    sample list (store keys, labels and file sizes, hashed: portable to another machine or
    folder), the batch size and the seed. A resumed run must have the same
    (:meth:`Store.check_layout`)."""
    h = hashlib.sha256()
    for s in prep.samples:
        try:
            size = os.stat(s.path).st_size
        except (OSError, ValueError):  # dangling link, loop: decoding reports it
            size = -1
        h.update(f"{prep.sid(s)}\t{int(s.label)}\t{size}\n".encode())
    exp = prep.exp
    return {"samples": len(prep.samples), "sample_list_sha256": h.hexdigest()[:16], "batch_size": exp.batch_size,
            "seed": exp.seed}


def detector_record(prep: Prepared, name: str) -> dict[str, Any]:
    """What the store keeps about a detector: its config (registry name, options, threshold,
    meta) and, for a checkpoint folder, the sha256 of its weights file."""
    rec = dict(getattr(prep.detectors[name], "config_dict", lambda: {})())
    spec = next((d for d in prep.exp.detectors if d.name == name), None)
    if spec is not None and spec.checkpoint is not None:
        h = hashlib.sha256()
        with open(spec.checkpoint / detector_registry.WEIGHTS_FILE, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        rec["weights_sha256"] = h.hexdigest()
    return rec


def _check_detectors(store: Store, prep: Prepared) -> None:
    """A detector name already in the run must still be the same detector (weights file,
    options, threshold); a new name is simply added."""
    for name in prep.detectors:
        stored = store.detector_config(prep.exp.run, name)
        rec = detector_record(prep, name)
        if stored is not None and "weights_sha256" not in stored:  # recorded before weights were hashed
            rec.pop("weights_sha256", None)
        if stored is not None and stored != canonical(rec):
            raise ConfigError(f"{store.path}: detector {name!r} of run {prep.exp.run!r} differs from the one that "
                              "produced its stored results (config, options or threshold changed); "
                              "rename it, or use another output folder or run name")


_REGISTRY_PREFIX = re.compile(r"^(?:attack|detector) '[^']*': ")
_OPTION_MESSAGE = re.compile(r"^(?:[\w-]+ )?(\w+): (.+)$", re.DOTALL)


def spec_error(exc: BaseException, kind: str, index: int, name: str, options: dict[str, Any]) -> ConfigError:
    """One ConfigError line for a detector / attack the config describes but that cannot be
    built: ``attacks[2].options.quality (jpeg): expected an integer in 1..100, got 500`` when
    the message is about one of the entry's options, else ``attacks[2] (jpeg): <message>``."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if not isinstance(exc, FakebenchError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = _REGISTRY_PREFIX.sub("", text)
    m = _OPTION_MESSAGE.match(text)
    if m and m.group(1) in options:
        return ConfigError(f"{kind}[{index}].options.{m.group(1)} ({name}): {m.group(2)}")
    return ConfigError(f"{kind}[{index}] ({name}): {text}")


def prepare(exp: Experiment) -> Prepared:
    """Load the dataset, build every detector and attack; raise one ConfigError line on failure."""
    try:
        samples = exp.dataset.load()
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
                raise ConfigError(f"detectors[{spec.index}] ({spec.name}): {exc}") from None
            log.warning("skipping detector %s (optional): %s", spec.name, exc)
            continue
        except Exception as exc:  # noqa: BLE001 - a factory refusing its options, in whatever words: one line
            raise spec_error(exc, "detectors", spec.index, spec.name, spec.options) from None
        dets[spec.name] = det.to(run_device(exp.device)).eval()
    if not dets:
        raise ConfigError("detectors: none could be built (every optional detector lacks its weights)")
    atks = []
    for spec in exp.attacks:
        try:
            atk = attack_registry.create(spec.attack, **spec.options)
        except Exception as exc:  # noqa: BLE001 - every option of every attack is checked here, before any work
            raise spec_error(exc, "attacks", spec.index, spec.name, spec.options) from None
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
    prep = Prepared(exp, samples, dets, atks, skipped, p if p.is_dir() else p.parent)
    seen: dict[str, int] = {}
    for s in samples:
        sid = prep.sid(s)
        seen[sid] = seen.get(sid, 0) + 1
    twice = sorted(k for k, n in seen.items() if n > 1)
    if twice:
        raise ConfigError(f"dataset: {len(twice)} image(s) listed more than once (e.g. {twice[0]!r}); "
                          "each image may appear once")
    return prep


def _check_complete(store: Store, prep: Prepared) -> None:
    """After a single-process run: every (detector, attack) has a row or a bad-sample record for
    every sample, so a run never ends silently short."""
    exp = prep.exp
    n = len(prep.samples)
    bad = len(store.bad_samples(exp.run))
    counts = store.counts(exp.run)
    for dname in prep.detectors:
        for aname, akey in [(CLEAN, "{}")] + [(a, k) for a, k, _ in prep.attacks]:
            if (dname, aname) in prep.skipped_pairs:
                continue
            got = counts.get((dname, aname, akey), 0)
            if got + bad < n:
                raise FakebenchError(f"{store.path}: run {exp.run!r} holds {got} rows + {bad} unreadable images "
                                     f"for {dname} / {aname}, not {n}; the store is inconsistent")


def environment(device: str) -> dict[str, Any]:
    """Versions and device, stored with the run for the report's reproduction section."""
    import platform

    from .._version import __version__

    info = {"fakebench": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "device": str(device),
            "threads": torch.get_num_threads()}
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _chunk_seed(*parts: Any) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def min_side(detectors: dict[str, torch.nn.Module]) -> tuple[int, str]:
    """The largest minimum input side among ``detectors`` (their cards' ``min_side``; 32 px
    for a detector without a card) and the detector that needs it."""
    sides = {name: int(getattr(getattr(det, "card", None), "min_side", 32)) for name, det in detectors.items()}
    name = max(sides, key=lambda n: sides[n])
    return sides[name], name


def draft_side(detectors: dict[str, torch.nn.Module]) -> int | None:
    """The side large JPEGs may be decoded at (:func:`fakebench.io.load_image`): the largest
    ``resizes_to`` of the detectors when every one of them resizes its input, else None."""
    sides = [getattr(det, "resizes_to", None) for det in detectors.values()]
    return max(sides) if sides and all(isinstance(s, int) and s > 0 for s in sides) else None  # type: ignore[type-var]


def _load_chunk(chunk: list[Sample], max_pixels: int, store: Store, run: str, sid,
                smallest: tuple[int, str] = (0, ""), draft: int | None = None):
    """Decode a chunk into same-size batches (:func:`fakebench.data.pipeline.iter_batches`,
    bucketed by size). Bad files are recorded in the store and skipped; images with a side
    below ``smallest[0]`` (the detectors' minimum input) are scored with one warning line each."""
    out = []
    by_path = {s.path: s for s in chunk}
    for x, y, idx, bad in iter_batches(chunk, max(len(chunk), 1), max_pixels=max_pixels, bucket=True,
                                       draft_side=draft):
        for path, reason in bad:
            store.add_bad_sample(run, sid(by_path[path]), safe_text(f"{path}: {reason}"))
        if len(x):
            samples = [chunk[i] for i in idx.tolist()]
            h, w = x.shape[-2:]
            if min(h, w) < smallest[0]:
                for s in samples:
                    log.warning("%s: %dx%d px is smaller than the %d px minimum input of detector %s; scored anyway",
                                safe_text(s.path), w, h, smallest[0], smallest[1])
            out.append((x, y, samples))
    return out


def evaluate(exp: Experiment, progress: bool = True, prepared: Prepared | None = None) -> Path:
    """Run the experiment (resuming if the store already holds part of it). Returns the store path."""
    prep = prepared or prepare(exp)
    exp.output.mkdir(parents=True, exist_ok=True)
    rank, world, _ = dist_info()
    store_path = shard_path(exp.output, rank) if world > 1 else exp.output / STORE_FILE
    created = init_process_group("gloo") if world > 1 else False  # only a barrier: gloo on GPUs too
    device = torch.device(run_device(exp.device))
    with Store(store_path) as store:
        store.ensure_run(exp.run, exp.raw)
        store.check_layout(exp.run, chunk_layout(prep))
        _check_detectors(store, prep)
        store.set_environment(exp.run, environment(exp.device))
        for name, det in prep.detectors.items():
            store.set_detector(exp.run, name, float(getattr(det, "threshold", 0.0)), detector_record(prep, name))
        done = store.done_chunks(exp.run)
        bs = exp.batch_size
        chunks = [prep.samples[i : i + bs] for i in range(0, len(prep.samples), bs)]
        units_per_chunk = len(prep.detectors) * (1 + len(prep.attacks))
        todo = [ci for ci in range(len(chunks)) if ci % world == rank]
        n_done = sum(1 for (d, a, p, c) in done if c in set(todo))
        bar = progress_bar(len(todo) * units_per_chunk, f"evaluate {exp.run}", progress, initial=n_done, unit="unit")
        clean_cache = {name: store.clean_scores(exp.run, name) for name in prep.detectors}
        max_pixels = exp.dataset.max_pixels or DEFAULT_MAX_PIXELS
        recorders = {akey: _share_pairs_recorder(prep, store, akey, atk) for _, akey, atk in prep.attacks}
        for ci in todo:
            pending = [(dn, a) for dn in prep.detectors for a in [(CLEAN, "{}", None)] + prep.attacks
                       if (dn, a[0], a[1], ci) not in done]
            if not pending:
                continue
            batches = _load_chunk(chunks[ci], max_pixels, store, exp.run, prep.sid, min_side(prep.detectors),
                                  draft_side(prep.detectors))
            for dname, det in prep.detectors.items():
                for aname, akey, atk in [(CLEAN, "{}", None)] + prep.attacks:
                    if (dname, aname, akey, ci) in done:
                        continue
                    if (dname, aname) in prep.skipped_pairs:
                        store.commit_chunk(exp.run, dname, aname, akey, ci, [])
                        bar.update(1)
                        continue
                    picker = GalleryPicker(exp.gallery if atk is not None else 0)
                    rows = _run_isolated(det, dname, aname, akey, atk, batches, clean_cache[dname], device,
                                         _chunk_seed(exp.seed, dname, aname, akey, ci), prep.sid,
                                         lambda smp, why: store.add_bad_sample(exp.run, prep.sid(smp), safe_text(why)),
                                         picker, recorders.get(akey))
                    picker.write(exp.output, dname, aname, akey)  # thumbnails first: a resumed chunk rewrites them
                    if not store.commit_chunk(exp.run, dname, aname, akey, ci, rows):
                        log.info("chunk %d of %s / %s was committed by another process; keeping its rows",
                                 ci, dname, aname)
                        clean_cache[dname] = store.clean_scores(exp.run, dname)
                    elif aname == CLEAN:
                        clean_cache[dname].update({r.sample: r.score_clean for r in rows})
                    bar.update(1)
        bar.close()
    if world > 1:
        return _finish_distributed(exp.output, rank, world, created, store_path)
    with Store(store_path) as store:
        _check_complete(store, prep)
    return store_path


def _finish_distributed(output: Path, rank: int, world: int, created: bool, shard: Path) -> Path:
    """Barrier, then rank 0 merges the shards. Returns the merged store on rank 0 when every
    shard was on this disk, else this rank's shard."""
    import torch.distributed as dist

    dist.barrier()
    try:
        if rank != 0:
            return shard
        merged, missing = merge_shards(output, world)
        if missing:
            log.warning("rank 0: the shards of rank(s) %s are not in %s (other machines' disks?); copy them there "
                        "and run `fakebench merge %s`, or merge the folders: fakebench merge DIR1 DIR2 --out STORE",
                        missing, output / SHARD_DIR, output)
            return shard
        return merged
    finally:
        if created:
            dist.destroy_process_group()


def _share_pairs_recorder(prep: Prepared, store: Store, akey: str, atk: Any):
    """For a ``share`` attack on a dataset holding real shared copies (TrueFake PreSocial +
    Facebook / Telegram / Twitter): ``f(samples, x, x_adv)`` storing, per image with a copy,
    the PSNR of the simulation and of the original against the copy. None otherwise."""
    from ..data.benchmarks import PLATFORM_SHARE, compare_to_copy, shared_copies

    platform = atk.params().get("platform") if atk is not None and atk.params().get("op") == "share" else None
    share = PLATFORM_SHARE.get(str(platform))
    copies = shared_copies(prep.samples, share) if share else {}
    if not copies:
        return None
    seen: set[str] = set()  # one comparison per image, whichever detector comes first

    def record(samples: list[Sample], x: torch.Tensor, x_adv: torch.Tensor) -> None:
        pairs = []
        for i, s in enumerate(samples):
            c = copies.get(s.path)
            if c is None or s.path in seen:
                continue
            seen.add(s.path)
            try:
                ps, po, same = compare_to_copy(x_adv[i], x[i], c.path)
            except FakebenchError as exc:
                log.warning("share copy comparison skipped: %s", exc)
                continue
            pairs.append((prep.sid(s), prep.sid(c), ps, po, same))
        store.add_share_pairs(prep.exp.run, akey, pairs)

    return record


def _run_isolated(det, dname, aname, akey, atk, batches, clean, device, seed, sid, on_fail,
                  picker: GalleryPicker | None = None, on_adv=None) -> list[Row]:
    """:func:`_run_unit`; when it fails, again one image at a time, so that an image the detector
    or attack cannot process (out of memory on a huge image, a size it refuses) costs only
    itself: ``on_fail(sample, reason)`` records it (True when new) and one warning line names
    it. When several
    images all fail alone too, the error is not about images and is raised."""
    try:
        return _run_unit(det, dname, aname, akey, atk, batches, clean, device, seed, sid, picker, on_adv)
    except Exception as first:  # noqa: BLE001 - isolated below; re-raised if no image is to blame
        error = first
    rows: list[Row] = []
    failed = []
    for x, y, samples in batches:
        for i, smp in enumerate(samples):
            try:
                rows += _run_unit(det, dname, aname, akey, atk, [(x[i:i + 1], y[i:i + 1], [smp])], clean, device,
                                  seed, sid, picker, on_adv)
            except Exception as exc:  # noqa: BLE001 - this image's own failure
                msg = str(exc).splitlines()[0][:200] if str(exc) else ""
                failed.append((smp, f"{smp.path}: {dname} / {aname} failed ({type(exc).__name__}: {msg})"))
    if not rows and len(failed) > 1:
        raise error
    for smp, why in failed:
        if on_fail(smp, why):  # one line per image, not one per unit it fails in
            log.warning("skipping %s", safe_text(why))
    return rows


def _run_unit(det, dname, aname, akey, atk, batches, clean, device, seed, sid,
              picker: GalleryPicker | None = None, on_adv=None) -> list[Row]:
    rows: list[Row] = []
    direction = getattr(getattr(atk, "threat", None), "direction", "all")
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
            if on_adv is not None:
                on_adv(samples, x, x_adv)
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
                            float(norms["psnr"][i]), int(q[i]), float(dt), rej[i], s.share))
        if picker is not None and picker.k > 0 and x_adv.shape == x.shape:
            attacked = target_mask(y.cpu(), direction).tolist()
            xc, xa = x.detach().float().cpu().numpy(), x_adv.detach().float().cpu().numpy()
            for i, s in enumerate(samples):
                if attacked[i]:
                    picker.offer(sid(s), pushed(int(s.label), float(s_clean[i]), float(s_adv[i])), xc[i], xa[i])
    return rows
