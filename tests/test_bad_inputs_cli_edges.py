"""The bad-input catalogue at the CLI's edges (issue 32): folders of the user's own given to `search --out` and
`push --to`, read-only folders, train-demo's flags and files, paper's folder and device, a search estimated above an
hour, and Ctrl-C.

Each catalogue case builds its inputs under a fresh folder and names the message it must get: exit code 2 and one
`error:` line, no traceback, every file that was there before left as it was, and nothing started (no search
session opened, no training step, no paper table measured).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import redundancy.report.paper.run as paper_run
import redundancy.training.demo as demo
from redundancy.cli import estimate, main, verbs
from redundancy.engine import Session
from redundancy.engine.evaluator import Evaluator
from redundancy.errors import RedundancyError
from redundancy.models._registry import DEMO_DIR
from redundancy.report.summary import format_range

from .conftest import ROOT, search_argv
from .test_bad_inputs_both import assert_one_error_line


@dataclass
class Where:
    """A case's folder, and a read-only folder made on demand (a read-only tmpfs where the tests run as root, whom
    file permissions do not stop)."""

    tmp: Path
    request: pytest.FixtureRequest

    def read_only(self) -> Path:
        return self.request.getfixturevalue("read_only")

    def user_folder(self, *names: str) -> Path:
        """A folder of the user's own holding `names` (each a small text file; a name with a / makes its folder)."""
        folder = self.tmp / "mine"
        for name in names:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(f"the user's own {name}\n")
        folder.mkdir(exist_ok=True)
        return folder


