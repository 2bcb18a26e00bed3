"""Plotting and the run reader take arrays and files: importing them never loads the model stack."""

from __future__ import annotations

import subprocess
import sys

import pytest

MODEL_STACK = ("segment_anything", "sam2", "redundancy.models", "redundancy.score", "redundancy.pipeline")


@pytest.mark.parametrize("module", ["redundancy.viz", "redundancy.figures", "redundancy.rundir", "redundancy.gains"])
def test_module_does_not_import_the_model_stack(module):
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({MODEL_STACK!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"
