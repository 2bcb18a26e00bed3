"""The bad-input catalogue at the report's edges (issue #32): figures over several runs, figure formats, damaged
run arrays, fine-tune files that change nothing, cross-validation without folds, `--layer` out of range, and a
dataset nested past the path limit.

Each case names the one message it must get. Through the CLI: exit code 2 and one `error:` line, never a
traceback. Cases that exist in the app too (a fine-tune file upload, cv selection in the Search tab) go through
its handler as well and must show the same message, on one line, without server paths.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from redundancy.cli import main
from redundancy.engine import SearchSettings, Session, SessionConfig, run_search
from redundancy.errors import ConfigError, RunError
from redundancy.report.figures import render
from redundancy.ui.tabs import search

from .conftest import SAMPLE, load_app, write_pair
from .test_bad_inputs_both import Input, _app_load, _cli_argv, assert_one_error_line

SMALL = ["--model", "sam_tiny", "--random-init", "--sources", "0-3", "--targets", "0-3", "--top-n", "2"]


@dataclass(frozen=True)
class Runs:
    """Two finished runs of sam_tiny on the sample data: at the encoder output (256 channels) and at block 0."""

    output: Path
    block0: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("edge-runs")
    for name, extra in (("output", []), ("block0", ["--layer", "0"])):
        argv = ["search", *SMALL, "--data", str(SAMPLE), "--search-images", "2", "--heldout-images", "1", *extra]
        assert main([*argv, "--out", str(root / name)]) == 0
    return Runs(root / "output", root / "block0")


def _copy(run: Path, tmp: Path) -> Path:
    shutil.copytree(run, tmp / run.name)
    return tmp / run.name


def _figures(tmp: Path, *runs: Path, fmt: str = "png", extra: tuple[str, ...] = ()) -> list[str]:
    return ["figures", *map(str, runs), "--out", str(tmp / "figs"), "--format", fmt, *extra]


def _damaged(tmp: Path, run: Path, name: str, write: Callable[[Path], object]) -> list[str]:
    """figures --unverified of a copy of `run` whose file `name` was rewritten by `write`."""
    copy = _copy(run, tmp)
    write(copy / name)
    return _figures(tmp, copy, extra=("--unverified",))


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _finetune(tmp: Path, state: dict) -> Path:
    path = tmp / "ft" / "finetune.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _base_decoder(tiny) -> dict:
    """The base model's own decoder tensors: a 'fine-tune' that changes nothing."""
    return {k: v.clone() for k, v in tiny.model.state_dict().items() if k.startswith("mask_decoder.")}


def _zero_lora(tiny) -> dict:
    """LoRA factors whose product is zero (B all zeros, as adapters start before training): nothing merges."""
    key = "mask_decoder.iou_prediction_head.layers.0"
    return {f"{key}.lora_A": torch.randn(4, 256), f"{key}.lora_B": torch.zeros(256, 4)}


def _one_object(tmp: Path) -> Path:
    """A PerSeg dataset of one object with three images: any search set is one group, however many images."""
    root = tmp / "one-object"
    for k in range(3):
        for sub, mask in (("Images", False), ("Annotations", True)):
            folder = root / sub / "cat"
            folder.mkdir(parents=True, exist_ok=True)
            arr = np.zeros((30, 40), np.uint8) if mask else np.full((30, 40, 3), 60 + 40 * k, np.uint8)
            if mask:
                arr[5:20, 5:20] = 255
            Image.fromarray(arr).save(folder / f"{k}.png")
    return root


PATH_MAX = 4096


def _deep_dataset(tmp: Path) -> Path:
    """images/ + masks/ under folders nested so deep that their absolute paths pass PATH_MAX (built through
    directory descriptors: no path that long is ever spelled)."""
    root = tmp / "deep"
    write_pair(root / "images-src", "im0")  # real files to copy down
    pngs = {sub: (root / "images-src" / sub / "im0.png").read_bytes() for sub in ("images", "masks")}
    shutil.rmtree(root / "images-src")
    name, depth = "d" * 200, PATH_MAX // 201 + 1
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(name, dir_fd=fd)
            fd, parent = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), fd
            os.close(parent)
        for sub, data in pngs.items():
            os.mkdir(sub, dir_fd=fd)
            sub_fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            for stem in ("a", "b"):
                out = os.open(f"{stem}.png", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=sub_fd)
                os.write(out, data)
                os.close(out)
            os.close(sub_fd)
    finally:
        os.close(fd)
    assert len(str(root)) + depth * (len(name) + 1) > PATH_MAX
    return root


def _app_finetune(state: Callable[[Path, object], dict]) -> Callable[[Path, Runs, object], str]:
    """The Data tab's Load with a fine-tune file built from (tmp, tiny): the message it shows."""

    def shown(tmp: Path, runs: Runs, tiny) -> str:
        with pytest.raises(gr.Error) as caught:
            _app_load(Input(finetuned=_finetune(tmp, state(tmp, tiny))))
        return caught.value.message

    return shown


