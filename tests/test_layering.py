"""The architecture in the folders: each folder is a layer of the pipeline, nothing imports a layer above its own,
there is no import cycle, and plotting and the run reader never load the model stack."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "redundancy"
# bottom to top: a module may import its own layer and the ones before it, never one after it
LAYERS = (
    ("errors", "threads", "devices", "registry", "io", "bundled", "logs", "hub", "replace", "__init__"),
    ("data",),
    ("tasks",),
    ("models",),
    ("engine",),
    ("runs",),
    ("training",),
    ("report",),
    ("cli",),
    ("interactive",),
    ("ui",),
    ("__main__",),
)
RANK = {name: k for k, names in enumerate(LAYERS) for name in names}
MODEL_STACK = ("segment_anything", "sam2", "redundancy.models", "redundancy.engine")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    """Whether a dotted name is a module or package of this repository (`from . import sam` names one)."""
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def _imports(path: Path) -> set[str]:
    """Every redundancy module `path` imports, at any depth (function-level imports too)."""
    module, package = _module(path), _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("redundancy")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if base.startswith("redundancy"):
                modules = {f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}")}
                found |= modules if len(modules) == len(node.names) else {base, *modules}  # `from . import x`
    found.discard(module)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    return RANK[parts[1] if len(parts) > 1 else "__init__"]


SOURCES = sorted(PACKAGE.rglob("*.py"))
GRAPH = {_module(p): _imports(p) for p in SOURCES}


def test_every_folder_has_a_layer():
    tops = {p.relative_to(PACKAGE).parts[0].removesuffix(".py") for p in SOURCES}
    assert tops <= set(RANK), sorted(tops - set(RANK))


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_nothing_imports_a_layer_above_its_own(module):
    above = sorted(t for t in GRAPH[module] if _layer(t) > _layer(module))
    assert not above, f"{module} imports {above}"


TESTS = ROOT / "tests"
LAYER_TESTS = sorted(p for p in TESTS.glob("*/*.py") if p.parent.name in RANK)  # tests/<layer>/: that layer's tests


@pytest.mark.parametrize("path", LAYER_TESTS, ids=lambda p: str(p.relative_to(TESTS)))
def test_a_layers_tests_import_no_layer_above_it(path):
    """A layer's tests never go through the app's layers above it (the workspace, the tabs): a test that needs one
    lives with it (tests/interactive/, tests/ui/). The CLI may drive a lower layer's test end to end."""
    own, app = RANK[path.parent.name], RANK["interactive"]
    above = sorted(t for t in _imports(path) if t.startswith("redundancy.") and _layer(t) > own and _layer(t) >= app)
    assert not above, f"{path.relative_to(ROOT)} imports {above}"


def test_there_is_no_import_cycle():
    """Tarjan's strongly connected components over the module graph: every one is a single module."""
    index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]
    edges = defaultdict(set, {m: {t for t in ts if t in GRAPH} for m, ts in GRAPH.items()})

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                cycles.append(sorted(part))

    for v in list(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles


@pytest.mark.parametrize(
    "module",
    ["redundancy.report.viz", "redundancy.report.figures", "redundancy.runs.rundir", "redundancy.report.gains",
     "redundancy.tasks"],
)  # fmt: skip
def test_module_does_not_import_the_model_stack(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({MODEL_STACK!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"


def test_no_module_is_over_five_hundred_lines():
    long = {_module(p): n for p in SOURCES if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long
