"""Property-based tests (hypothesis): hostile configs and hostile image bytes give either a
valid result or ONE line naming the field / file, never a traceback.

Each property runs 200 examples in the normal suite; the ``slow`` variants run 600. Configs
are checked up to the start of work (parse + build every detector and attack, which is where
every option is validated); no example trains or evaluates a model.
"""

from __future__ import annotations

import copy
import io as pyio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_tiny_dataset, shared_dir
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from fakebench.data import Sample
from fakebench.data.pipeline import iter_batches
from fakebench.errors import FakebenchError, ImageLoadError
from fakebench.io import load_image
from fakebench.runner import prepare
from fakebench.runner.config import parse_experiment

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
MORE = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


# -- configs -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("props")
    make_tiny_dataset(root / "data", n_per_class=10)  # 4 test images
    return root


def base_config(workdir: Path) -> dict[str, Any]:
    """A valid config exercising every section of the schema."""
    return {
        "run": "p", "output": "out", "seed": 0, "batch_size": 4, "device": "cpu",
        "dataset": {"path": str(workdir / "data" / "manifest.csv"), "split": "test", "limit": 4,
                    "generators": ["real", "rep2x"], "max_pixels": 100000},
        "detectors": [{"name": "tiny", "detector": "cnnspot", "options": {"arch": "resnet10", "width": 8},
                       "optional": False}],
        "attacks": [
            {"attack": "jpeg", "options": {"quality": 75, "subsampling": "4:2:0"}},
            {"name": "pgd", "attack": "pgd", "options": {"direction": "evade", "steps": 2, "eps": "4/255"},
             "grid": {"step_size": ["1/255", "2/255"]}},
            {"attack": "blur", "options": {"sigma": 1.0}},
            {"attack": "resize", "options": {"scale": 0.5, "restore": True}},
            {"attack": "share", "options": {"platform": "facebook", "quality": 80}},
            {"attack": "apgd", "options": {"eps": "2/255", "steps": 3, "rho": 0.75}},
            {"attack": "square", "options": {"eps": "2/255", "n_queries": 5, "p_init": 0.1}},
            {"attack": "di-fgsm", "options": {"eps": "2/255", "steps": 2}},
            {"attack": "r-fgsm", "options": {"eps": "4/255", "alpha": "1/255"}},
            {"attack": "hopskipjump", "options": {"max_queries": 10}},
            {"attack": "cf-lsb", "options": {}},
            {"attack": "uap", "options": {"eps": "2/255"}},
        ],
    }


