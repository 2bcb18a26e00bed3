"""The bad-input catalogue: each case gets a clear error naming the problem (or is accepted and converted)."""

from __future__ import annotations

import io
import json
import pickle
import stat
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import redundancy.data as D
import redundancy.data.datasets as DS
import redundancy.data.images as DI
from redundancy.cli import main
from redundancy.engine import SearchSettings, Session, SessionConfig
from redundancy.errors import RedundancyError
from redundancy.models import build_backend
from redundancy.replace import Edit, edit_map, load_replacements, pairs_map

from .conftest import SAMPLE, load_app, search_argv, write_pair


def _img(path, size=(32, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 120, np.uint8)).save(path)


def _classes(tmp, empty: str | None = None):
    """Class folders a/ and b/ with two images each (`empty`: that class folder holds none)."""
    for c in ("a", "b"):
        (tmp / "cls" / c).mkdir(parents=True, exist_ok=True)
        if c != empty:
            for k in range(2):
                _img(tmp / "cls" / c / f"{k}.png")
    return tmp / "cls"


def _csv_ds(tmp, text: str):
    _img(tmp / "csvds" / "x.png")
    (tmp / "csvds" / "labels.csv").write_text(text)
    return tmp / "csvds"


def _depth_ds(tmp, depth=None, mode="I;16", size=(32, 32), npy=None):
    """images/0.png + depth/0.png (16-bit mm) or depth/0.npy (metres)."""
    _img(tmp / "dep" / "images" / "0.png")
    (tmp / "dep" / "depth").mkdir(parents=True, exist_ok=True)
    if npy is not None:
        np.save(tmp / "dep" / "depth" / "0.npy", npy)
    else:
        arr = np.full(size[::-1], 1500, np.uint16) if depth is None else depth
        img = Image.fromarray(arr.astype(np.uint16)) if mode == "I;16" else Image.fromarray(arr.astype(np.uint8))
        img.save(tmp / "dep" / "depth" / "0.png")
    return tmp / "dep"


def _dino(tmp, data, **kw):
    cfg = SessionConfig(model="dinov2_tiny", data=str(data), random_init=True, **{"search_images": 1, **kw})
    return Session.open(cfg, progress=False)


def _head_file(tmp, shape):
    torch.save({"weight": torch.zeros(shape), "bias": torch.zeros(shape[0])}, tmp / "head.pt")
    return str(tmp / "head.pt")


def _search_dino(tmp, data, **kw):
    session = _dino(tmp, data, search_images=1)
    from redundancy.engine import run_search

    return run_search(session, SearchSettings(sources="0-1", targets="0-1", **kw))


def _ds(tmp, n=2, **kw):
    for k in range(n):
        write_pair(tmp / "ds", f"im{k}", **kw)
    return tmp / "ds"


