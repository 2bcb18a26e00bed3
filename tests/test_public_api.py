"""The README's "From Python" example runs as written, and `patch` installs a set on SAM and SAM2 models."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import redundancy
from redundancy.errors import ReplacementError
from redundancy.models import build_backend

from .conftest import ROOT


@pytest.mark.slow
def test_readme_from_python_example_runs(tmp_path, monkeypatch, capsys):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"## From Python.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(ROOT)
    code = code.replace('"runs/from-python"', repr(str(tmp_path / "run")))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "'baseline_score'" in out and (tmp_path / "run" / "manifest.json").is_file()


def test_readme_any_backbone_example_runs(monkeypatch, capsys):
    """The second "From Python" example (a timm model through `from_module`) runs as written; its patch edits the
    module it names, as the search did."""
    text = (ROOT / "README.md").read_text().split("## From Python")[1]
    code = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert "linear classifier" in capsys.readouterr().out
    session, model, pairs = scope["session"], scope["model"], scope["result"].best_pairs or [(0, 8)]
    assert session.backend.name == "module:my-resnet" and session.backend.anatomy.where.module == "layer3"
    image = scope["image"][None]
    seen = []
    hook = model.layer4.register_forward_pre_hook(lambda m, args: seen.append(args[0]))  # what layer3 passes on
    with torch.no_grad():
        model(image)
        with redundancy.patch(model, pairs):
            model(image)
    hook.remove()
    (i, j), *_ = pairs
    assert torch.equal(seen[1][:, i], seen[0][:, j])


@pytest.mark.parametrize("name", ["sam_tiny", "sam2_tiny"])
def test_patch_changes_the_encoder_output_and_undoes(name):
    backend = build_backend(name, random_init=True, seed=0, device="cpu", progress=False)
    image = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    before = backend.encode([image])["features"]
    handle = redundancy.patch(backend.model, [(3, 7)])
    after = backend.encode([image])["features"]
    assert torch.equal(after[:, 3], before[:, 7]) and torch.equal(after[:, 8:], before[:, 8:])
    handle.remove()
    assert torch.equal(backend.encode([image])["features"], before)


def test_patch_refuses_an_unknown_model():
    with pytest.raises(ReplacementError, match="patch\\(\\) knows SAM"):
        redundancy.patch(torch.nn.Linear(2, 2), [(0, 1)])


def _anchor(title: str) -> str:
    """A heading's anchor as GitHub and the Hub write it: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def test_readme_opens_with_what_the_tool_is_and_a_contents_list_of_every_section():
    text = (ROOT / "README.md").read_text()
    body = text.split("\n---\n", 1)[1]  # after the Space's front matter
    intro = body.split("**Contents**")[0]
    assert "zero" in intro and "trained parameters" in intro and len(intro.strip().splitlines()) <= 10
    contents = re.search(r"\*\*Contents\*\*:(.*?)\n\n", body, re.S).group(1)
    linked = re.findall(r"\]\(#([^)]+)\)", contents)
    sections = [_anchor(t) for t in re.findall(r"^## (.+)$", body, re.M)]
    assert linked == sections  # every section, in order, each link to an anchor that exists