def _paths(obj: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key / index path inside ``obj`` (inner nodes and leaves)."""
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, prefix + (i,))
    return out


def _is_detector_size(path: tuple) -> bool:
    """Detector constructor options: numbers there would build (and allocate) a model of that
    size, so they get wrong types only (a huge width is a valid, enormous model)."""
    return len(path) >= 3 and path[0] == "detectors" and path[2] == "options"


BAD_VALUES = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10 ** 20), max_value=10 ** 20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["8/0", "0/0", "1/3", "-4/255", "1e400", "nan", "-inf", "", " ", "\x00", "a" * 300,
                     "../../etc/passwd", "/dev/null", "~", "cuda:99", "tpu9"]),
    st.text(max_size=12),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(min_value=-5, max_value=5), max_size=2),
)
TYPE_ONLY = st.one_of(st.none(), st.booleans(), st.text(max_size=12), st.lists(st.integers(0, 3), max_size=2),
                      st.dictionaries(st.text(max_size=4), st.integers(0, 3), max_size=2))


@st.composite
def mutated_configs(draw, workdir: Path) -> tuple[dict[str, Any], list[tuple]]:
    cfg = base_config(workdir)
    touched = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(cfg)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = cfg
        for k in path[:-1]:
            parent = parent[k]
        action = draw(st.sampled_from(["set", "set", "set", "delete", "unknown_key"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "unknown_key" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(BAD_VALUES)
        else:
            parent[path[-1]] = draw(TYPE_ONLY if _is_detector_size(path) else BAD_VALUES)
        touched.append(path)
    return cfg, touched


FIELDS = ("run", "output", "seed", "batch_size", "device", "dataset", "detectors", "attacks", "exp.yaml",
          "unknown key")


def _check_config(cfg: dict[str, Any], workdir: Path) -> None:
    try:
        exp = parse_experiment(copy.deepcopy(cfg), workdir, default_run="exp", source="exp.yaml")
        prepare(exp)
        event("valid up to the start of work")
    except FakebenchError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
        assert any(f in msg for f in FIELDS), f"no field named in {msg!r}"
        event("one-line error")
    # anything else (TypeError, ValueError, ZeroDivisionError, ...) fails the property


def test_base_config_is_valid(workdir):
    prep = prepare(parse_experiment(base_config(workdir), workdir, source="exp.yaml"))
    assert len(prep.samples) == 4 and len(prep.attacks) == 13  # pgd's grid gives two


@FAST
@given(data=st.data())
def test_mutated_configs_are_valid_or_one_line(workdir, data):
    cfg, _ = data.draw(mutated_configs(workdir))
    _check_config(cfg, workdir)


@pytest.mark.slow
@MORE
@given(data=st.data())
def test_mutated_configs_are_valid_or_one_line_more(workdir, data):
    cfg, _ = data.draw(mutated_configs(workdir))
    _check_config(cfg, workdir)


# -- image bytes -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    """Small real PNG and JPEG files: a 48x40 crop of a Kodak photo when the shared data is
    there, else a seeded noise image."""
    sd = shared_dir()
    kodak = sorted((sd / "data" / "kodak").glob("*.png")) if sd else []
    if kodak:
        with Image.open(kodak[0]) as im:
            img = im.convert("RGB").crop((100, 100, 148, 140))
    else:
        img = Image.fromarray((np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8))
    out = {}
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 90}), ("GIF", {}), ("WEBP", {"quality": 80})):
        buf = pyio.BytesIO()
        img.save(buf, format=fmt, **kw)
        out[fmt] = buf.getvalue()
    return out


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bytes")


@st.composite
def hostile_bytes(draw, seeds: dict[str, bytes]) -> bytes:
    kind = draw(st.sampled_from(["random", "truncated", "flipped", "spliced"]))
    if kind == "random":
        return draw(st.binary(max_size=4096))
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    if kind == "truncated":
        return bytes(data[: draw(st.integers(min_value=0, max_value=len(data)))])
    if kind == "flipped":
        for _ in range(draw(st.integers(min_value=1, max_value=8))):
            pos = draw(st.integers(min_value=0, max_value=len(data) - 1))
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        return bytes(data)
    cut = draw(st.integers(min_value=0, max_value=len(data)))
    return bytes(data[:cut]) + draw(st.binary(max_size=512))


def _check_bytes(blob: bytes, path: Path) -> None:
    path.write_bytes(blob)
    try:
        arr = load_image(path)
    except ImageLoadError as exc:
        msg = str(exc)
        assert msg.startswith(str(path)) and "\n" not in msg, msg
        event("one-line skip")
    else:
        event("decoded")
        assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.float32
        assert np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1
    # the pipeline: one image, or one skip line naming the file; never an exception
    batches = list(iter_batches([Sample(str(path), 0, "real", "s")], 4))
    assert sum(len(b[0]) for b in batches) + sum(len(b[3]) for b in batches) == 1


@FAST
@given(data=st.data())
def test_hostile_image_bytes_decode_or_skip_in_one_line(seeds, scratch, data):
    ext = data.draw(st.sampled_from([".png", ".jpg", ".gif", ".webp"]))
    _check_bytes(data.draw(hostile_bytes(seeds)), scratch / f"x{ext}")


@pytest.mark.slow
@MORE
@given(data=st.data())
def test_hostile_image_bytes_decode_or_skip_in_one_line_more(seeds, scratch, data):
    ext = data.draw(st.sampled_from([".png", ".jpg", ".gif", ".webp"]))
    _check_bytes(data.draw(hostile_bytes(seeds)), scratch / f"x{ext}")
