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
    queries INTEGER, seconds REAL, rejected INTEGER, share TEXT,
    PRIMARY KEY (run, detector, attack, params, sample));
CREATE TABLE IF NOT EXISTS chunks (
    run TEXT NOT NULL, detector TEXT NOT NULL, attack TEXT NOT NULL, params TEXT NOT NULL,
    chunk INTEGER NOT NULL, finished REAL NOT NULL,
    PRIMARY KEY (run, detector, attack, params, chunk));
CREATE TABLE IF NOT EXISTS environment (
    run TEXT PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS share_pairs (
    run TEXT NOT NULL, params TEXT NOT NULL, sample TEXT NOT NULL, copy TEXT NOT NULL,
    psnr_sim REAL, psnr_orig REAL, size_match INTEGER, PRIMARY KEY (run, params, sample));
CREATE TABLE IF NOT EXISTS bad_samples (
    run TEXT NOT NULL, sample TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (run, sample));
CREATE TABLE IF NOT EXISTS layout (
    run TEXT PRIMARY KEY, layout TEXT NOT NULL);
"""

RESULT_COLUMNS = ("run", "detector", "attack", "params", "sample", "label", "generator", "score_clean",
                  "score_adv", "l0", "l2", "linf", "psnr", "queries", "seconds", "rejected", "share")


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
    #: how the sample was shared (TrueFake's PreSocial / Facebook / Telegram / Twitter); "" unknown
    share: str = ""


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
        if "share" not in cols:  # a store written before shares were recorded
            self.conn.execute("ALTER TABLE results ADD COLUMN share TEXT")

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
                  None if r.rejected is None else int(r.rejected), r.share) for r in rows])
            cur.execute("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)", (run, detector, attack, params, chunk, time.time()))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return True

    def set_environment(self, run: str, info: dict[str, Any]) -> None:
        """Versions and device of the process that (last) worked on ``run``, for reproduction."""
        self.conn.execute("INSERT OR REPLACE INTO environment VALUES (?, ?)", (run, canonical(info)))

    def add_share_pairs(self, run: str, params: str, pairs: Iterable[tuple[str, str, float, float, bool]]) -> None:
        """A ``share`` attack's images compared with the real shared copies:
        (sample, copy sample, PSNR simulated vs copy, PSNR original vs copy, same size)."""
        self.conn.executemany("INSERT OR IGNORE INTO share_pairs VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [(run, params, a, b, ps, po, int(m)) for a, b, ps, po, m in pairs])

    def share_pairs(self, run: str) -> list[dict[str, Any]]:
        cols = ("params", "sample", "copy", "psnr_sim", "psnr_orig", "size_match")
        cur = self.conn.execute(f"SELECT {', '.join(cols)} FROM share_pairs WHERE run = ? ORDER BY params, sample",
                                (run,))
        return [dict(zip(cols, r)) for r in cur]

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

    def config(self, run: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT config FROM runs WHERE run = ?", (run,)).fetchone()
        return json.loads(row[0]) if row else {}

    def environment(self, run: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT info FROM environment WHERE run = ?", (run,)).fetchone()
        return json.loads(row[0]) if row else {}

    def runs(self) -> list[str]:
        return [r for (r,) in self.conn.execute("SELECT run FROM runs ORDER BY created")]

    def counts(self, run: str) -> dict[tuple[str, str, str], int]:
        """Rows per (detector, attack, params) of ``run``."""
        cur = self.conn.execute("SELECT detector, attack, params, COUNT(*) FROM results WHERE run = ? "
                                "GROUP BY detector, attack, params", (run,))
        return {(d, a, p): int(c) for d, a, p, c in cur}

    def count(self, run: str) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM results WHERE run = ?", (run,)).fetchone()[0])

    # -- merging ---------------------------------------------------------------------------
    def merge_from(self, source: str | Path) -> int:
        """Copy every run, detector, result, finished chunk and bad sample of the store file
        ``source`` (a per-rank shard) into this one, in one transaction; rows already here are
        kept (shards of one run hold disjoint chunks, and a repeated merge adds nothing).
        Returns the number of result rows added.

        Raises:
            DataError: ``source`` is not a results store, or holds a run of the same name with
                a different config (two different experiments would mix).
        """
        from ..errors import DataError

        src = Path(source)
        if not src.is_file():
            raise DataError(f"{src}: shard store not found")
        self.conn.execute("ATTACH DATABASE ? AS shard", (str(src),))
        try:
            tables = {r for (r,) in self.conn.execute("SELECT name FROM shard.sqlite_master WHERE type = 'table'")}
            if not {"runs", "results", "chunks"} <= tables:
                raise DataError(f"{src}: not a fakebench results store (tables: {sorted(tables) or 'none'})")
            clash = self.conn.execute("SELECT s.run FROM shard.runs s JOIN main.runs m "
                                      "ON s.run = m.run WHERE s.config != m.config").fetchone()
            if clash:
                raise DataError(f"{src}: run {clash[0]!r} has another config than the one already in {self.path}; "
                                "shards of different experiments cannot be merged")
            before = self.conn.execute("SELECT COUNT(*) FROM main.results").fetchone()[0]
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for table in ("runs", "detectors", "results", "chunks", "share_pairs", "bad_samples", "environment", "layout"):
                    if table not in tables:
                        continue
                    own = [r[1] for r in self.conn.execute(f"PRAGMA main.table_info({table})")]
                    theirs = {r[1] for r in self.conn.execute(f"PRAGMA shard.table_info({table})")}
                    cols = ", ".join(c for c in own if c in theirs)
                    cur.execute(f"INSERT OR IGNORE INTO main.{table} ({cols}) SELECT {cols} FROM shard.{table}")
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return int(self.conn.execute("SELECT COUNT(*) FROM main.results").fetchone()[0] - before)
        finally:
            self.conn.execute("DETACH DATABASE shard")
