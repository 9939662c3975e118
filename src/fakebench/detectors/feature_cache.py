"""On-disk cache of frozen-backbone features, so that retraining a probe costs no forward pass.

A feature vector is stored under two keys:

- the **image key**: sha256 of the image file's bytes (renaming or moving a file keeps its
  features; editing it by one byte does not);
- the **model key**: a hash of everything that changes the vector: architecture, backbone
  weights identity (sha256 of the weights file, or of the tensors for an in-memory backbone),
  which feature (layer, normalisation), preprocessing and its version. Build it with
  :func:`make_key`.

Storage is one SQLite file (``features.sqlite``, WAL mode, safe for several processes) under
the cache directory: ``root`` if given, else ``$FAKEBENCH_FEATURE_CACHE``, else
``~/.cache/fakebench/features``. Vectors are float32 blobs. The same file memoises the sha256 of
large weights files, keyed by (real path, size, mtime), so a 1.7 GB backbone is hashed once.

:func:`extract_cached` is the one entry point detectors use: hash every file, read the hits,
decode and embed only the misses (bad files are skipped and reported, never fatal), store them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ImageLoadError

log = logging.getLogger(__name__)

ENV_VAR = "FAKEBENCH_FEATURE_CACHE"
DB_NAME = "features.sqlite"
_CHUNK = 1 << 20
_SQL_IN = 500  # keys per SELECT ... IN (...)


def default_cache_dir() -> Path:
    """``$FAKEBENCH_FEATURE_CACHE`` or ``~/.cache/fakebench/features``."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fakebench" / "features"


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (streamed, 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def make_key(**parts: Any) -> str:
    """Stable hex key (sha256, 32 chars) of JSON-serialisable ``parts`` (order-independent)."""
    blob = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class FeatureCache:
    """SQLite store of float32 feature vectors keyed by (model key, image key).

    Args:
        root: cache directory (created on first use); default :func:`default_cache_dir`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / DB_NAME
        self._db = sqlite3.connect(str(self.path), timeout=60.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS features (model TEXT NOT NULL, image TEXT NOT NULL, dim INTEGER NOT NULL, "
            "data BLOB NOT NULL, PRIMARY KEY (model, image)) WITHOUT ROWID")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS file_hashes (path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, "
            "sha256 TEXT NOT NULL, PRIMARY KEY (path, size, mtime_ns))")
        self._db.commit()

    # -- features ---------------------------------------------------------------------------
    def get(self, model_key: str, image_keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors among ``image_keys`` (missing keys are simply absent)."""
        out: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(image_keys))
        for i in range(0, len(uniq), _SQL_IN):
            chunk = uniq[i : i + _SQL_IN]
            rows = self._db.execute(
                f"SELECT image, dim, data FROM features WHERE model = ? AND image IN ({','.join('?' * len(chunk))})",
                (model_key, *chunk)).fetchall()
            for image, dim, data in rows:
                vec = np.frombuffer(data, dtype=np.float32)
                if vec.size == dim:  # a torn row would be silently recomputed
                    out[image] = vec
        return out

    def put(self, model_key: str, items: dict[str, np.ndarray]) -> None:
        """Store (or replace) vectors; each is flattened to float32."""
        rows = []
        for image, vec in items.items():
            v = np.ascontiguousarray(np.asarray(vec, dtype=np.float32).ravel())
            rows.append((model_key, image, int(v.size), v.tobytes()))
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO features VALUES (?, ?, ?, ?)", rows)

    def count(self, model_key: str | None = None) -> int:
        """Number of stored vectors (for one model key, or in total)."""
        if model_key is None:
            return int(self._db.execute("SELECT COUNT(*) FROM features").fetchone()[0])
        return int(self._db.execute("SELECT COUNT(*) FROM features WHERE model = ?", (model_key,)).fetchone()[0])

    def clear(self, model_key: str | None = None) -> None:
        """Forget the vectors of one model key (or every vector)."""
        with self._db:
            if model_key is None:
                self._db.execute("DELETE FROM features")
            else:
                self._db.execute("DELETE FROM features WHERE model = ?", (model_key,))

    # -- large files ------------------------------------------------------------------------
    def file_sha256(self, path: str | Path) -> str:
        """sha256 of a (large) file, memoised by (real path, size, mtime_ns)."""
        p = Path(path).resolve()
        st = p.stat()
        key = (str(p), int(st.st_size), int(st.st_mtime_ns))
        row = self._db.execute("SELECT sha256 FROM file_hashes WHERE path = ? AND size = ? AND mtime_ns = ?",
                               key).fetchone()
        if row:
            return str(row[0])
        digest = sha256_file(p)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)", (*key, digest))
        return digest

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "FeatureCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class ExtractStats:
    """What :func:`extract_cached` did: cache hits, computed vectors, skipped files, seconds."""

    hits: int = 0
    computed: int = 0
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def extract_cached(paths: Sequence[str | Path], model_key: str,
                   compute: Callable[[list[np.ndarray]], np.ndarray], cache: FeatureCache,
                   batch_size: int = 16, loader: Callable[[str | Path], np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray, ExtractStats]:
    """Features of the images at ``paths``, from ``cache`` where present.

    Args:
        paths: image files.
        model_key: see :func:`make_key`.
        compute: maps a list of decoded images (H, W, 3) float32 in [0, 1] (sizes may differ)
            to an array (n, D) of features; called on batches of at most ``batch_size`` misses.
        cache: where vectors are read and written.
        loader: image decoder (default :func:`fakebench.io.load_image`).

    Returns:
        (features (M, D) float32, kept (N,) bool mask over ``paths``, stats). Files that cannot
        be read or decoded are skipped (kept False) and listed in ``stats.skipped``.
    """
    if loader is None:
        from ..io import load_image as loader
    t0 = time.perf_counter()
    stats = ExtractStats()
    keys: list[str | None] = []
    for p in paths:
        try:
            keys.append(sha256_file(p))
        except OSError as exc:
            keys.append(None)
            stats.skipped.append(f"{p}: {exc.strerror or exc}")
    found = cache.get(model_key, [k for k in keys if k is not None])
    stats.hits = sum(1 for k in keys if k is not None and k in found)
    todo = [i for i, k in enumerate(keys) if k is not None and k not in found]
    todo_keys = list(dict.fromkeys(keys[i] for i in todo))  # duplicate files computed once
    first_index = {}
    for i in todo:
        first_index.setdefault(keys[i], i)
    for s in range(0, len(todo_keys), max(int(batch_size), 1)):
        batch_keys, images = [], []
        for k in todo_keys[s : s + batch_size]:
            p = paths[first_index[k]]
            try:
                images.append(loader(p))
                batch_keys.append(k)
            except (ImageLoadError, OSError, ValueError) as exc:
                stats.skipped.append(str(exc) if isinstance(exc, ImageLoadError) else f"{p}: {exc}")
                log.warning("skipping %s", stats.skipped[-1])
        if not images:
            continue
        feats = np.asarray(compute(images), dtype=np.float32)
        if feats.ndim != 2 or len(feats) != len(images):
            raise ValueError(f"compute returned shape {feats.shape} for {len(images)} images; expected (n, D)")
        new = {k: f for k, f in zip(batch_keys, feats)}
        cache.put(model_key, new)
        found.update(new)
        stats.computed += len(new)
    kept = np.array([k is not None and k in found for k in keys], dtype=bool)
    rows = [found[k] for k in keys if k is not None and k in found]
    dims = {r.size for r in rows}
    if len(dims) > 1:
        raise ValueError(f"feature cache: vectors of different sizes {sorted(dims)} under one model key")
    feats = np.stack(rows).astype(np.float32, copy=False) if rows else np.zeros((0, 0), dtype=np.float32)
    stats.seconds = time.perf_counter() - t0
    return feats, kept, stats
