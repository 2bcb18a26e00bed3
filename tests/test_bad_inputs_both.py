"""The bad-input catalogue through both entry points: the same input given to the CLI and to the app.

Each case builds one bad input (a zip, a dataset folder, a checkpoint, a fine-tune, a run folder, a
setting) and names the message it must get. Through the CLI: exit code 2 and one `error:` line, never a
traceback. Through the app: a `gr.Error` with the same message and no server path in it.
"""

from __future__ import annotations

import errno
import html
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from redundancy.cli import main
from redundancy.ui.tabs import data as data_tab
from redundancy.ui.tabs import results, search

from .conftest import SAMPLE, load_app, write_pair


def _png(size=(40, 30), value=200) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _mask(size=(40, 30)) -> bytes:
    arr = np.zeros((size[1], size[0]), np.uint8)
    arr[5:20, 5:20] = 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _dataset_entries(n=3) -> dict[str, bytes]:
    return {**{f"images/{k}.png": _png() for k in range(n)}, **{f"masks/{k}.png": _mask() for k in range(n)}}


def _zip(tmp: Path, entries: dict[str, bytes], edit: Callable[[zipfile.ZipInfo], None] | None = None) -> Path:
    """A dataset zip; `edit` changes the last entry's directory record before the archive is closed."""
    path = tmp / "upload" / "mydata.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        if edit:
            edit(zf.filelist[-1])
    return path


def _corrupt_zip(tmp: Path) -> Path:
    """A zip whose last entry's compressed bytes are damaged (its directory is intact)."""
    path = _zip(tmp, {**_dataset_entries(), "images/big.png": _png((400, 300), 7) + os.urandom(4000)})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("images/big.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 20
    data[start : start + 64] = bytes(64)
    path.write_bytes(bytes(data))
    return path


def _letters(n: int) -> bytes:
    """n random letters (text that does not compress like a bomb)."""
    return bytes(np.random.default_rng(0).integers(97, 123, n, dtype=np.uint8))


def _csv_zip(tmp: Path, image: str) -> Path:
    """A classification zip whose labels.csv names `image` besides two images of its own."""
    rows = "image,label\na.png,cat\nb.png,dog\n" + f"{image},cat\n"
    return _zip(tmp, {"a.png": _png(), "b.png": _png(value=20), "labels.csv": rows.encode()})


def _outside_image(tmp: Path) -> Path:
    """A real image on the server, outside any dataset (what a hostile CSV or link would point at)."""
    path = tmp / "server" / "secret.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png(value=99))
    return path


def _linked_dataset(tmp: Path) -> Path:
    ds = tmp / "linked"
    for k in range(3):
        write_pair(ds, f"im{k}")
    target = _outside_image(tmp)
    (ds / "images" / "im0.png").unlink()
    (ds / "images" / "im0.png").symlink_to(target)
    return ds


def _latin1_names(tmp: Path) -> Path:
    """A folder dataset with one image and mask named in Latin-1 bytes (a zip cannot carry such a name: its
    names decode as UTF-8 or cp437, so this is a folder given to the CLI)."""
    ds = tmp / "latin1"
    for k in range(2):
        write_pair(ds, f"im{k}")
    name = os.fsdecode(b"caf\xe9.png")
    (ds / "images" / name).write_bytes(_png())
    (ds / "masks" / name).write_bytes(_mask())
    return ds


def _linked_classes(tmp: Path) -> Path:
    """Class folders a/ and b/, where b/ is a link to a folder of images elsewhere on the server."""
    ds, elsewhere = tmp / "classes", tmp / "server" / "photos"
    for folder in (ds / "a", elsewhere):
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(3):
            (folder / f"{k}.png").write_bytes(_png(value=30 * k))
    (ds / "b").symlink_to(elsewhere, target_is_directory=True)
    return ds


def _float_tiff(tmp: Path, value: float) -> Path:
    ds = tmp / "tiff"
    for k in range(3):
        write_pair(ds, f"im{k}")
    arr = np.full((30, 40), 0.5, np.float32)
    arr[3, 4] = value
    (ds / "images" / "im0.png").unlink()
    Image.fromarray(arr, mode="F").save(ds / "images" / "im0.tif")
    return ds


def _deep_depth(tmp: Path) -> Path:
    ds = tmp / "deep"
    for k in range(3):
        (ds / "images").mkdir(parents=True, exist_ok=True)
        (ds / "depth").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)).save(ds / "images" / f"{k}.png")
        np.save(ds / "depth" / f"{k}.npy", np.full((32, 32), 1e30 if k == 0 else 2.0, np.float32))
    return ds


