"""Resumable results store (SQLite, standard library).

One row per (run, detector, attack, params, sample). Work is committed in chunks: a chunk's
rows and its completion marker are written in ONE transaction, so a process killed at any
moment (SIGKILL included) leaves either the whole chunk or nothing, and a restart skips exactly
the finished chunks: no duplicates, no lost rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS detectors (
    run TEXT NOT NULL, detector TEXT NOT NULL, threshold REAL, config TEXT,
    PRIMARY KEY (run, detector));
CREATE TABLE IF NOT EXISTS results (
    run TEXT NOT NULL, detector TEXT NOT NULL, attack TEXT NOT NULL, params TEXT NOT NULL,
    sample TEXT NOT NULL, label INTEGER NOT NULL, generator TEXT,
    score_clean REAL, score_adv REAL, l0 REAL, l2 REAL, linf REAL, psnr REAL,
    queries INTEGER, seconds REAL, rejected INTEGER,
    PRIMARY KEY (run, detector, attack, params, sample));
CREATE TABLE IF NOT EXISTS chunks (
    run TEXT NOT NULL, detector TEXT NOT NULL, attack TEXT NOT NULL, params TEXT NOT NULL,
    chunk INTEGER NOT NULL, finished REAL NOT NULL,
    PRIMARY KEY (run, detector, attack, params, chunk));
CREATE TABLE IF NOT EXISTS bad_samples (
    run TEXT NOT NULL, sample TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (run, sample));
CREATE TABLE IF NOT EXISTS layout (
    run TEXT PRIMARY KEY, layout TEXT NOT NULL);
"""

RESULT_COLUMNS = ("run", "detector", "attack", "params", "sample", "label", "generator", "score_clean",
                  "score_adv", "l0", "l2", "linf", "psnr", "queries", "seconds", "rejected")


@dataclass(frozen=True)
class Row:
    detector: str
    attack: str
    params: str
    sample: str
    label: int
    generator: str
    score_clean: float
    score_adv: float
    l0: float
    l2: float
    linf: float
    psnr: float
    queries: int
    seconds: float
    #: 1 when an adversarial-input detector rejected the (attacked) image, 0 when not, None
    #: for detectors without rejection
    rejected: int | None = None


