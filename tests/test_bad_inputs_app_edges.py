"""The bad-input catalogue at the app's newer edges: the Your image tab, the encoder-block field, an uploaded
replacements.json that records an encoder block, and pushing without a token or without a network.

Each case builds one input and names the one line it must get: through the app's own handler (the tab's upload
component first, as the page sends it), a `gr.Error` with that line and no server path; where the CLI takes the
same input (apply of a run whose replacements.json records a block, push), exit code 2 and one `error:` line.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import ImageData
from PIL import Image

from redundancy.cli import main
from redundancy.engine import SearchSettings
from redundancy.ui.tabs import results, yours

from .conftest import SAMPLE, load_app
from .test_bad_inputs_both import assert_one_error_line


def _png(tmp: Path, w: int, h: int, name: str = "mine.png") -> Path:
    path = tmp / "upload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 120, np.uint8)).save(path)
    return path


def _header_only_png(tmp: Path, w: int, h: int) -> Path:
    """A PNG whose header says w x h (a decompression bomb's shape) over a few real bytes: nothing is allocated
    unless a reader trusts the header."""
    path = _png(tmp, 8, 8, "huge.png")
    data = bytearray(path.read_bytes())
    ihdr = struct.pack(">II", w, h) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(bytes(data))
    return path


def _file(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / "upload" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _truncated_png(tmp: Path) -> Path:
    path = _png(tmp, 300, 200)
    noisy = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)  # does not compress away
    Image.fromarray(noisy).save(path)
    return _file(tmp, "cut.png", path.read_bytes()[:2000])


@dataclass(frozen=True)
class Case:
    """One bad input: `kind` says which app control takes it (image, layer, replacements, push); `build(tmp)` makes
    it; `message` is the line both entry points give; `cli` whether the CLI takes the same input."""

    kind: str
    build: Callable[[Path], object]
    message: str
    cli: bool = False


def _repl(**fields) -> Callable[[Path], dict]:
    return lambda t: {"pairs": [{"source": 1, "target": 2}], "model": "sam_tiny", "channels": 256, **fields}


CASES: dict[str, Case] = {
    # the Your image tab: the upload box's file, or an API client's array
    "text file renamed to .png": Case(
        "image", lambda t: _file(t, "notes.png", b"just some notes\n"), "notes.png: cannot read this file as an image"
    ),
    "empty .png": Case("image", lambda t: _file(t, "empty.png", b""), "empty.png: cannot read this file as an image"),
    "truncated png": Case("image", _truncated_png, "cut.png: cannot read this file as an image"),
    "20000 x 20000 png (a decompression bomb's header)": Case(
        "image",
        lambda t: _header_only_png(t, 20_000, 20_000),
        "huge.png: the image is over the limit of 40,000,000 pixels.*downscale it",
    ),
    "7000 x 7000 png (over the pixel limit)": Case(
        "image", lambda t: _header_only_png(t, 7000, 7000), "7000x7000 pixels is over the limit of 40,000,000"
    ),
    "4000 x 10 png": Case("image", lambda t: _png(t, 4000, 10), "4000x10 pixels is too small or too elongated"),
    "1 x 1 png": Case("image", lambda t: _png(t, 1, 1), "1x1 pixels is too small"),
    "4000 x 10 array from an API client": Case(
        "image", lambda t: np.zeros((10, 4000, 3), np.uint8), "your image is 4000x10 pixels"
    ),
    "empty array from an API client": Case("image", lambda t: np.zeros((0, 5, 3), np.uint8), "has shape \\(0, 5, 3\\)"),
    # the Data tab's encoder-block field
    "encoder block '²' (a digit to str.isdigit)": Case("layer", lambda t: "²", "encoder block '²' is not a block"),
    "encoder block '٣' (an Arabic-Indic 3)": Case("layer", lambda t: "٣", "encoder block '٣' is not a block"),
    "encoder block of 5000 digits": Case("layer", lambda t: "7" * 5000, "is not a block number"),
    "encoder block '１' (full-width)": Case("layer", lambda t: "１", "encoder block '１' is not a block"),
    # an uploaded replacements.json that records an encoder block (the session searches the encoder output)
    "replacements at encoder block 2, session at the output": Case(
        "replacements",
        _repl(layer=2),
        "was found at encoder block 2, but this model replaces at the encoder output",
        cli=True,
    ),  # fmt: skip
    "replacements whose layer is the string '3'": Case(
        "replacements", _repl(layer="3"), 'records layer "3", which is neither a block number', cli=True
    ),
    "replacements whose layer is true": Case("replacements", _repl(layer=True), "records layer true"),
    "replacements whose layer is -1": Case("replacements", _repl(layer=-1), "records layer -1", cli=True),
    "replacements whose layer is 2.5": Case("replacements", _repl(layer=2.5), "records layer 2.5"),
    "replacements whose layer is a list": Case("replacements", _repl(layer=[1]), "records layer \\[1\\]"),
    # pushing
    "push without a Hub token": Case("push", lambda t: {}, "no Hub token: log in first", cli=True),
    "push with the Hub unreachable": Case(
        "push",
        lambda t: {"HF_TOKEN": "hf_users_own", "endpoint": "http://127.0.0.1:9"},
        "could not upload to me/x \\(ConnectError\\).*the network",
        cli=True,
    ),  # fmt: skip
}


@pytest.fixture(scope="module")
def ws():
    """A loaded session (sam_tiny, random weights, at the encoder output) with one finished search."""
    workspace = load_app(n_search=2)[0]
    workspace.start_search(SearchSettings(top_n=1, sources="0,1", targets="0,1")).thread.join()
    assert workspace.result is not None
    yield workspace
    workspace.close()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    argv = ["search", "--model", "sam_tiny", "--random-init", "--data", str(SAMPLE), "--search-images", "2"]
    assert main([*argv, "--heldout-images", "0", "--sources", "0,1", "--targets", "0,1", "--top-n", "1",
                 "--out", str(out)]) == 0  # fmt: skip
    return out


def _uploaded(value):
    """What the Your image tab's upload box hands its handler for a file the page sends (a path, or an array)."""
    if not isinstance(value, Path):
        return value
    with gr.Blocks():
        box = yours.build().your_img
    return box.preprocess(ImageData(path=str(value), orig_name=value.name))


def _offline(monkeypatch, tmp: Path, setting: dict) -> None:
    """The environment of a push case: no stored login, no Space, the token and Hub endpoint it names."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp / "hf-home"))
    for name in ("HF_TOKEN", "SPACE_ID", "REDUNDANCY_ALLOW_PUSH"):
        monkeypatch.delenv(name, raising=False)
    if "HF_TOKEN" in setting:
        monkeypatch.setenv("HF_TOKEN", setting["HF_TOKEN"])
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", setting.get("endpoint", "http://127.0.0.1:9"))


def _through_app(case: Case, ws, tmp: Path, monkeypatch):
    value = case.build(tmp)
    if case.kind == "image":
        return yours.predict(ws, _uploaded(value), yours.NONE, [])
    if case.kind == "layer":
        return load_app(layer=value)
    if case.kind == "replacements":
        path = _file(tmp, "replacements.json", json.dumps(value).encode())
        return results.apply_uploaded(ws, str(path), None)
    _offline(monkeypatch, tmp, value)
    return results.share_run(ws, "me/x", True)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_the_app_gives_one_line(name, ws, tmp_path, monkeypatch):
    case = CASES[name]
    with pytest.raises(gr.Error) as caught:
        _through_app(case, ws, tmp_path, monkeypatch)
    text = html.unescape(caught.value.message)
    assert re.search(case.message, text) and "unexpected error" not in text, text
    assert str(tmp_path) not in text and "redundancy-app" not in text, text


def _cli_argv(case: Case, run: Path, tmp: Path, monkeypatch) -> list[str]:
    value = case.build(tmp)
    if case.kind == "replacements":
        recorded = json.loads((run / "replacements.json").read_text())
        (run / "replacements.json").write_text(json.dumps({**recorded, "layer": value["layer"]}))
        return ["apply", "--run", str(run), "--data", str(SAMPLE), "--out", str(tmp / "applied"), "--unverified"]
    _offline(monkeypatch, tmp, value)
    return ["push", str(run), "me/x"]


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.cli])
def test_the_cli_gives_the_same_line(name, finished_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    argv = _cli_argv(CASES[name], run, tmp_path, monkeypatch)
    capsys.readouterr()
    assert main(argv) == 2
    assert_one_error_line(capsys.readouterr().err, CASES[name].message)
