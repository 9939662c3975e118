"""torchrun: per-rank shard stores merged by rank 0 (one machine) or by ``fakebench merge``
(two nodes with their own disks) equal a single-process run row for row. gloo on CPU."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, make_tiny_dataset

from fakebench import detectors
from fakebench.cli import main
from fakebench.errors import DataError
from fakebench.runner import Store

pytestmark = pytest.mark.usefixtures("one_thread")

COLUMNS = ("run, detector, attack, params, sample, label, generator, score_clean, score_adv, l0, l2, linf, psnr, "
           "queries, rejected")  # every column but the timing


def rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    out = con.execute(f"SELECT {COLUMNS} FROM results ORDER BY detector, attack, params, sample").fetchall()
    con.close()
    return out


def setup_experiment(tmp_path: Path) -> Path:
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=6, size=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.save(tmp_path / "ck")
    cfg = {"run": "d", "output": "out", "seed": 5, "batch_size": 4, "dataset": {"path": str(manifest)},
           "detectors": [{"name": "tiny", "checkpoint": str(tmp_path / "ck")}],
           "attacks": [{"attack": "jpeg", "options": {"quality": 70}},
                       {"attack": "pgd", "options": {"direction": "evade", "steps": 2, "eps": "2/255",
                                                    "random_start": True}}]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def torchrun(args: list[str], **popen: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "FAKEBENCH_DIST_TIMEOUT": "120"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def finish(p: subprocess.Popen, timeout: float = 240) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"torchrun timed out:\n{out[-3000:]}") from None
    assert p.returncode == 0, out[-3000:]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The reference: one process, one store."""
    tmp = tmp_path_factory.mktemp("dist")
    cfg = setup_experiment(tmp)
    assert main(["evaluate", "--config", str(cfg), "--output", str(tmp / "single"), "--no-progress"]) == 0
    return cfg, rows(tmp / "single" / "results.sqlite")


@pytest.mark.slow  # two fresh processes importing torch (64 s measured on the shared 2-core machine)
def test_torchrun_two_ranks_shards_merged_equal_single_process(single, tmp_path):
    cfg, want = single
    out = tmp_path / "two"
    finish(torchrun(["--standalone", "--nproc-per-node", "2", "-m", "fakebench", "evaluate", "--config", str(cfg),
                     "--output", str(out), "--no-progress"]))
    assert sorted(p.name for p in (out / "shards").iterdir() if p.suffix == ".sqlite") == ["rank00000.sqlite",
                                                                                           "rank00001.sqlite"]
    shard0, shard1 = rows(out / "shards" / "rank00000.sqlite"), rows(out / "shards" / "rank00001.sqlite")
    assert shard0 and shard1 and not set(shard0) & set(shard1)  # disjoint chunks
    assert len(want) == 12 * 3
    assert rows(out / "results.sqlite") == want  # merged by rank 0 after the barrier
    assert (out / "report.md").is_file()


@pytest.mark.slow
def test_two_nodes_with_separate_disks_merge_by_hand(single, tmp_path):
    cfg, want = single
    port = str(free_port())
    disks = [tmp_path / "node0", tmp_path / "node1"]
    procs = [torchrun(["--nnodes", "2", "--node-rank", str(i), "--nproc-per-node", "1", "--master-addr", "127.0.0.1",
                       "--master-port", port, "-m", "fakebench", "evaluate", "--config", str(cfg), "--output",
                       str(disks[i]), "--no-progress"]) for i in range(2)]
    logs = [finish(p) for p in procs]
    assert [sorted(p.name for p in (d / "shards").glob("*.sqlite")) for d in disks] == [["rank00000.sqlite"],
                                                                                       ["rank00001.sqlite"]]
    assert not (disks[0] / "results.sqlite").exists()  # rank 0 cannot see rank 1's disk: no partial merge
    assert "fakebench merge" in logs[0]
    merged = tmp_path / "merged" / "results.sqlite"
    assert main(["merge", str(disks[0]), str(disks[1]), "--out", str(merged), "--report", str(tmp_path / "rep")]) == 0
    assert rows(merged) == want
    assert (tmp_path / "rep" / "report.md").is_file()
    # merging again adds nothing; a shard of another experiment with the same run name is refused
    with Store(merged) as st:
        assert st.merge_from(disks[1] / "shards" / "rank00001.sqlite") == 0
    other = tmp_path / "other.sqlite"
    with Store(other) as st:
        st.ensure_run("d", {"another": "config"})
    with Store(merged) as st, pytest.raises(DataError, match="another config"):
        st.merge_from(other)


def test_a_rank_resumes_its_own_shard(single, tmp_path, monkeypatch):
    """Rank 1 of 2 (simulated in this process) writes chunks 1, 3, ... to its shard; a chunk lost
    from the shard is redone on the next run and nothing else is."""
    import fakebench.runner.run as run_mod
    from fakebench.runner import evaluate, load_experiment

    cfg, want = single
    monkeypatch.setattr(run_mod, "dist_info", lambda: (1, 2, 1))
    monkeypatch.setattr(run_mod, "init_process_group", lambda backend: False)
    monkeypatch.setattr(run_mod, "_finish_distributed", lambda output, rank, world, created, shard: shard)
    exp = load_experiment(cfg)
    exp.output = tmp_path / "r1"
    shard = evaluate(exp, progress=False)
    assert shard == tmp_path / "r1" / "shards" / "rank00001.sqlite"
    con = sqlite3.connect(shard)
    assert sorted({c for (c,) in con.execute("SELECT chunk FROM chunks")}) == [1]  # 12 samples / 4 per chunk
    first = rows(shard)
    assert set(first) <= set(want) and len(first) == 4 * 3
    con.execute("DELETE FROM chunks WHERE attack = 'jpeg'")
    con.execute("DELETE FROM results WHERE attack = 'jpeg'")
    con.commit()
    con.close()
    evaluate(exp, progress=False)
    assert rows(shard) == first