@pytest.fixture
def read_only(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("no read-only folder can be made here (running as root, and mount is refused)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def _search(w: Where, out: Path) -> list[str]:
    return [*search_argv(images=2, heldout=1, channels="0-3"), "--out", str(out)]


def _push(w: Where, to: Path, repo: str = "me/found-set") -> list[str]:
    return ["push", str(w.tmp / "some-run"), repo, "--to", str(to)]


def _train(w: Where, *flags: str, out: Path | None = None) -> list[str]:
    return ["train-demo", "--out", str(out or w.tmp / "trained"), *flags]


def _models_json(w: Where, text: str) -> Path:
    folder = w.tmp / "trained"
    folder.mkdir()
    (folder / "models.json").write_text(text)
    return folder


def _paper(w: Where, out: Path, *flags: str) -> list[str]:
    return ["paper", "--tiny", "--out", str(out), *flags]


NOT_A_RUN = "already holds files that are not a run of this tool"
NOT_A_BUNDLE = "already holds files that are not an earlier `push --to`"
NOT_WRITABLE = r"is not writable; pick a writable folder"

CASES: dict[str, tuple[Callable[[Where], list[str]], str]] = {
    # search --out: a run folder is told by the tool's own manifest schema, never by a file name
    "search-out-with-a-users-manifest": (lambda w: _search(w, w.user_folder("manifest.json", "notes.txt")), NOT_A_RUN),
    "search-out-with-a-json-manifest-of-another-schema": (
        lambda w: _search(w, _write(w.user_folder("config.json") / "manifest.json", '{"complete": true, "files": 1}')),
        NOT_A_RUN,
    ),
    "search-out-with-a-users-state-manifest": (
        lambda w: _search(w, w.user_folder("state/manifest.json", "README.md")),
        NOT_A_RUN,
    ),
    "search-out-is-a-file": (lambda w: _search(w, w.user_folder("a.txt") / "a.txt"), "is a file"),
    "search-out-read-only": (lambda w: _search(w, w.read_only()), NOT_WRITABLE),
    # push --to: only a new, empty folder or an earlier bundle; the repo name checked as a real push checks it
    "push-to-a-folder-of-readme-and-config": (
        lambda w: _push(w, w.user_folder("README.md", "config.json")),
        NOT_A_BUNDLE,
    ),
    "push-to-a-folder-with-a-users-manifest": (lambda w: _push(w, w.user_folder("manifest.json")), NOT_A_BUNDLE),
    "push-to-a-file": (lambda w: _push(w, w.user_folder("a.txt") / "a.txt"), "is a file"),
    "push-to-read-only": (lambda w: _push(w, w.read_only()), NOT_WRITABLE),
    "push-to-with-a-repo-name-of-spaces": (
        lambda w: _push(w, w.tmp / "bundle", "not a repo name"),
        "'not a repo name' is not a Hub repository name",
    ),
    "push-to-with-an-empty-repo-name": (lambda w: _push(w, w.tmp / "bundle", ""), "is not a Hub repository name"),
    "push-to-with-a-url-for-a-repo": (
        lambda w: _push(w, w.tmp / "bundle", "https://huggingface.co/me/x"),
        "is not a Hub repository name",
    ),
    # train-demo: every flag and file checked before the first step
    "train-zero-steps": (lambda w: _train(w, "--steps", "0"), r"--steps 0: give a whole number of at least 1"),
    "train-negative-steps": (lambda w: _train(w, "--steps", "-5"), r"--steps -5: give a whole number"),
    "train-nan-learning-rate": (lambda w: _train(w, "--lr", "nan"), r"--lr nan: give a positive learning rate"),
    "train-negative-learning-rate": (lambda w: _train(w, "--lr", "-0.1"), r"--lr -0.1: give a positive"),
    "train-zero-batch": (lambda w: _train(w, "--batch", "0"), r"--batch 0: give a whole number of at least 1"),
    "train-zero-eval-every": (lambda w: _train(w, "--eval-every", "0"), r"--eval-every 0: give a whole number"),
    "train-negative-seed": (lambda w: _train(w, "--seed", "-1"), r"--seed -1: give a whole number from 0"),
    "train-out-is-a-file": (lambda w: _train(w, out=w.user_folder("a.txt") / "a.txt"), "is a file, not a folder"),
    "train-out-read-only": (lambda w: _train(w, out=w.read_only()), NOT_WRITABLE),
    "train-out-under-read-only": (lambda w: _train(w, out=w.read_only() / "new"), r"cannot create --out .*Read-only"),
    "train-corrupt-models-json": (
        lambda w: _train(w, out=_models_json(w, '{"sam_tiny_demo": {"file": ')),
        r"models.json is not a readable demo models.json \(JSONDecodeError\)",
    ),
    "train-models-json-a-list": (
        lambda w: _train(w, out=_models_json(w, "[1, 2, 3]")),
        r"models.json is not a demo models.json \(an object of models",
    ),
    "train-models-json-of-numbers": (
        lambda w: _train(w, out=_models_json(w, '{"sam_tiny_demo": 3}')),
        r"models.json is not a demo models.json",
    ),
    "train-replace-shipped-with-a-nan-rate": (
        lambda w: ["train-demo", "--replace-shipped", "--lr", "nan"],
        r"--lr nan: give a positive learning rate",
    ),
    # paper: its folder and device checked before any table is measured
    "paper-out-read-only": (lambda w: _paper(w, w.read_only()), NOT_WRITABLE),
    "paper-out-under-read-only": (lambda w: _paper(w, w.read_only() / "report"), r"cannot create --out .*Read-only"),
    "paper-unknown-device": (lambda w: _paper(w, w.tmp / "report", "--device", "tpu"), "unknown device 'tpu'"),
    "paper-out-is-a-file": (lambda w: _paper(w, w.user_folder("a.txt") / "a.txt"), "not a paper report"),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path.parent


def _files(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _never(what: str):
    def refuse(*_a, **_k):
        raise AssertionError(f"{what} started for an input that should have been refused")

    return refuse


@pytest.mark.parametrize("case", CASES)
def test_the_cli_refuses_in_one_line_and_keeps_the_users_files(case, tmp_path, request, monkeypatch, capsys):
    build, message = CASES[case]
    argv = build(Where(tmp_path, request))
    monkeypatch.setattr(verbs.Session, "open", _never("a search session"))
    monkeypatch.setattr(demo, "build_backend", _never("training"))
    monkeypatch.setattr(paper_run, "_run", _never("the paper's measurement"))
    before = _files(tmp_path)
    shipped = _files(DEMO_DIR)
    assert main(argv) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert _files(tmp_path) == before and _files(DEMO_DIR) == shipped  # nothing of the user's replaced or removed


# ---------- Ctrl-C: one line, exit code 130, whatever was saved stays for the rerun ----------


def _interrupt(*_a, **_k):
    raise KeyboardInterrupt


def _argv_of(verb: str, tmp: Path) -> list[str]:
    if verb == "search":
        return [*search_argv(images=2, heldout=1, channels="0-3"), "--out", str(tmp / "run")]
    if verb == "apply":
        return ["apply", "--run", str(tmp / "run"), "--data", str(tmp / "data"), "--out", str(tmp / "out")]
    return ["paper", "--tiny", "--out", str(tmp / "report")]


@pytest.mark.parametrize(
    "verb, module, work",
    [("search", verbs.Session, "open"), ("apply", verbs, "apply_run"), ("paper", paper_run, "_run")],
)
def test_ctrl_c_is_one_line_and_exit_code_130(verb, module, work, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(module, work, _interrupt)  # Ctrl-C while the verb's work runs
    try:
        code = main(_argv_of(verb, tmp_path))
    except KeyboardInterrupt:  # caught here: it would stop the whole test session
        pytest.fail("Ctrl-C escaped main() with a traceback")
    assert code == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "interrupted; rerun the same command to resume" and "Traceback" not in err


@pytest.mark.slow
def test_ctrl_c_during_a_real_search_stops_it_in_one_line(tmp_path):
    """SIGINT to `python -m redundancy search` once its pair scoring has visibly started."""
    out = tmp_path / "run"
    argv = [*search_argv(images=4, heldout=1, channels="every:16"), "--out", str(out)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "redundancy", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # the child takes Ctrl-C as a terminal gives it, even where this process ignores SIGINT (an ignored signal
        # is inherited, and Python then installs no KeyboardInterrupt: the search ran on to exit 0 in CI)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    err = b""
    try:
        while b"scoring pairs" not in err:  # the bar of the long stage: the search is under way
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, err.decode()  # it ended before scoring began
            err += chunk
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (err + rest).decode()
    assert proc.returncode == 130, text
    assert text.strip().splitlines()[-1] == "interrupted; rerun the same command to resume" and "Traceback" not in text


# ---------- the estimate before a search, and the question above an hour ----------


class Terminal:
    """A stdin where the user answers `answer` (`tty`: at a terminal; else a pipe or a job scheduler's nothing)."""

    def __init__(self, answer: str, tty: bool = True):
        self.answer, self.tty, self.asked = answer, tty, 0

    def isatty(self) -> bool:
        return self.tty

    def readline(self) -> str:
        self.asked += 1
        if self.tty:  # a terminal echoes what the user typed, ending the question's line
            print(self.answer, file=sys.stderr)
        return self.answer + "\n"


class Stopped(RedundancyError):
    """Where a test stops a search: its pair scoring was about to start."""


def _search_until_the_work(monkeypatch, tmp_path, *flags: str) -> tuple[int, list]:
    """A small search run up to the point its pair scoring would start (`run_search` stops it there: exit code 2)."""
    started = []

    def stop(*_a, **_k):
        started.append(1)
        raise Stopped("stopped where the search's work starts")

    monkeypatch.setattr(verbs, "run_search", stop)
    code = main([*search_argv(images=2, heldout=1, channels="0-3"), "--out", str(tmp_path / "run"), *flags])
    return code, started


def test_a_small_search_is_announced_without_paying_for_timing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(Evaluator, "seconds_per_row", _never("timing decoder calls"))
    code, started = _search_until_the_work(monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and started
    line = next(x for x in err.splitlines() if x.startswith("estimated"))
    assert line.startswith("estimated: a short search on cpu (12 pairs x 2 search images, ") and "warning" not in err


def _rows_take(monkeypatch, seconds: float) -> None:
    """Every decoder row as if it took `seconds`, and timed however small the search (no timing share)."""
    monkeypatch.setattr(estimate, "MEASURE_SHARE", 0)
    monkeypatch.setattr(Evaluator, "seconds_per_row", lambda self: seconds)
    monkeypatch.setattr(Session, "time_range", lambda self, s: (0.8 * s, 1.35 * s))  # the spread of real calls


def test_the_estimate_is_said_before_the_search_starts(tmp_path, monkeypatch, capsys):
    _rows_take(monkeypatch, 0.5)
    code, started = _search_until_the_work(monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and started
    line = next(x for x in err.splitlines() if x.startswith("estimated"))
    rows = int(line.split(", ")[-1].split()[0].replace(",", ""))
    span = format_range(0.8 * rows * 0.5, 1.35 * rows * 0.5)
    assert f"estimated {span} on cpu: 12 pairs x 2 search images" in line, line


def _slow_rows(monkeypatch) -> None:
    """Every decoder row as if it took 100 s: this small search is estimated at hours."""
    _rows_take(monkeypatch, 100.0)


def test_a_search_above_an_hour_asks_at_a_terminal_and_no_means_nothing_runs(tmp_path, monkeypatch, capsys):
    _slow_rows(monkeypatch)
    terminal = Terminal("n")
    monkeypatch.setattr(sys, "stdin", terminal)
    code, started = _search_until_the_work(monkeypatch, tmp_path)
    assert code == 2 and not started and terminal.asked == 1
    assert_one_error_line(capsys.readouterr().err, r"search not started \(estimated [\d.]+ (min|h)\).*pass --yes")
    assert not (tmp_path / "run" / "state").exists()


def test_yes_at_the_terminal_goes_on(tmp_path, monkeypatch, capsys):
    _slow_rows(monkeypatch)
    terminal = Terminal("y")
    monkeypatch.setattr(sys, "stdin", terminal)
    assert _search_until_the_work(monkeypatch, tmp_path)[1] and terminal.asked == 1
    monkeypatch.setattr(sys, "stdin", terminal := Terminal("n"))
    assert _search_until_the_work(monkeypatch, tmp_path, "--yes")[1] and terminal.asked == 0  # --yes: not asked


def test_a_search_above_an_hour_without_a_terminal_warns_and_goes_on(tmp_path, monkeypatch, capsys):
    _slow_rows(monkeypatch)
    monkeypatch.setattr(sys, "stdin", piped := Terminal("n", tty=False))
    code, started = _search_until_the_work(monkeypatch, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and started and piped.asked == 0
    assert "warning: this search runs for more than an hour" in err and "Go on?" not in err


# ---------- --replace-shipped: the old model kept, both scores said, a worse one refused ----------


@pytest.mark.slow
def test_replacing_a_shipped_model_keeps_the_old_one_and_refuses_a_worse_one(tmp_path, monkeypatch):
    full_test_set = demo.source_test_set
    monkeypatch.setattr(demo, "source_test_set", lambda: full_test_set(12))  # both models scored on 12 images
    folder = tmp_path / "shipped"
    folder.mkdir()
    for name in ("sam_tiny_demo.pt", "models.json"):
        shutil.copy2(DEMO_DIR / name, folder / name)
    shipped = _files(folder)
    cfg = demo.TrainConfig(steps=2, batch=2, eval_every=2, warmup=1)  # two steps: far below the shipped model
    said: list[str] = []
    with pytest.raises(demo.RunError, match=r"scores source miou [\d.]+, below the [\d.]+ .*pass --force"):
        demo.train_and_save(cfg, folder, log=said.append, keep_better=True)
    assert _files(folder) == shipped  # nothing replaced
    assert any(re.fullmatch(r"source miou: [\d.]+ for the model in .* now, [\d.]+ for the new one", m) for m in said)
    demo.train_and_save(cfg, folder, log=said.append, keep_better=True, force=True)
    assert (folder / "sam_tiny_demo.pt.bak").read_bytes() == shipped[folder / "sam_tiny_demo.pt"]
    assert (folder / "models.json.bak").read_bytes() == shipped[folder / "models.json"]
    assert (folder / "sam_tiny_demo.pt").read_bytes() != shipped[folder / "sam_tiny_demo.pt"]


def test_train_demo_replace_shipped_compares_and_force_replaces(tmp_path, monkeypatch):
    """The CLI asks the shipped folder to be compared (and only that folder), and passes --force on."""
    calls = []
    monkeypatch.setattr(verbs, "train_and_save", lambda cfg, out, **kw: calls.append((Path(out), kw)))
    assert main(["train-demo", "--replace-shipped", "--force"]) == 0
    assert main(["train-demo", "--out", str(tmp_path / "mine")]) == 0
    assert calls == [
        (DEMO_DIR, {"keep_better": True, "force": True}),
        (tmp_path / "mine", {"keep_better": False, "force": False}),
    ]