def _ckpt(tmp: Path, tiny, change: Callable[[dict], dict], name="weights.pth", safetensors=False) -> Path:
    state = change({k: v.clone().contiguous() for k, v in tiny.model.state_dict().items()})
    path = tmp / "ckpt" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if safetensors:
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def _retyped(key: str, dtype: torch.dtype) -> Callable[[dict], dict]:
    return lambda s: {**s, key: s[key].to(dtype)}


LORA_TARGET = "mask_decoder.iou_prediction_head.layers.0"  # a Linear(256, 256) of sam_tiny


def _lora(tmp: Path, a: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor | None = None) -> Path:
    state = {f"{LORA_TARGET}.lora_A": a, f"{LORA_TARGET}.lora_B": b}
    if alpha is not None:
        state[f"{LORA_TARGET}.lora_alpha"] = alpha
    path = tmp / "ft" / "lora.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@dataclass(frozen=True)
class Input:
    """A bad input, as the CLI and the app take it: a dataset, a checkpoint or a fine-tune."""

    data: Path | None = None
    checkpoint: Path | None = None
    finetuned: Path | None = None
    model: str = "sam_tiny"


def _cli_argv(inp: Input, tmp: Path) -> list[str]:
    argv = ["search", "--model", inp.model, "--data", str(inp.data or SAMPLE), "--search-images", "2"]
    argv += ["--sources", "0,1", "--targets", "0,1", "--top-n", "1", "--out", str(tmp / "run")]
    argv += ["--checkpoint", str(inp.checkpoint)] if inp.checkpoint else ["--random-init"]
    return argv + (["--finetuned", str(inp.finetuned)] if inp.finetuned else [])


def _app_load(inp: Input):
    """The Data tab's Load with this input: an uploaded zip or a local folder, a checkpoint or fine-tune file."""
    data = inp.data
    if data is not None and data.is_dir():  # the app takes zips only: upload the folder zipped
        zipped = data.parent / f"{data.name}-upload" / f"{data.name}.zip"
        zipped.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(zipped, "w") as zf:
            for p in sorted(data.rglob("*")):
                if p.is_file():
                    zf.write(p.resolve(), p.relative_to(data).as_posix())
        data = zipped
    return load_app(
        model=inp.model, weights=2 if inp.checkpoint else 0, source=data_tab.UPLOAD if data else None,
        ckpt=str(inp.checkpoint) if inp.checkpoint else None, ft=str(inp.finetuned) if inp.finetuned else None,
        zip_in=str(data) if data else None, n_search=2,
    )  # fmt: skip