def _short(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def canonical(params: dict[str, Any]) -> str:
    """Stable JSON text used as the store key of an attack configuration."""
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


class Store:
    """Thin wrapper over one SQLite file. Safe for several processes (torchrun shards, or two
    ``fakebench evaluate`` on one output: a chunk committed by one is skipped by the other).

    ``readonly=True`` opens an existing store for reading only (reports): a missing file is one
    ConfigError line, and nothing is created or written."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            self._open_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        cols = {r[1] for r in self.conn.execute("PRAGMA table_info(results)")}
        if "rejected" not in cols:  # a store written before rejections were recorded
            self.conn.execute("ALTER TABLE results ADD COLUMN rejected INTEGER")

    def _open_readonly(self) -> None:
        if not self.path.is_file():
            raise ConfigError(f"{self.path}: results store not found")
        # no write-ahead log beside it (the last writer closed cleanly): open it as immutable, so
        # that SQLite creates no -wal / -shm files either; else read-only through the live log
        live = Path(f"{self.path}-wal").exists()
        uri = f"{self.path.resolve().as_uri()}?{'mode=ro' if live else 'immutable=1'}"
        try:
            self.conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a fakebench results store ({exc})") from None
        if not {"runs", "results", "detectors"} <= tables:
            self.conn.close()
            raise ConfigError(f"{self.path}: not a fakebench results store (tables {sorted(tables)})")
        self._has_layout = "layout" in tables

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def ensure_run(self, run: str, config: dict[str, Any]) -> None:
        self.conn.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (run, canonical(config), time.time()))

    def set_detector(self, run: str, detector: str, threshold: float, config: dict[str, Any]) -> None:
        self.conn.execute("INSERT OR REPLACE INTO detectors VALUES (?, ?, ?, ?)",
                          (run, detector, float(threshold), canonical(config)))

    def check_layout(self, run: str, layout: dict[str, Any]) -> None:
        """Record what defines ``run``'s chunks (dataset, sample order, batch size, seed, ...) on
        its first call; on later calls raise one ConfigError line naming every field that
        differs, since finished chunks would no longer hold the samples their index says."""
        text = canonical(layout)
        self.conn.execute("INSERT OR IGNORE INTO layout VALUES (?, ?)", (run, text))
        (stored,) = self.conn.execute("SELECT layout FROM layout WHERE run = ?", (run,)).fetchone()
        if stored == text:
            return
        old = json.loads(stored)
        changed = [f"{k} {_short(old.get(k))} -> {_short(layout.get(k))}" for k in sorted(set(old) | set(layout))
                   if old.get(k) != layout.get(k)]
        raise ConfigError(f"{self.path}: run {run!r} was started with other settings ({'; '.join(changed)}); "
                          "resuming would mix chunks: restore them, or use another output folder or run name")

    def detector_config(self, run: str, detector: str) -> str | None:
        """The stored configuration (canonical JSON) of ``detector`` in ``run``, or None."""
        row = self.conn.execute("SELECT config FROM detectors WHERE run = ? AND detector = ?", (run, detector)).fetchone()
        return None if row is None else row[0]

    def commit_chunk(self, run: str, detector: str, attack: str, params: str, chunk: int, rows: Iterable[Row]) -> bool:
        """Write ``rows`` and the chunk marker atomically. Returns False (writing nothing) when
        another process committed the same chunk meanwhile."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            if cur.execute("SELECT 1 FROM chunks WHERE run = ? AND detector = ? AND attack = ? AND params = ? "
                           "AND chunk = ?", (run, detector, attack, params, chunk)).fetchone():
                cur.execute("ROLLBACK")
                return False
            cur.executemany(
                f"INSERT INTO results ({', '.join(RESULT_COLUMNS)}) VALUES ({', '.join('?' * len(RESULT_COLUMNS))})",
                [(run, r.detector, r.attack, r.params, r.sample, int(r.label), r.generator, r.score_clean,
                  r.score_adv, r.l0, r.l2, r.linf, r.psnr, int(r.queries), r.seconds,
                  None if r.rejected is None else int(r.rejected)) for r in rows])
            cur.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", (run, detector, attack, params, chunk, time.time()))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return True

    def add_bad_sample(self, run: str, sample: str, reason: str) -> bool:
        """Record an image that could not be used; False when it was already recorded."""
        cur = self.conn.execute("INSERT OR IGNORE INTO bad_samples VALUES (?, ?, ?)", (run, sample, reason))
        return cur.rowcount == 1

    # -- reading ---------------------------------------------------------------------------
    def done_chunks(self, run: str) -> set[tuple[str, str, str, int]]:
        cur = self.conn.execute("SELECT detector, attack, params, chunk FROM chunks WHERE run = ?", (run,))
        return {(d, a, p, int(c)) for d, a, p, c in cur}

    def clean_scores(self, run: str, detector: str) -> dict[str, float]:
        cur = self.conn.execute("SELECT sample, score_clean FROM results WHERE run = ? AND detector = ? AND attack = 'clean'",
                                (run, detector))
        return {s: float(v) for s, v in cur}

    def rows(self, run: str | None = None) -> Iterator[dict[str, Any]]:
        q = f"SELECT {', '.join(RESULT_COLUMNS)} FROM results"
        args: tuple[Any, ...] = ()
        if run is not None:
            q += " WHERE run = ?"
            args = (run,)
        q += " ORDER BY detector, attack, params, sample"
        for r in self.conn.execute(q, args):
            yield dict(zip(RESULT_COLUMNS, r))

    def thresholds(self, run: str) -> dict[str, float]:
        return {d: float(t) for d, t in self.conn.execute("SELECT detector, threshold FROM detectors WHERE run = ?", (run,))}

    def bad_samples(self, run: str) -> dict[str, str]:
        return dict(self.conn.execute("SELECT sample, reason FROM bad_samples WHERE run = ?", (run,)).fetchall())

    def runs(self) -> list[str]:
        return [r for (r,) in self.conn.execute("SELECT run FROM runs ORDER BY created")]

    def counts(self, run: str) -> dict[tuple[str, str, str], int]:
        """Rows per (detector, attack, params) of ``run``."""
        cur = self.conn.execute("SELECT detector, attack, params, COUNT(*) FROM results WHERE run = ? "
                                "GROUP BY detector, attack, params", (run,))
        return {(d, a, p): int(c) for d, a, p, c in cur}

    def count(self, run: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM results WHERE run = ?", (run,)).fetchone()[0])
