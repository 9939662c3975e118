"""``fakebench attack``: 8-bit-exact PNGs with the same names, a CSV of scores and norms,
bad images skipped, nothing written outside --out."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from fakebench import attacks
from fakebench.cli import _common as attack_common
from fakebench.experiments import attack_folder as attack_cli
from fakebench.errors import ConfigError
from fakebench.io import load_image, save_png


pytestmark = pytest.mark.usefixtures("one_thread")


def _parser():
    from fakebench.cli import build_parser  # the real `fakebench` command line

    return build_parser()


def _folder(root, n=3, size=32, seed=0):
    g = np.random.default_rng(seed)
    paths = []
    for k in range(n):
        sub = "fake" if k % 2 == 0 else "real"
        paths.append(save_png(root / sub / f"img{k}.png", g.random((size, size, 3))))
    save_png(root / "other" / "wide.png", g.random((size, size + 8, 3)))  # another size
    (root / "fake" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    return paths


def test_parse_options():
    o = attack_common.parse_options(["eps=8/255", "steps=10", "random_start=true", "box=0,0,16,16", "mode=decoy",
                                  "strength=[0.1, 0.2]"])
    assert o == {"eps": pytest.approx(8 / 255), "steps": 10, "random_start": True, "box": [0, 0, 16, 16],
                 "mode": "decoy", "strength": [0.1, 0.2]}
    with pytest.raises(ConfigError):
        attack_common.parse_options(["eps"])


def test_attack_command_writes_exact_pngs_and_csv(tmp_path, tiny_detector, caplog):
    src = tmp_path / "in"
    _folder(src)
    ckpt = tiny_detector.save(tmp_path / "det")
    out = tmp_path / "out"
    args = _parser().parse_args(["attack", str(ckpt), "--attack", "pgd", "--in", str(src), "--out", str(out),
                                 "--opt", "eps=4/255", "--opt", "steps=3", "--opt", "direction=both"])
    assert args.func(args) == 0
    rows = {r["file"]: r for r in csv.DictReader(open(out / "attack.csv"))}
    assert set(rows) == {"fake/img0.png", "real/img1.png", "fake/img2.png", "other/wide.png", "fake/broken.png"}
    assert rows["fake/broken.png"]["status"].startswith("skipped:") and "broken.png" in rows["fake/broken.png"]["status"]
    assert "broken.png" in caplog.text
    assert rows["real/img1.png"]["label"] == "0" and rows["fake/img0.png"]["label"] == "1"
    # every written file is inside --out, with the input's relative name
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["fake/img0.png", "fake/img2.png", "other/wide.png", "real/img1.png"]
    assert not any(p.suffix == ".png" for p in tmp_path.iterdir())
    # the PNGs reload to exactly the attack's quantised output
    from fakebench import detectors

    det = detectors.load(ckpt)
    atk = attacks.create("pgd", eps=4 / 255, steps=3, direction="both")
    for name in ("fake/img0.png", "real/img1.png", "other/wide.png"):
        x = torch.from_numpy(load_image(src / name)).permute(2, 0, 1)[None]
        y = torch.tensor([int(rows[name]["label"])])
        adv = atk(det, x, y)
        saved = torch.from_numpy(load_image(out / name)).permute(2, 0, 1)[None]
        assert torch.equal(saved, torch.round(adv * 255) / 255)
        r = rows[name]
        assert r["status"] == "ok"
        assert float(r["linf"]) == pytest.approx(float((saved - x).abs().max()), abs=1e-6)
        assert 0 < float(r["linf"]) <= 4 / 255 + 1e-6
        assert float(r["psnr"]) > 30
        with torch.no_grad():
            assert float(r["score_after"]) == pytest.approx(float(det(saved)[0]), abs=1e-4)
        # pushed the way the attack wants: real up, synthetic down
        sign = 1 if r["label"] == "0" else -1
        assert sign * (float(r["score_after"]) - float(r["score_before"])) > 0


@pytest.mark.parametrize("name, opts", [("jpeg", ["quality=50"]), ("share", ["platform=telegram"])])
def test_degradation_attacks_run_from_the_command_line(tmp_path, tiny_detector, name, opts):
    """Deterministic attacks take no seed: the command must not pass one (it once crashed)."""
    src = tmp_path / "in"
    _folder(src, n=2)
    ckpt = tiny_detector.save(tmp_path / "det")
    out = tmp_path / "out"
    argv = ["attack", str(ckpt), "--attack", name, "--in", str(src), "--out", str(out)]
    for o in opts:
        argv += ["--opt", o]
    args = _parser().parse_args(argv)
    assert args.func(args) == 0
    rows = {r["file"]: r for r in csv.DictReader(open(out / "attack.csv"))}
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert len(ok) == 3  # two squares + the wide one; the broken file is skipped
    x = load_image(src / "fake" / "img0.png")
    y = load_image(out / "fake" / "img0.png")
    assert np.abs(x - y).max() > 1 / 255  # JPEG touched every image, real and fake
    assert float(rows["real/img1.png"]["linf"]) > 0


def test_attack_command_errors(tmp_path, tiny_detector):
    src = tmp_path / "in"
    _folder(src, n=1)
    with pytest.raises(ConfigError, match="--pretrained"):
        attack_common.resolve_detector("cnnspot")
    with pytest.raises(ConfigError, match="neither"):
        attack_common.resolve_detector(str(tmp_path / "missing"))
    atk = attacks.create("fgsm", eps=2 / 255)
    with pytest.raises(ConfigError, match="not found"):
        attack_cli.attack_folder(tiny_detector, atk, tmp_path / "nope", tmp_path / "out")


def test_output_never_leaves_out(tmp_path):
    from pathlib import Path

    taken: set = set()
    p = attack_cli.output_path(tmp_path / "o", Path("a/b.jpg"), taken)
    assert p == tmp_path / "o" / "a" / "b.png"
    assert attack_cli.output_path(tmp_path / "o", Path("a/b.png"), taken) == tmp_path / "o" / "a" / "b.png.png"
    with pytest.raises(ConfigError, match="outside"):
        attack_cli.output_path(tmp_path / "o", Path("../x.png"), taken)


def test_labels_come_from_a_dataset_folder(tmp_path, tiny_detector):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_dataset

    make_tiny_dataset(tmp_path / "data", n_per_class=2)
    rows = attack_cli.attack_folder(tiny_detector, attacks.create("fgsm", eps=2 / 255, direction="spoof"),
                                    tmp_path / "data", tmp_path / "out")
    by = {r["file"]: r for r in rows}
    assert by["real_000.png"]["label"] == 0 and by["fake_001.png"]["label"] == 1  # from manifest.csv
    assert by["real_000.png"]["attacked"] is True and by["fake_001.png"]["attacked"] is False
    assert float(by["fake_001.png"]["linf"]) == 0.0