# name -> (build the input from (tmp, tiny), the message both entry points must give[, entry points])
CASES: dict[str, tuple] = {
    # zips
    "zip entry that lies about its size": (
        lambda t, m: Input(_zip(t, _dataset_entries(), lambda i: setattr(i, "file_size", 5))),
        "is damaged",
    ),
    "zip with damaged compressed data": (lambda t, m: Input(_corrupt_zip(t)), "is damaged"),
    "encrypted zip entry": (
        lambda t, m: Input(_zip(t, _dataset_entries(), lambda i: setattr(i, "flag_bits", i.flag_bits | 1))),
        "is encrypted",
    ),
    "zip entry with an unknown compression method": (
        lambda t, m: Input(_zip(t, _dataset_entries(), lambda i: setattr(i, "compress_type", 99))),
        "compression method",
    ),
    "zip with a file and a folder of the same name": (
        lambda t, m: Input(_zip(t, {"images": b"x", **_dataset_entries()})),
        "is a file and also the folder",
    ),
    "zip entry with an over-long name": (
        lambda t, m: Input(_zip(t, {**_dataset_entries(), "images/" + "a" * 300 + ".png": _png()})),
        "over 255 bytes",
    ),
    "zip of text files only": (
        lambda t, m: Input(_zip(t, {"notes.txt": b"hello"})),
        "mydata.zip: no dataset layout found.*Images/<object>/",
    ),
    "empty zip": (lambda t, m: Input(_zip(t, {})), "mydata.zip: no dataset layout found"),
    "zip of two datasets": (
        lambda t, m: Input(_zip(t, {f"{d}/{k}": v for d in ("gray", "blur") for k, v in _dataset_entries().items()})),
        r"mydata.zip is a folder of datasets \(blur/, gray/\), not one dataset; zip one of them on its own",
    ),
    "zip of a run folder": (
        lambda t, m: Input(_zip(t, {"run/pair_scores.npy": b"x", "run/pair_scores.csv": b"a,b\n", "run/x.csv": b""})),
        r"mydata.zip/run holds a search's results \(a run folder of this tool\), not a dataset",
    ),
    "images in two folders, no masks, for a segmentation model": (
        lambda t, m: Input(_zip(t, {f"{c}/{k}.png": _png() for c in ("cats", "dogs") for k in range(2)})),
        r"sam_tiny does segment, but the data reads as classify data \(class folders cats/, dogs/ of images, no "
        r"masks\); for segment give images/ \+ masks/ \(or PerSeg\) data",
    ),
    # paths a dataset names
    "label CSV naming an absolute server path": (
        lambda t, m: Input(_csv_zip(t, str(_outside_image(t)))),
        "line 4: image .* is outside the dataset folder",
    ),
    "label CSV naming /etc/passwd": (lambda t, m: Input(_csv_zip(t, "/etc/passwd")), "line 4: image .* is outside"),
    "label CSV naming a missing absolute path": (
        lambda t, m: Input(_csv_zip(t, "/no/such/file.png")),
        "line 4: image .* is outside",
    ),
    "label CSV climbing out with ../": (
        lambda t, m: Input(_csv_zip(t, "../../../../etc/hostname")),
        "line 4: image .* is outside",
    ),
    "label CSV field over the csv limit": (
        lambda t, m: Input(_zip(t, {"a.png": _png(), "labels.csv": b"image,label\na.png," + _letters(200_000)})),
        "not a CSV of image,label rows",
    ),
    "image that is a link out of the dataset": (  # a zip cannot hold links (refused): a folder, for the CLI
        lambda t, m: Input(_linked_dataset(t)),
        "outside the dataset folder",
        ("cli",),
    ),
    "class folder that is a link out of the dataset": (
        lambda t, m: Input(_linked_classes(t), model="dinov2_tiny"),
        "outside the dataset folder",
        ("cli",),
    ),
    "file name that is not valid UTF-8": (lambda t, m: Input(_latin1_names(t)), "not valid UTF-8", ("cli",)),
    # pixels and depths
    "float TIFF with a NaN pixel": (lambda t, m: Input(_float_tiff(t, np.nan)), "NaN or Inf pixels"),
    "float TIFF with an Inf pixel": (lambda t, m: Input(_float_tiff(t, np.inf)), "NaN or Inf pixels"),
    "depth of 1e30 m": (lambda t, m: Input(_deep_depth(t), model="dinov2_tiny"), "more than 1000 m"),
    # checkpoints
    "int8 tensors in a safetensors checkpoint": (
        lambda t, m: Input(
            checkpoint=_ckpt(
                t, m, _retyped("mask_decoder.iou_token.weight", torch.int8), "w.safetensors", safetensors=True
            )
        ),
        "holds int8 values where the model has float32",
    ),  # fmt: skip
    "bool tensors in a safetensors checkpoint": (
        lambda t, m: Input(
            checkpoint=_ckpt(
                t, m, _retyped("mask_decoder.iou_token.weight", torch.bool), "w.safetensors", safetensors=True
            )
        ),
        "holds bool values",
    ),  # fmt: skip
    "int64 tensors in a .pth checkpoint": (
        lambda t, m: Input(checkpoint=_ckpt(t, m, _retyped("mask_decoder.iou_token.weight", torch.int64))),
        "holds int64 values",
    ),
    "checkpoint with non-string keys": (
        lambda t, m: Input(checkpoint=_ckpt(t, m, lambda s: {**s, 7: torch.zeros(1)})),
        "key 7 is not a tensor name",
    ),
    "checkpoint with a sparse tensor": (
        lambda t, m: Input(
            checkpoint=_ckpt(
                t, m, lambda s: {**s, "mask_decoder.iou_token.weight": s["mask_decoder.iou_token.weight"].to_sparse()}
            )
        ),
        "not ordinary weights",
    ),  # fmt: skip
    "checkpoint with a meta tensor": (
        lambda t, m: Input(
            checkpoint=_ckpt(t, m, lambda s: {**s, "mask_decoder.iou_token.weight": torch.empty(1, 256, device="meta")})
        ),
        "meta",
    ),  # fmt: skip
    "checkpoint that is not a checkpoint": (
        lambda t, m: Input(checkpoint=(t / "x.pt", (t / "x.pt").write_bytes(b"\x00" * 64))[0]),
        "not a readable PyTorch checkpoint",
    ),
    # fine-tunes (LoRA)
    "LoRA of rank 0": (
        lambda t, m: Input(finetuned=_lora(t, torch.zeros(0, 256), torch.zeros(256, 0))),
        "rank >= 1",
    ),
    "LoRA with 1-D factors": (lambda t, m: Input(finetuned=_lora(t, torch.zeros(256), torch.zeros(256))), "do not fit"),
    "LoRA with 3-D factors": (
        lambda t, m: Input(finetuned=_lora(t, torch.zeros(1, 4, 256), torch.zeros(256, 4, 1))),
        "do not fit",
    ),
    "LoRA with a vector alpha": (
        lambda t, m: Input(finetuned=_lora(t, torch.zeros(4, 256), torch.zeros(256, 4), torch.ones(3))),
        "must be one finite number",
    ),
    "LoRA with integer factors": (
        lambda t, m: Input(finetuned=_lora(t, torch.zeros(4, 256, dtype=torch.int8), torch.zeros(256, 4))),
        "floating-point",
    ),
    "fine-tune with int8 tensors": (
        lambda t, m: Input(
            finetuned=_ckpt(
                t, m, lambda s: {"mask_decoder.iou_token.weight": s["mask_decoder.iou_token.weight"].to(torch.int8)}
            )
        ),
        "holds int8 values",
    ),  # fmt: skip
}


