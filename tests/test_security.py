"""Security and data safety (README, "Security model"): what a dataset, a manifest or a visitor can reach.

Each test here failed before the fix it guards: an upload reading server files, a download holding the
reconnect key, error text with server paths, a manifest that made `verify` hash any file, and commands
that destroyed a user's files.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from redundancy.cli import main
from redundancy.data import open_dataset
from redundancy.errors import DataError, RunError
from redundancy.interactive.workspace import APP_ROOT, Workspace
from redundancy.runs.resume import search_lock
from redundancy.runs.rundir import RunDir
from redundancy.ui.tabs import channels, figures, results, search
from redundancy.ui.tabs import data as data_tab

from .conftest import SAMPLE, load_app, write_pair
from .test_bad_inputs_both import TINY, _csv_zip, _outside_image, _png, _zip

SCOPE = ["--sources", "0,1", "--targets", "0,1", "--top-n", "1"]


def _load_zip(path: Path, model: str = "dinov2_tiny", n_search: int = 2):
    return load_app(model=model, source=data_tab.UPLOAD, zip_in=str(path), n_search=n_search)


def test_a_label_csv_cannot_make_the_gallery_serve_a_server_file(tmp_path):
    """A labels.csv row naming an absolute server path (or ../) used to become a gallery image the visitor saw."""
    secret = _outside_image(tmp_path)
    for k, row in enumerate((str(secret), "../" * 12 + str(secret).lstrip("/"))):
        with pytest.raises(gr.Error, match="outside the dataset folder") as caught:
            _load_zip(_csv_zip(tmp_path / str(k), row))
        assert "redundancy-app" not in caught.value.message  # (the row itself is the visitor's own text)
    with pytest.raises(DataError, match="outside the dataset folder"):  # the CLI's reading of the same zip
        open_dataset(_csv_zip(tmp_path / "cli", str(secret)))


def test_a_label_csv_cannot_probe_whether_a_server_file_exists(tmp_path):
    """An existing and a missing server path get the same answer: the file is never looked at."""
    answers = []
    for k, row in enumerate(("/etc/passwd", "/no/such/file.png")):
        with pytest.raises(DataError) as caught:
            open_dataset(_csv_zip(tmp_path / str(k), row))
        answers.append(str(caught.value).replace(row, "PATH"))
    assert answers[0] == answers[1]


def test_links_out_of_a_dataset_folder_are_refused(tmp_path):
    ds = tmp_path / "ds"
    for k in range(2):
        write_pair(ds, f"im{k}")
    (ds / "masks" / "im1.png").unlink()
    (ds / "masks" / "im1.png").symlink_to(SAMPLE / "Annotations" / "disc" / "00.png")
    with pytest.raises(DataError, match="im1.png is a link to a file outside the dataset folder"):
        open_dataset(ds)
    inside = tmp_path / "ok"
    for k in range(2):
        write_pair(inside, f"im{k}")
    (inside / "images" / "copy.png").symlink_to(inside / "images" / "im0.png")  # a link inside is fine
    (inside / "masks" / "copy.png").symlink_to(inside / "masks" / "im0.png")
    assert len(open_dataset(inside)) == 3


@pytest.fixture(scope="module")
def searched():
    """A workspace that loaded a zip upload, searched and prepared every download."""
    upload = SAMPLE  # zipped as a visitor would upload it
    folder = APP_ROOT.parent / "security-upload"
    folder.mkdir(exist_ok=True)
    zipped = folder / "visitor data.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in sorted(upload.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(upload).as_posix())
    ws = _load_zip(zipped, "sam_tiny", 3)[0]
    *_, last = search.search(ws, 2, "miou", "0-3", "0-3", 0)
    assert "Search finished" in last[1]
    summary, _, files = results.show_results(ws)
    pngs, fig_zip, _ = figures.make_figures(ws, ["png"])
    yield ws, summary, [Path(f) for f in files], Path(fig_zip)
    ws.close()
    shutil.rmtree(folder, ignore_errors=True)


def _secrets(ws: Workspace) -> list[str]:
    return [ws.key, ws.id, str(APP_ROOT), str(ws.dir), str(Path.cwd()), "security-upload"]


@pytest.mark.slow
def test_downloads_hold_no_server_path_and_no_session_key(searched):
    ws, summary, files, fig_zip = searched
    texts = {f.name: f.read_bytes() for f in files}
    with zipfile.ZipFile(fig_zip) as zf:
        texts.update({n: zf.read(n) for n in zf.namelist() if n.endswith(".txt")})
    with zipfile.ZipFile(next(f for f in files if f.suffix == ".zip")) as zf:
        texts.update({n: zf.read(n) for n in zf.namelist()})
    for name, data in texts.items():
        for secret in _secrets(ws):
            assert secret.encode() not in data, (name, secret)
        if name.endswith((".json", ".txt", ".csv")):
            assert not re.search(rb'"/[^"]*"', data), name  # no absolute path at all
    config = json.loads(texts["config.json"])
    assert config["data"]["path"] == "visitor data.zip" and config["config"]["data"] == "visitor data.zip"
    assert all(secret not in summary for secret in _secrets(ws))


@pytest.mark.slow
def test_the_reconnect_key_is_not_derivable_from_what_a_visitor_gets(searched):
    ws, _, files, _ = searched
    assert Workspace.reconnect(ws.key) is ws
    assert Workspace.reconnect(ws.id) is None  # the folder's name opens nothing
    for f in files:
        assert ws.id.encode() not in f.read_bytes() and ws.key.encode() not in f.read_bytes()


def test_app_error_messages_name_the_visitors_file_never_a_server_path(tmp_path):
    odd = _zip(tmp_path, {"images": b"x", "images/a.png": _png()})  # a file and a folder of one name
    with pytest.raises(gr.Error) as caught:
        _load_zip(odd, "sam_tiny")
    text = html.unescape(caught.value.message)
    assert "mydata.zip" in text and "redundancy-app" not in text and str(tmp_path) not in text
    empty = _zip(tmp_path / "e", {"readme.txt": b"hi"})
    with pytest.raises(gr.Error) as caught:
        _load_zip(empty)
    text = caught.value.message
    assert "&lt;object&gt;" in text and "<object>" not in text  # shown as text, not swallowed as a tag
    assert "redundancy-app" not in text and "/tmp" not in text


@pytest.mark.slow
def test_an_unexpected_error_is_redacted_too(searched, monkeypatch):
    ws = searched[0]

    def broken(*_a, **_k):
        raise OSError(f"[Errno 5] Input/output error: '{ws.dir / 'run-x' / 'pair_scores.npy'}'")

    monkeypatch.setattr(Workspace, "features", broken)
    with pytest.raises(gr.Error, match="unexpected error") as caught:
        channels.explore(ws, 0, "index")
    assert ws.id not in caught.value.message and "redundancy-app" not in caught.value.message


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sealed") / "run"
    assert main(["search", *TINY, *SCOPE, "--heldout-images", "1", "--out", str(out)]) == 0
    return out


def test_verify_never_opens_a_file_outside_the_run(run_dir, tmp_path, monkeypatch):
    import redundancy.runs.rundir as R

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    m = json.loads((run / "manifest.json").read_text())
    m["files"] = {"../../../../etc/shadow": "0" * 64, **m["files"]}
    (run / "manifest.json").write_text(json.dumps(m))
    opened = []
    monkeypatch.setattr(R, "sha256_file", lambda p: opened.append(p) or "0")
    with pytest.raises(RunError, match="not a file of this run; refused"):
        RunDir(run).verify()
    assert opened == []


@pytest.mark.slow
def test_an_emptied_manifest_does_not_vouch_for_edited_files(run_dir, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    repl = json.loads((run / "replacements.json").read_text())
    repl["pairs"] = [{"source": 0, "target": 3}]
    (run / "replacements.json").write_text(json.dumps(repl))
    m = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**m, "files": {}}))
    assert main(["apply", "--run", str(run), "--data", str(SAMPLE), "--out", str(tmp_path / "o")]) == 2
    assert "not covered by manifest.json" in capsys.readouterr().err
    assert main(["figures", str(run), "--out", str(tmp_path / "f"), "--format", "png", "--unverified"]) == 0


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())).hexdigest()


@pytest.mark.slow
def test_apply_never_writes_over_the_datasets_ground_truth(run_dir, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data)
    before = _digest(data)
    for out in (data, data / "Annotations", data / "masks"):
        assert main(["apply", "--run", str(run_dir), "--data", str(data), "--out", str(out)]) == 2
        assert "inside the dataset folder" in capsys.readouterr().err
    assert _digest(data) == before
    assert main(["apply", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "beside")]) == 0
    assert main(["apply", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path / "beside")]) == 0  # again
    assert _digest(data) == before


def test_search_never_replaces_or_deletes_a_users_files(tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "state").mkdir(parents=True)
    (mine / "config.json").write_text('{"my": "settings"}')
    (mine / "state" / "notes.txt").write_text("my notes")
    before = _digest(mine)
    for extra in ([], ["--restart"], ["--overwrite"]):
        assert main(["search", *TINY, *SCOPE, "--out", str(mine), *extra]) == 2
        assert "not a run of this tool" in capsys.readouterr().err
    assert _digest(mine) == before


def test_a_second_search_into_a_busy_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    with search_lock(out):  # a first search holds the folder
        for extra in ([], ["--restart"]):
            assert main(["search", *TINY, *SCOPE, "--out", str(out), *extra]) == 2
            assert "another search is writing to" in capsys.readouterr().err
    assert main(["search", *TINY, *SCOPE, "--out", str(out)]) == 0  # free again once it ends
    assert RunDir(out).finished


def test_compare_checks_its_out_before_the_comparison_runs(tmp_path, capsys, monkeypatch):
    import redundancy.cli.verbs as C

    ran = []
    monkeypatch.setattr(C, "compare_search_modes", lambda *a, **k: ran.append(1) or [])
    (tmp_path / "file").write_text("x")
    assert main(["compare", *TINY, *SCOPE, "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and ran == []


def test_out_of_memory_on_the_cpu_halves_the_batch(tiny, tmp_path, monkeypatch):
    """The CPU allocator's failure is an out-of-memory too: calls shrink and the numbers stay the ones a run of
    that batch size gives (the README's promise, which only held on CUDA)."""
    from redundancy.engine.evalset import EvalSet
    from redundancy.engine.evaluator import Evaluator
    from redundancy.engine.features import FeatureCache
    from redundancy.replace import identity_map, pair_maps

    data = open_dataset(SAMPLE).subset([0, 1, 2])
    evalset = EvalSet.build(tiny, data, FeatureCache(tmp_path / "c"))
    maps = pair_maps(__import__("torch").tensor([[0, 1], [2, 3], [4, 5]]), 256)
    want = Evaluator(tiny, evalset, rows=4).stats(maps).values
    ev = Evaluator(tiny, evalset, rows=16)
    real = Evaluator._rows_stats

    def small_only(self, m, mi, ii, pad, alphas=None):
        if self.rows > 4:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")
        return real(self, m, mi, ii, pad, alphas)

    monkeypatch.setattr(Evaluator, "_rows_stats", small_only)
    got = ev.stats(maps).values
    assert ev.rows_backoff == [8, 4] and np.array_equal(got, want)
    assert np.isfinite(ev.stats(identity_map(256)[None]).values).all()