def _app_search(select: str, data: Path | None = None) -> Callable[[Path, Runs, object], str]:
    """The Search tab's Start with `select` on a session of one search image: the one warning it shows."""

    def shown(tmp: Path, runs: Runs, tiny) -> str:
        ws = load_app(n_search=1)[0]
        try:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                frames = list(search.search(ws, 1, "miou", "0,1", "0,1", 0, select=select))
            assert frames == [[gr.update()] * len(search.SEARCH_OUTPUTS)]  # nothing started, nothing changed
            assert ws.job is None
        finally:
            ws.close()
        messages = [str(w.message) for w in seen if issubclass(w.category, UserWarning)]
        assert len(messages) == 1, messages
        return messages[0]

    return shown


def _search(tmp: Path, *extra: str) -> list[str]:
    """A small search on the sample data; `extra` flags come last (and win)."""
    return ["search", *SMALL, "--data", str(SAMPLE), "--search-images", "2", "--out", str(tmp / "o"), *extra]


def _cv_argv(tmp: Path, select: str, images: int = 1, data: Path = SAMPLE) -> list[str]:
    return ["search", *SMALL, "--data", str(data), "--search-images", str(images), "--heldout-images", "0",
            "--select", select, "--out", str(tmp / "cv")]  # fmt: skip


@dataclass(frozen=True)
class Case:
    cli: Callable[[Path, Runs, object], list[str]]  # (tmp, runs, tiny) -> argv
    message: str  # a regular expression the one error line matches
    app: Callable[[Path, Runs, object], str] | None = None  # the same input through the app: its message


FIGURES = "figures"
CASES: dict[str, Case] = {
    # figures over several runs (consistency)
    "consistency asked of runs at different blocks": Case(
        lambda t, r, m: _figures(t, r.output, r.block0, extra=("--consistency",)),
        r"no consistency figure: the runs are of different models, channel counts or encoder blocks "
        r"\(sam_tiny, 256 channels, encoder output; sam_tiny, 96 channels, block 0\)",
    ),
    "consistency asked of one run": Case(
        lambda t, r, m: _figures(t, r.output, extra=("--consistency",)),
        "no consistency figure: it needs two or more runs",
    ),
    # figure formats
    "figure format empty": Case(lambda t, r, m: _figures(t, r.output, fmt=""), "no figure format given; use one"),
    "figure format only commas": Case(lambda t, r, m: _figures(t, r.output, fmt=" , ,"), "no figure format given"),
    "figure format unknown": Case(lambda t, r, m: _figures(t, r.output, fmt="png,gif"), "unknown figure format 'gif'"),
    # damaged run arrays (--unverified skips the manifest check that would name them)
    "truncated pair_scores.npy": Case(
        lambda t, r, m: _damaged(t, r.output, "pair_scores.npy", _truncate),
        r"pair_scores.npy cannot be read \(ValueError: .*\); the file is damaged .* restore it or rerun the search",
    ),
    "pair_scores.npy of the wrong shape": Case(
        lambda t, r, m: _damaged(t, r.output, "pair_scores.npy", lambda p: np.save(p, np.zeros((3, 3)))),
        r"pair_scores.npy holds shape \(3, 3\), not the run's \(256, 256\)",
    ),
    "pair_scores.npy that is text": Case(
        lambda t, r, m: _damaged(t, r.output, "pair_scores.npy", lambda p: p.write_text("not an array")),
        "pair_scores.npy cannot be read",
    ),
    "truncated preview.npz": Case(
        lambda t, r, m: _damaged(t, r.output, "preview.npz", _truncate),
        "preview.npz cannot be read",
    ),
    # fine-tune files that change nothing
    "fine-tune holding no tensors": Case(
        lambda t, r, m: _cli_argv(Input(finetuned=_finetune(t, {})), t),
        "finetune.pt changes no weight of sam_tiny: it holds no tensors",
        _app_finetune(lambda t, m: {}),
    ),
    "fine-tune equal to the base model": Case(
        lambda t, r, m: _cli_argv(Input(finetuned=_finetune(t, _base_decoder(m))), t),
        r"finetune.pt changes no weight of sam_tiny: it holds \d+ tensors, all equal to the base model's",
        _app_finetune(lambda t, m: _base_decoder(m)),
    ),
    "LoRA whose product is zero": Case(
        lambda t, r, m: _cli_argv(Input(finetuned=_finetune(t, _zero_lora(m))), t),
        "finetune.pt changes no weight of sam_tiny: it holds 1 tensors, all equal",
        _app_finetune(lambda t, m: _zero_lora(m)),
    ),
    # cross-validation without two folds
    "select cv on one search image": Case(
        lambda t, r, m: _cv_argv(t, "cv"),
        r"select cv cross-validates over the search set's objects and needs at least 2 \(the search set has 1 "
        r"object\); use 2 or more search objects, or the plain selection \(select search\)",
        _app_search("cv"),
    ),
    "select greedy on one search image": Case(
        lambda t, r, m: _cv_argv(t, "greedy"),
        "select greedy cross-validates .* needs at least 2",
        _app_search("greedy"),
    ),
    "select cv on three images of one object": Case(
        lambda t, r, m: _cv_argv(t, "cv", images=3, data=_one_object(t)),
        r"needs at least 2 \(the search set has 1 object\)",
    ),
    "select cv with the image protocol on one image": Case(
        lambda t, r, m: [*_cv_argv(t, "cv"), "--protocol", "image"],
        r"search set's images and needs at least 2 \(the search set has 1 image\)",
    ),
    # --layer with search and apply
    "search --layer past the last block": Case(
        lambda t, r, m: _search(t, "--layer", "99"),
        "block 99 is not a block of sam_tiny's encoder",
    ),
    "search --layer -1": Case(
        lambda t, r, m: _search(t, "--layer", "-1"),
        "layer must be an encoder block index \\(0, 1, ...\\) or a module name \\(layer4, stages.3\\), got -1",
    ),
    "apply of a run whose block was edited past the last": Case(
        lambda t, r, m: _apply_edited_layer(t, r.block0, 99),
        "block 99 is not a block of sam_tiny's encoder",
    ),
    # a dataset nested past the path limit (a folder: the app takes zips, whose names are checked on extraction)
    "dataset nested deeper than PATH_MAX": Case(
        lambda t, r, m: _search(t, "--data", str(_deep_dataset(t)), "--search-images", "1"),
        "deep: a file's path is longer than the file system allows .* move the dataset to a shallower folder",
    ),
}


