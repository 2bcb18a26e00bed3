"""The plug-in contract: a family, a task or a search mode is named only by its own module.

Code elsewhere reaches a plug-in through its registry (or a constant its module exports), never by spelling its
name, so that adding one is adding one file. The paper report, which names the paper's models and tasks, is
allowed; so are the few places listed in `KNOWN` below, each with its reason.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import redundancy.engine.screening  # noqa: F401  (registers the modes)
import redundancy.models  # noqa: F401  (registers the families)
from redundancy.data.layouts import LAYOUTS
from redundancy.engine.screening.base import MODES
from redundancy.models._registry import FAMILIES
from redundancy.tasks.base import TASKS

PACKAGE = Path(redundancy.models.__file__).resolve().parents[1]
ALLOWED_FOLDERS = ("report/paper/",)  # the paper's own tables and figures name its models and tasks
KNOWN = {  # (file, literal): why the literal is not a reference to the plug-in
    ("models/dinov2.py", "depth"): "timm's ViT `depth` argument (a block count), not the task",
    ("data/synthetic.py", "classify"): "the bundled synthetic domains are made for that task (assets/task_domains)",
    ("data/synthetic.py", "depth"): "the bundled synthetic rooms are depth data (assets/task_domains/depth)",
    ("ui/tabs/data.py", "classify"): "the bundled classification sample is offered by its task",
    ("ui/tabs/data.py", "depth"): "the bundled depth sample is offered by its task",
    ("training/vit_demo.py", "depth"): "the DINOv2 demo model is trained and checked on the depth probe",
}


def owners() -> dict[str, str]:
    """Every registered family, task and mode name -> the file (relative to the package) that defines it."""
    out = {}
    for registry in (FAMILIES, TASKS, MODES):
        for name, item in registry.items():
            path = Path(inspect.getfile(type(item))).resolve().relative_to(PACKAGE)
            out[name] = path.as_posix()
    return out


def literals(path: Path) -> list[tuple[str, int]]:
    """Every string constant in a module with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [(n.value, n.lineno) for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def leaks() -> list[str]:
    """'file:line name' for each plug-in name spelled outside its own module (and the allowed places)."""
    named = owners()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(ALLOWED_FOLDERS):
            continue
        for value, line in literals(path):
            if value in named and named[value] != rel and (rel, value) not in KNOWN:
                found.append(f"{rel}:{line} '{value}' (owned by {named[value]})")
    return found


def test_no_plugin_name_is_spelled_outside_its_own_module():
    assert leaks() == [], "reach these through their registry or their module's constant:\n" + "\n".join(leaks())


def test_the_contract_test_sees_a_leak(tmp_path, monkeypatch):
    """The scan is not vacuous: a module that spells a task's name is caught."""
    task = next(iter(TASKS))
    (tmp_path / "leaky.py").write_text(f"DEFAULT = {task!r}\n")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path)
    monkeypatch.setattr(f"{__name__}.owners", lambda: {task: "tasks/its_own.py"})
    assert leaks() == [f"leaky.py:1 '{task}' (owned by tasks/its_own.py)"]


def test_every_known_exception_is_still_needed():
    """An entry of KNOWN whose literal is gone is removed, so that the list only ever shrinks."""
    stale = [key for key in KNOWN if key[1] not in {v for v, _ in literals(PACKAGE / key[0])}]
    assert stale == []


@pytest.mark.parametrize("task", list(TASKS))
def test_each_task_registers_the_layouts_it_serves(task):
    """A task's data layouts are registered (by its own module) and every labelled layout serves one task."""
    for layout in TASKS[task].layouts:
        assert layout in LAYOUTS
    for name, layout in LAYOUTS.items():
        if layout.labelled:
            assert sum(name in t.layouts for t in TASKS.values()) == 1, name