def _zip(tmp, entries: dict[str, bytes], links: tuple[str, ...] = ()) -> str:
    path = tmp / "data.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return str(path)


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _exif_rotated(tmp):
    """A 40x30 JPEG stored sideways with orientation 6, and a mask of the 30x40 stored pixels (the wrong way)."""
    ds = _ds(tmp, size=(30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (30, 40), (90, 40, 10)).save(ds / "images" / "im0.jpg", exif=exif)
    (ds / "images" / "im0.png").unlink()
    return ds


def _png(size=(8, 8), value=255) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_ckpt(tmp, tiny):
    path = tmp / "tiny.pth"
    torch.save(tiny.model.state_dict(), path)
    return path


def _nan_ckpt(tmp, tiny):
    state = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    state["mask_decoder.iou_token.weight"][0, 0] = float("nan")
    path = tmp / "nan.pth"
    torch.save(state, path)
    return path


def _repl(tmp, obj) -> str:
    path = tmp / "replacements.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def _search(tmp, **kw):
    cfg = SessionConfig(model="sam_tiny", data=str(SAMPLE), random_init=True, **{"search_images": 2, **kw})
    return Session.open(cfg, extract_to=tmp / "x", progress=False)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


CASES = {
    # data: images and masks
    "truncated image": (
        lambda t, m: (_truncate(_ds(t, ext=".jpg") / "images" / "im0.jpg"), D.open_dataset(t / "ds")),
        "im0.jpg: cannot read",
    ),
    "unsupported format": (
        lambda t, m: ((_ds(t) / "images" / "im1.png").write_text("just text"), D.open_dataset(t / "ds")),
        "im1.png: cannot read",
    ),
    "mask size differs": (
        lambda t, m: (Image.new("L", (9, 9), 255).save(_ds(t) / "masks" / "im0.png"), D.open_dataset(t / "ds")),
        "9x9",
    ),
    "empty mask": (
        lambda t, m: (Image.new("L", (40, 30), 0).save(_ds(t) / "masks" / "im1.png"), D.open_dataset(t / "ds")),
        "empty",
    ),
    "image without mask": (lambda t, m: ((_ds(t) / "masks" / "im1.png").unlink(), D.open_dataset(t / "ds")), "no mask"),
    "mask without image": (
        lambda t, m: ((_ds(t) / "images" / "im0.png").unlink(), D.open_dataset(t / "ds")),
        "no image",
    ),
    "duplicate stems": (
        lambda t, m: (write_pair(_ds(t), "im0", ext=".jpg"), D.open_dataset(t / "ds")),
        "two files share the name 'im0'",
    ),
    "empty dataset": (
        lambda t, m: ((t / "e" / "images").mkdir(parents=True), (t / "e" / "masks").mkdir(), D.open_dataset(t / "e")),
        "holds no images",
    ),
    "no dataset layout": (lambda t, m: ((t / "x").mkdir(), D.open_dataset(t / "x")), "no dataset layout"),
    "missing path": (lambda t, m: D.open_dataset(t / "nowhere"), "no such file"),
    "fewer images than the search set": (lambda t, m: _search(t, search_images=99), "32 or fewer search images"),
    "huge image": (lambda t, m: (m.setattr(DI, "MAX_PIXELS", 100), D.open_dataset(_ds(t))), "over the limit"),
    "too many images": (lambda t, m: (m.setattr(DS, "MAX_IMAGES", 1), D.open_dataset(_ds(t))), "over the limit of 1"),
    "extreme aspect ratio": (
        lambda t, m: (Image.new("RGB", (1000, 2)).save(_ds(t) / "images" / "im0.png"), D.open_dataset(t / "ds")),
        "1000x2 pixels is too small or too elongated",
    ),
    "rotated photo, mask drawn upright": (lambda t, m: D.open_dataset(_exif_rotated(t)), "EXIF orientation"),
    "feature cache is a file": (
        lambda t, m: (
            (t / "c").write_text("x"),
            __import__("redundancy.engine.features", fromlist=["x"]).FeatureCache(t / "c"),
        ),
        "is a file, not a folder",
    ),
    # uploads: zips
    "zip slip": (lambda t, m: D.open_dataset(_zip(t, {"../evil.png": _png()}), extract_to=t / "o"), "outside"),
    "zip absolute path": (
        lambda t, m: D.open_dataset(_zip(t, {"/abs/evil.png": _png()}), extract_to=t / "o"),
        "outside",
    ),
    "zip symlink": (
        lambda t, m: D.open_dataset(_zip(t, {}, ("images/link.png",)), extract_to=t / "o"),
        "symbolic link",
    ),
    "zip bomb": (
        lambda t, m: D.open_dataset(_zip(t, {"images/a.bin": b"\0" * 5_000_000}), extract_to=t / "o"),
        "decompression bomb",
    ),
    "zip inside a zip": (
        lambda t, m: D.open_dataset(_zip(t, {"inner.zip": _zip_bytes({"images/a.png": _png()})}), extract_to=t / "o"),
        "archive.*inner.zip",
    ),
    "zip entries that collide once separators are normalised": (
        lambda t, m: D.open_dataset(_zip(t, {"images/a.png": _png(), "images\\a.png": _png()}), extract_to=t / "o"),
        "ambiguous",
    ),
    "not a zip": (
        lambda t, m: ((t / "f.zip").write_bytes(b"\x89PNG fake"), D.open_dataset(t / "f.zip", extract_to=t / "o")),
        "not a zip",
    ),
    # weights
    "unknown model": (lambda t, m: build_backend("sam_vit_xl", random_init=True), "unknown model"),
    "checkpoint for another size": (
        lambda t, m: build_backend("sam_vit_b", checkpoint=_tiny_ckpt(t, m.tiny), device="cpu"),
        "another model size",
    ),
    "truncated checkpoint": (
        lambda t, m: (_truncate(p := _tiny_ckpt(t, m.tiny)), build_backend("sam_tiny", checkpoint=p, device="cpu")),
        "truncated",
    ),
    "pickled code": (
        lambda t, m: (
            (t / "e.pth").write_bytes(pickle.dumps({"x": print})),
            build_backend("sam_tiny", checkpoint=t / "e.pth", device="cpu"),
        ),
        "e.pth",
    ),
    "sha256 mismatch": (
        lambda t, m: __import__("redundancy.models._weights", fromlist=["x"]).load_state_dict(
            _tiny_ckpt(t, m.tiny), "0" * 64
        ),
        "expected",
    ),
    "random init and checkpoint": (
        lambda t, m: build_backend("sam_tiny", checkpoint="x.pth", random_init=True),
        "exclude each other",
    ),
    "cuda without a gpu": (lambda t, m: build_backend("sam_tiny", random_init=True, device="cuda"), "no CUDA GPU"),
    # channels and pairs
    "channel out of range": (lambda t, m: edit_map(Edit("zero", 256), 256), "out of range"),
    "negative channel": (lambda t, m: pairs_map([(-3, 4)], 256), "out of range"),
    "non-integer channel": (lambda t, m: pairs_map([("2.5", 4)], 256), "not an integer"),
    "i equals j": (lambda t, m: pairs_map([(7, 7)], 256), "itself"),
    "two pairs, one source": (lambda t, m: pairs_map([(7, 1), (7, 2)], 256), "source of two pairs"),
    "top-n zero": (lambda t, m: SearchSettings(top_n=0).check(), "top N must be 1 to 16"),
    "top-n too large for 2^N": (lambda t, m: SearchSettings(top_n=40).check(), "2\\^N - 1 combinations"),
    "unknown metric": (lambda t, m: SearchSettings(metric="dice").check(), "unknown metric 'dice'"),
    "bad channel list": (lambda t, m: _search(t).channel_pairs(SearchSettings(sources="0-x")), "sources .0-x.: cannot"),
    "channel list out of range": (
        lambda t, m: _search(t).channel_pairs(SearchSettings(targets="0-300")),
        "targets .0-300.: channel 256 is out of range",
    ),
    # replacement sets
    "replacements for another model": (
        lambda t, m: load_replacements(_repl(t, {"model": "sam_vit_h", "pairs": []}), "sam_tiny", 256),
        "sam_vit_h",
    ),
    "replacements for another channel count": (
        lambda t, m: load_replacements(_repl(t, {"channels": 64, "pairs": []}), "sam_tiny", 256),
        "64 channels",
    ),
    "malformed replacements json": (lambda t, m: load_replacements(_repl(t, "{nope")), "not a valid"),
    "replacements json is an array": (lambda t, m: load_replacements(_repl(t, [[3, 7]])), "not a valid"),
    "fractional channel in replacements": (
        lambda t, m: load_replacements(_repl(t, {"pairs": [{"source": 2.7, "target": 4}]})),
        "source 2.7, which is not a whole channel",
    ),
    "boolean channel in replacements": (
        lambda t, m: load_replacements(_repl(t, {"pairs": [{"source": 3, "target": True}]})),
        "target true, which is not a whole channel",
    ),
    "apply_pairs given a list": (
        lambda t, m: __import__("redundancy.runs.apply", fromlist=["x"]).apply_pairs(m.tiny, [[3, 7]], SAMPLE, t / "o"),
        "not a valid replacements.json",
    ),
    "patch on a module of another width": (
        lambda t, m: (
            __import__("redundancy.replace", fromlist=["x"]).ReplacementPatch(
                (conv := torch.nn.Conv2d(3, 64, 1)), [(1, 2)], 256
            )
            and conv(torch.zeros(1, 3, 4, 4))
        ),
        "output has 64 channels, but the replacement set is for 256",
    ),
    # weights content
    "seed too large": (lambda t, m: build_backend("sam_tiny", random_init=True, seed=2**70), "seed .* out of range"),
    "encoder output with NaN": (
        lambda t, m: (
            m.setattr(m.tiny, "encode", lambda ims: {"features": torch.full((1, 256, 8, 8), float("nan"))}),
            __import__("redundancy.engine.features", fromlist=["x"])
            .FeatureCache(t / "c")
            .encode(m.tiny, [SAMPLE / "Images" / "disc" / "00.jpg"]),
        ),
        "NaN or Inf features",
    ),
    "checkpoint with NaN weights": (
        lambda t, m: build_backend("sam_tiny", checkpoint=_nan_ckpt(t, m.tiny), device="cpu"),
        "holds NaN or Inf",
    ),
    # classification and depth data, heads and tasks (DINOv2)
    "class folder without images": (lambda t, m: D.open_dataset(_classes(t, empty="b")), "holds no images"),
    "label CSV without a header row": (lambda t, m: D.open_dataset(_csv_ds(t, "x.png,cat\n")), "first row must name"),
    "label CSV naming a missing image": (
        lambda t, m: D.open_dataset(_csv_ds(t, "image,label\nx.png,cat\ny.png,dog\n")),
        "does not exist next to the CSV",
    ),
    "label CSV with one class": (
        lambda t, m: D.open_dataset(_csv_ds(t, "image,label\nx.png,cat\n")),
        "at least 2 classes",
    ),
    "depth map of another size": (lambda t, m: D.open_dataset(_depth_ds(t, size=(20, 32))), "same size as their image"),
    "depth map with no valid pixel": (
        lambda t, m: D.open_dataset(_depth_ds(t, depth=np.zeros((32, 32)))),
        "no valid pixel",
    ),
    "8-bit depth PNG": (lambda t, m: D.open_dataset(_depth_ds(t, depth=np.full((32, 32), 9), mode="L")), "16-bit"),
    "depth .npy with NaN": (
        lambda t, m: D.open_dataset(_depth_ds(t, npy=np.full((32, 32), np.nan, np.float32))),
        "NaN, Inf or negative",
    ),
    "classification head for other channels": (
        lambda t, m: _dino(t, _classes(t), head=_head_file(t, (2, 100))).evaluator(),
        "weight \\(classes, 64 or 128\\)",
    ),
    "classification head for other classes": (
        lambda t, m: _dino(t, _classes(t), head=_head_file(t, (7, 128))).evaluator(),
        "7 classes but the dataset has 2",
    ),
    "head file that does not exist": (
        lambda t, m: _dino(t, _classes(t), head=str(t / "nope.pt")).evaluator(),
        "does not exist",
    ),
    "segmentation model on classification data": (
        lambda t, m: Session.open(
            SessionConfig(model="sam_tiny", data=str(_classes(t)), random_init=True), progress=False
        ),
        "sam_tiny does segment, but the data reads as classify data \\(class folders a/, b/ of images, no masks\\)",
    ),
    "DINOv2 on segmentation data": (
        lambda t, m: _dino(t, SAMPLE),
        "dinov2_tiny does classify and depth, but the data reads as segment data .*pick a model that does it \\(SAM",
    ),
    "segmentation model asked for classification": (
        lambda t, m: Session.open(
            SessionConfig(model="sam_tiny", data=str(_classes(t)), random_init=True, task="classify"), progress=False
        ),
        "sam_tiny has no classify head",
    ),
    "task that is not the data's": (lambda t, m: _dino(t, _classes(t), task="depth"), "is a classify dataset"),
    "box prompts for classification": (lambda t, m: _dino(t, _classes(t), prompt="box"), "takes prompt none"),
    "metric of another task": (lambda t, m: _search_dino(t, _classes(t), metric="rmse"), "not one of the classify"),
    # outputs
    "unwritable output folder": (
        lambda t, m: (
            (t / "file").write_text("x"),
            __import__("redundancy.io", fromlist=["x"]).write_json(t / "file" / "run" / "config.json", {}),
        ),
        "cannot write",
    ),
}


class _Ctx:
    """monkeypatch plus the tiny model, handed to each case."""

    def __init__(self, monkeypatch, tiny):
        self.setattr = monkeypatch.setattr
        self.tiny = tiny


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_clear_message(case, tmp_path, monkeypatch, tiny):
    action, message = CASES[case]
    if case == "cuda without a gpu" and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RedundancyError, match=message):
        action(tmp_path, _Ctx(monkeypatch, tiny))