def _apply_edited_layer(tmp: Path, run: Path, block: int) -> list[str]:
    import json

    copy = _copy(run, tmp)
    config = json.loads((copy / "config.json").read_text())
    config["config"]["layer"] = block
    (copy / "config.json").write_text(json.dumps(config))
    return ["apply", "--run", str(copy), "--data", str(SAMPLE), "--out", str(tmp / "applied"), "--unverified"]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_the_cli_gives_one_line(case, runs, tmp_path, tiny, capsys):
    argv = CASES[case].cli(tmp_path, runs, tiny)
    capsys.readouterr()
    try:
        assert main(argv) == 2
        assert_one_error_line(capsys.readouterr().err, CASES[case].message)
    finally:
        if (tmp_path / "deep").exists():
            shutil.rmtree(tmp_path / "deep")  # fd-relative removal: pytest's own cleanup need not walk it


@pytest.mark.slow
@pytest.mark.parametrize("case", [name for name, c in CASES.items() if c.app is not None])
def test_the_app_gives_the_same_message_on_one_line(case, runs, tmp_path, tiny):
    text = html.unescape(CASES[case].app(tmp_path, runs, tiny))
    assert re.search(CASES[case].message, text), text
    assert "\n" not in text.strip() and str(tmp_path) not in text and "/tmp" not in text, text


# ---------- the fixes' behaviour beyond the one line ----------


@pytest.mark.slow
def test_figures_of_runs_that_differ_skip_consistency_with_a_note(runs, tmp_path, capsys):
    """Different blocks (96 vs 256 channels): the per-run figures, no consistency figure, and a note saying why."""
    assert main(_figures(tmp_path, runs.output, runs.block0)) == 0
    out, err = capsys.readouterr()
    assert "note: consistency figure skipped: the runs are of different models" in err
    assert not (tmp_path / "figs" / "consistency.png").exists()
    written = sorted((tmp_path / "figs").iterdir())
    assert f"{len(written)} files written" in out and any(p.name.startswith("block0_") for p in written)


@pytest.mark.slow
def test_figures_of_comparable_runs_draw_consistency_and_report_exactly_what_was_written(runs, tmp_path):
    (tmp_path / "twin").mkdir()
    twin = _copy(runs.output, tmp_path / "twin")  # the same model, channels and block, under another name
    seen: list[str] = []
    written = render([runs.output, twin], tmp_path / "figs", ("png", "png"), say=seen.append)
    assert seen == [] and tmp_path / "figs" / "consistency.png" in written
    assert tmp_path / "figs" / "run2_output_topn.png" in written  # two runs named output: numbered, not overwritten
    assert sorted(written) == sorted((tmp_path / "figs").iterdir())  # each file once, every file listed
    with pytest.raises(RunError, match="different models, channel counts or encoder blocks"):
        render([runs.output, runs.block0], tmp_path / "f2", ("png",), consistent=True)


@pytest.mark.slow
def test_cross_validation_without_two_groups_is_refused_through_the_engine():
    cfg = SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, search_images=1, heldout_images=0)
    session = Session.open(cfg, progress=False)
    settings = SearchSettings(sources="0,1", targets="0,1", top_n=1, select="cv")
    with pytest.raises(ConfigError, match="needs at least 2"):
        session.resolve(settings)
    with pytest.raises(ConfigError, match="needs at least 2"):
        run_search(session, settings)
    assert "search" not in session.encode_seconds  # refused before anything was encoded