def _through(where: str) -> list[str]:
    return [name for name, case in CASES.items() if where in (case[2] if len(case) > 2 else ("cli", "app"))]


def assert_one_error_line(err: str, message: str) -> None:
    """stderr of a refused CLI run: progress bars perhaps, then exactly one `error:` line; no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]) and "Traceback" not in err, err
    assert re.search(message, errors[0]), err


@pytest.mark.parametrize("case", _through("cli"))
def test_the_cli_gives_one_line(case, tmp_path, tiny, capsys):
    build, message, *_ = CASES[case]
    assert main(_cli_argv(build(tmp_path, tiny), tmp_path)) == 2
    assert_one_error_line(capsys.readouterr().err, message)


@pytest.mark.parametrize("case", _through("app"))
def test_the_app_gives_the_same_message_without_server_paths(case, tmp_path, tiny):
    build, message, *_ = CASES[case]
    with pytest.raises(gr.Error) as caught:
        _app_load(build(tmp_path, tiny))
    text = caught.value.message
    assert re.search(message, html.unescape(text)), text
    assert str(tmp_path) not in text and "/tmp" not in text and "redundancy-app" not in text, text
    assert "<" not in text  # escaped: the page renders it as HTML


def test_a_full_disk_while_extracting_is_one_line(tmp_path, monkeypatch, capsys):
    import redundancy.data.archives as D

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "server" / "spot"))

    monkeypatch.setattr(D, "_copy_entry", full)
    path = _zip(tmp_path, _dataset_entries())
    assert main(_cli_argv(Input(path), tmp_path)) == 2
    assert_one_error_line(capsys.readouterr().err, "No space left on device.*disk is full")
    with pytest.raises(gr.Error, match="disk is full") as caught:
        _app_load(Input(path))
    assert str(tmp_path) not in caught.value.message


def test_a_safetensors_file_named_pt_loads_as_what_it_is(tmp_path, tiny):
    from redundancy.models import build_backend

    path = _ckpt(tmp_path, tiny, lambda s: s, "renamed.pt", safetensors=True)
    assert build_backend("sam_tiny", checkpoint=path, device="cpu").weights.state_sha256 == tiny.weights.state_sha256


def test_images_with_wide_ranges_are_scaled_not_wrapped(tmp_path):
    """A 32-bit integer TIFF beyond 16 bits keeps its order of brightness (the uint8 cast used to wrap it)."""
    from redundancy.data import load_image

    arr = np.array([[0, 70_000, 140_000, 280_000]] * 20, np.int32).repeat(5, 1)
    Image.fromarray(arr, mode="I").save(tmp_path / "wide.tif")
    row = load_image(tmp_path / "wide.tif")[0, ::5, 0]
    assert list(row) == sorted(row) and row[0] == 0 and row[-1] == 255


# ---------- run folders, run files and settings: the CLI's other verbs, and the app's Results tab ----------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A small finished run (sam_tiny, random weights, the sample data): each case damages a copy of it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    argv = ["search", "--model", "sam_tiny", "--random-init", "--data", str(SAMPLE), "--search-images", "2"]
    assert main([*argv, "--heldout-images", "1", "--sources", "0-3", "--targets", "0-3", "--top-n", "2",
                 "--out", str(out)]) == 0  # fmt: skip
    return out


def _edit_json(path: Path, change: Callable[[dict], object]) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _deep(n: int = 100_000) -> str:
    return '{"pairs": ' + "[" * n + "]" * n + "}"


def _manifest(run: Path, change: Callable[[dict], dict]) -> None:
    _edit_json(run / "manifest.json", change)


def _apply(run: Path, t: Path, *extra: str) -> list[str]:
    return ["apply", "--run", str(run), "--data", str(SAMPLE), "--out", str(t / "applied"), *extra]


def _figures(run: Path, t: Path, *extra: str) -> list[str]:
    return ["figures", str(run), "--out", str(t / "figs"), "--format", "png", *extra]


TINY = ["--model", "sam_tiny", "--random-init", "--data", str(SAMPLE), "--search-images", "2"]
SCOPE = ["--sources", "0,1", "--targets", "0,1", "--top-n", "1"]

# name -> (prepare(run copy, tmp) -> argv, message)
RUN_CASES: dict[str, tuple[Callable[[Path, Path], list[str]], str]] = {
    "manifest naming a file outside the run": (
        lambda r, t: (
            _manifest(r, lambda m: {**m, "files": {**m["files"], "../../etc/shadow": "0" * 64}}),
            _apply(r, t),
        )[1],
        "names '../../etc/shadow', which is not a file of this run",
    ),  # fmt: skip
    "manifest naming an absolute path": (
        lambda r, t: (_manifest(r, lambda m: {**m, "files": {"/etc/shadow": "0" * 64}}), _apply(r, t))[1],
        "not a file of this run",
    ),
    "manifest whose files were emptied (apply)": (
        lambda r, t: (_manifest(r, lambda m: {**m, "files": {}}), _apply(r, t))[1],
        "config.json is not covered by manifest.json",
    ),
    "manifest whose files were emptied (figures)": (
        lambda r, t: (_manifest(r, lambda m: {**m, "files": {}}), _figures(r, t))[1],
        "is not covered by manifest.json",
    ),
    "manifest that is not an object": (
        lambda r, t: ((r / "manifest.json").write_text("[1, 2]"), _apply(r, t))[1],
        "manifest.json is not a JSON object",
    ),
    "figures of an edited run": (
        lambda r, t: (_edit_json(r / "replacements.json", lambda d: {**d, "pairs": []}), _figures(r, t))[1],
        "replacements.json does not match its sha256",
    ),
    "figures of an unsealed run": (
        lambda r, t: ((r / "manifest.json").unlink(), _figures(r, t))[1],
        "not a finished run",
    ),
    "figures of a config.json without its model": (
        lambda r, t: (
            _edit_json(r / "config.json", lambda c: {k: v for k, v in c.items() if k != "model"}),
            _figures(r, t, "--unverified"),
        )[1],
        "config.json is malformed \\('model' should be a str\\)",
    ),  # fmt: skip
    "apply with a config.json whose data is a number": (
        lambda r, t: (_edit_json(r / "config.json", lambda c: {**c, "data": 3}), _apply(r, t, "--unverified"))[1],
        "config.json is malformed \\('data' should be an object\\)",
    ),
    "config.json nested too deeply": (
        lambda r, t: ((r / "config.json").write_text(_deep()), _figures(r, t, "--unverified"))[1],
        "config.json is nested too deeply",
    ),
    "config.json that is an array": (
        lambda r, t: ((r / "config.json").write_text("[]"), _apply(r, t, "--unverified"))[1],
        "config.json is not a JSON object",
    ),
    "replacements.json nested too deeply": (
        lambda r, t: (
            (r / "replacements.json").write_text(_deep()),
            ["apply", "--replacements", str(r), "--data", str(SAMPLE), "--out", str(t / "o"), "--unverified"],
        )[1],
        "replacements.json is nested too deeply",
    ),  # fmt: skip
    "apply --out inside the dataset": (
        lambda r, t: ["apply", "--run", str(r), "--data", str(r / "data"), "--out", str(r / "data" / "masks")],
        "is inside the dataset folder",
    ),
    "apply --out holding masks apply did not write": (
        lambda r, t: (
            (t / "mine" / "masks").mkdir(parents=True),
            ["apply", "--run", str(r), "--data", str(SAMPLE), "--out", str(t / "mine")],
        )[1],
        "already holds masks that apply did not write",
    ),  # fmt: skip
    "search --out into a folder of the user's own": (
        lambda r, t: (
            (t / "mine").mkdir(),
            (t / "mine" / "config.json").write_text("{}"),
            ["search", *TINY, *SCOPE, "--out", str(t / "mine")],
        )[2],
        "already holds files that are not a run of this tool \\(e.g. config.json\\)",
    ),  # fmt: skip
    "search --out that is a file": (
        lambda r, t: ((t / "f").write_text("x"), ["search", *TINY, *SCOPE, "--out", str(t / "f")])[1],
        "is a file",
    ),
    "compare --out that is a file": (
        lambda r, t: ((t / "f").write_text("x"), ["compare", *TINY, *SCOPE, "--out", str(t / "f")])[1],
        "--out .* is a file, not a folder",
    ),
    "held-out images -1": (
        lambda r, t: ["search", *TINY, *SCOPE, "--heldout-images", "-1", "--out", str(t / "o")],
        "held-out images must be 0",
    ),
    "search images 0": (
        lambda r, t: ["search", *TINY, *SCOPE, "--search-images", "0", "--out", str(t / "o")],
        "search images must be at least 1",
    ),  # fmt: skip
    "taylor temperature inf": (
        lambda r, t: ["search", *TINY, *SCOPE, "--mode", "taylor", "--taylor-temperature", "inf", "--out", str(t)],
        "finite number > 0",
    ),
    "taylor temperature nan": (
        lambda r, t: ["search", *TINY, *SCOPE, "--taylor-temperature", "nan", "--out", str(t / "o")],
        "finite number > 0",
    ),
    "batch rows far too large": (
        lambda r, t: ["search", *TINY, *SCOPE, "--batch-rows", "1000000000", "--out", str(t / "o")],
        "from 1 to 65,536",
    ),
    "feature cache that cannot be written": (
        lambda r, t: (
            (t / "file").write_text("x"),
            ["search", *TINY, *SCOPE, "--cache", str(t / "file" / "sub"), "--out", str(t / "o")],
        )[1],
        "cannot write the feature cache",
    ),  # fmt: skip
}


@pytest.mark.parametrize("case", list(RUN_CASES))
def test_run_files_and_settings_get_one_line(case, finished_run, tmp_path, capsys):
    prepare, message = RUN_CASES[case]
    run = tmp_path / "run"
    import shutil

    shutil.copytree(finished_run, run)
    (run / "data").mkdir()
    argv = prepare(run, tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    assert_one_error_line(capsys.readouterr().err, message)


@pytest.fixture(scope="module")
def ws():
    workspace = load_app(n_search=2)[0]
    yield workspace
    workspace.close()


@pytest.mark.parametrize(
    "content, message",
    [
        (_deep(), "not valid JSON \\(RecursionError\\)"),
        ("[1, 2]", "not a valid replacements.json"),
        ('{"pairs": [{"source": 1, "target": 1}]}', "replaces a channel with itself"),
        ('{"pairs": [{"source": 1, "target": 2, "alpha": 7}]}', "alpha 7 must be a number in"),
        ("\xff\xfe not text", "not valid JSON"),
    ],
)
def test_the_apply_box_gets_one_line(ws, tmp_path, content, message):
    path = tmp_path / "replacements.json"
    path.write_text(content, errors="surrogateescape")
    with pytest.raises(gr.Error, match=message) as caught:
        results.apply_uploaded(ws, str(path), None)
    assert str(tmp_path) not in caught.value.message


def test_batch_rows_far_too_large_in_the_app_is_one_warning(ws):
    with pytest.warns(UserWarning, match="from 1 to 65,536"):
        assert list(search.search(ws, 1, "miou", "0,1", "0,1", 10**9)) == [[gr.update()] * 9]


def test_ablate_on_a_run_with_malformed_settings_is_one_line(finished_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    _edit_json(run / "config.json", lambda c: {**c, "config": {**c["config"], "search_images": "many", "x": 1}})
    assert main(["ablate", "--run", str(run), "--zero", "3", "--unverified"]) == 2
    assert_one_error_line(capsys.readouterr().err, "config.json's settings are malformed")