@pytest.mark.parametrize(
    "mode, value",
    [("L", 90), ("RGBA", (10, 200, 30, 128)), ("I;16", 50000), ("P", 5), ("1", 1), ("CMYK", (0, 50, 100, 0))],
)
def test_unusual_image_modes_are_converted_not_rejected(tmp_path, mode, value):
    write_pair(tmp_path, "a")
    Image.new(mode, (40, 30), value).save(tmp_path / "images" / ("a.tif" if mode == "CMYK" else "a.png"))
    if mode == "CMYK":
        (tmp_path / "images" / "a.png").unlink()
    ds = D.open_dataset(tmp_path)
    img = D.load_image(ds.samples[0].image_path)
    assert img.shape == (30, 40, 3) and img.dtype == np.uint8


def test_top_n_larger_than_the_scored_pairs_uses_what_exists(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(search_argv("--sources", "0,1", "--targets", "0,1", "--out", str(out), images=2, heldout=0, top_n=5)) == 0
    )
    printed = capsys.readouterr().out
    assert "only 2 usable pairs for top N = 5" in printed
    assert len(json.loads((out / "topn.json").read_text())["top"]) == 2


def test_app_without_uploads_explains_what_is_missing():
    import gradio as gr

    from redundancy.ui.tabs import data

    with pytest.raises(gr.Error, match="choose a .zip"):
        load_app(source=data.UPLOAD)
    with pytest.raises(gr.Error, match="upload a checkpoint"):
        load_app(weights=2)
