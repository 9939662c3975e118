"""The layer order of docs/architecture.md, enforced: no module imports a higher layer, or a
different package of its own layer ("sideways"). Every import counts, also the lazy ones inside
functions and the ``TYPE_CHECKING`` ones."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fakebench"
DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

#: low to high; the units of one inner list share a layer and must not import each other
LAYERS: list[list[str]] = [
    ["_version"],
    ["errors"],
    ["io", "progress", "registry"],
    ["metrics"],
    ["data"],
    ["generators"],
    ["builtin"],
    ["forensics"],
    ["detectors"],
    ["train"],
    ["attacks"],
    ["defenses"],
    ["experiments"],
    ["runner"],
    ["report"],
    ["demo"],
    ["cli"],
    ["__init__", "__main__"],  # the package facade and `python -m fakebench`
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """``fakebench.attacks.gradient`` -> ``attacks``; ``fakebench`` -> ``__init__``."""
    parts = module.split(".")
    assert parts[0] == "fakebench", module
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path, root: Path = SRC) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path, root: Path = SRC) -> list[tuple[int, str]]:
    """(line, imported fakebench module) for every import statement in ``path``, at any depth."""
    mod = module_name(path, root)
    package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "fakebench"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "fakebench":
                continue
            if node.module is None or target == "fakebench":  # `from . import x`: x may be a module
                out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, target))
    return out


def violations(root: Path = SRC) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        src_unit = unit_of(module_name(path, root))
        for line, target in imports_of(path, root):
            dst_unit = unit_of(target) if target != "fakebench" else "__init__"
            if dst_unit not in LAYER_OF:  # `from . import __version__` style names of the facade
                dst_unit = "__init__"
            if dst_unit == src_unit:
                continue
            a, b = LAYER_OF[src_unit], LAYER_OF[dst_unit]
            if b > a:
                found.append(f"{path.relative_to(root.parent)}:{line}: {src_unit} (layer {a}) imports {target} "
                             f"(layer {b}): upward")
            elif b == a:
                found.append(f"{path.relative_to(root.parent)}:{line}: {src_unit} imports {target}: sideways")
    return found


def test_every_package_has_a_layer():
    units = {unit_of(module_name(p)) for p in SRC.rglob("*.py")}
    missing = sorted(units - set(LAYER_OF))
    assert not missing, f"place these in LAYERS and docs/architecture.md: {missing}"


def test_no_upward_or_sideways_imports():
    found = violations()
    assert not found, "layer violations:\n" + "\n".join(found)


def test_the_checker_catches_an_upward_lazy_import(tmp_path):
    """A throwaway tree: a lazy import of the runner inside a detectors function is caught."""
    root = tmp_path / "fakebench"
    (root / "detectors").mkdir(parents=True)
    (root / "runner").mkdir()
    for f in ("__init__.py", "detectors/__init__.py", "runner/__init__.py"):
        (root / f).write_text("")
    (root / "detectors" / "bad.py").write_text("def f():\n    from ..runner import evaluate\n    return evaluate\n")
    (root / "runner" / "ok.py").write_text("from ..detectors import bad\n")
    found = violations(root)
    assert len(found) == 1 and "detectors/bad.py:2" in found[0] and "upward" in found[0]


def test_the_document_lists_the_same_order():
    """docs/architecture.md's layer table names the units in the order the test enforces."""
    text = DOC.read_text()
    table = [ln for ln in text.splitlines() if ln.startswith("| ") and "`" in ln.split("|")[2]]
    order = [re.findall(r"`([a-z_]+)`", ln.split("|")[2]) for ln in table]
    flat = [u for row in order for u in row]
    expected = [u for units in LAYERS for u in units if u not in ("__init__", "__main__")]
    assert flat == expected, (flat, expected)


@pytest.mark.parametrize("verb_module", ["listing", "forensics"])
def test_cli_modules_import_no_torch_at_module_level(verb_module):
    """The torch-free verbs: their module and everything it imports at top level avoid torch."""
    import subprocess
    import sys

    code = (f"import sys; import fakebench.cli.{verb_module}, fakebench.cli; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
