"""The CLI a newcomer meets: defaults that work offline, help that explains itself, each mistake answered in one line
that names the real problem, and tables that say what their rows mean."""

from __future__ import annotations

import json
import re
import shlex
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from redundancy.cli import main, verbs
from redundancy.cli.commandline import command_line
from redundancy.cli.parser import TRAIN_OUT, build_parser, search_settings, session_config
from redundancy.engine import SearchSettings, SessionConfig
from redundancy.engine.confidence import MIN_GROUPS
from redundancy.errors import DeviceError
from redundancy.models import DEFAULT_MODEL, check_device
from redundancy.models import _weights as W
from redundancy.models._registry import DEMO_DIR
from redundancy.runs.apply import ApplyResult
from redundancy.runs.rundir import RUN_FILES

from ..conftest import ROOT, SAMPLE, search_argv

VERBS = tuple(next(a for a in build_parser()._actions if a.dest == "command").choices)  # every verb the parser has


def _help(capsys, *verb: str) -> str:
    """`--help` of a verb (or of the whole command), with argparse's line wrapping undone."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([*verb, "--help"])
    return " ".join(capsys.readouterr().out.split())


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "usage:" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A small finished search (random sam_tiny, 4 search images) to ablate and apply."""
    out = tmp_path_factory.mktemp("run")
    assert main([*search_argv(heldout=2, top_n=2, channels="every:64"), "--out", str(out)]) == 0
    return out


# ---------- defaults ----------


@pytest.mark.slow
def test_a_search_with_only_data_and_out_runs_without_the_network(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    argv = ["search", "--data", str(SAMPLE), "--search-images", "2", "--heldout-images", "1", "--top-n", "1"]
    assert main([*argv, "--sources", "every:128", "--targets", "every:128", "--out", str(tmp_path)]) == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model"] == "sam_tiny_demo" and config["weights"]["kind"] == "demo"


def test_a_failed_download_names_every_way_out(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    monkeypatch.setattr(W, "prefer_hub", lambda ref: False)  # Meta's URL, not a Hub copy someone cached
    assert main(["search", "--model", "sam_vit_b", "--data", str(SAMPLE), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "could not download" in line and "--checkpoint PATH" in line and "--random-init" in line
    assert "--model sam_tiny_demo or --model sam2_tiny_demo" in line


def test_train_demo_writes_a_new_folder_and_the_shipped_one_only_when_asked(tmp_path, monkeypatch, capsys):
    written: list[Path] = []
    monkeypatch.setattr(verbs, "train_and_save", lambda cfg, out, **_: written.append(Path(out)))
    monkeypatch.chdir(tmp_path)
    assert (
        main(["train-demo"]) == 0 and written == [TRAIN_OUT] and DEMO_DIR.resolve() not in TRAIN_OUT.resolve().parents
    )
    assert main(["train-demo", "--replace-shipped"]) == 0 and written[-1] == DEMO_DIR
    assert main(["train-demo", "--out", str(DEMO_DIR)]) == 2 and len(written) == 2  # refused: nothing trained
    assert "is the shipped demo folder" in _one_error_line(capsys.readouterr().err)


def test_command_line_round_trips_the_default_model_and_the_compare_verb():
    cfg = SessionConfig(model=DEFAULT_MODEL, data="assets/domains/gray", search_images=16)
    settings = SearchSettings(top_n=6)
    for verb, out in (("search", "run"), ("compare", None)):
        line = command_line(verb, cfg, settings, out=out)
        args = build_parser().parse_args(shlex.split(line)[3:])
        assert session_config(args) == cfg and search_settings(args) == settings and args.command == verb


# ---------- help ----------


def test_help_lists_every_verb_with_what_it_does(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert {"models", "search", "compare", "ablate", "figures", "apply", "push", "train-demo"} <= set(VERBS)
    for verb in VERBS:
        assert re.search(rf"^ {{4}}{re.escape(verb)}(\s|$)", text, re.M), verb
    assert "zero trained parameters" in text  # what the tool is, before any verb
    assert main(["models"]) == 0  # the verbs listed are the verbs that run


def test_usage_and_defaults_say_what_is_required_and_what_is_assumed(capsys):
    search = _help(capsys, "search")
    assert " --data DATA " in search and "[--data DATA]" not in search  # required: no brackets
    assert "[--device {auto,cpu,cuda,cuda:N}]" in search
    assert re.search(r"--seed SEED .*?\(default: 0\)", search)
    assert "(default: sam_tiny_demo)" in search
    ablate = _help(capsys, "ablate")
    assert "[--data DATA]" in ablate and "(required without --run)" in ablate  # --run can stand in for it
    assert "(default: )" not in ablate


def test_help_explains_its_jargon(capsys):
    search = _help(capsys, "search")
    assert "a row being one (channel edit, image) pass through the head" in search  # "decoder rows"
    assert "ground-truth (GT) masks" in search
    assert "head split of the data (images set aside only to fit the head" in search
    ablate = _help(capsys, "ablate")
    assert "(the paper's Table 1: a channel zeroed, swapped, replaced or scaled, one edit at a time)" in ablate
    assert "useful when the 95% interval of the change is below 0" in ablate


# ---------- mistakes: one line naming the real problem ----------


def test_a_missing_option_is_one_line_naming_it(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--data", str(SAMPLE)])
    assert exit_.value.code == 2
    assert "missing --out: run directory to write" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main([])
    assert "missing VERB: one of " + ", ".join(VERBS) in _one_error_line(capsys.readouterr().err)


def test_the_device_is_one_of_its_choices(capsys):
    argv = ["search", "--data", "d", "--out", "o", "--device"]
    assert build_parser().parse_args([*argv, "cuda:1"]).device == "cuda:1"
    assert build_parser().parse_args([*argv, "CPU"]).device == "cpu"
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "gpu"])
    assert "unknown device 'gpu'; use auto, cpu, cuda or cuda:N" in _one_error_line(capsys.readouterr().err)
    with pytest.raises(DeviceError, match="cuda:N"):
        check_device("cuda:first")


def _class_folders(t: Path) -> Path:
    """Images in two subfolders and no masks: what someone with unlabelled photos might pass."""
    for c in ("cats", "dogs"):
        (t / "photos" / c).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((32, 32, 3), 60 * k, np.uint8)).save(t / "photos" / c / f"{k}.png")
    return t / "photos"


def _fake_run(t: Path) -> Path:
    """A folder holding the files a search writes (as a run folder holds them)."""
    (t / "myrun").mkdir()
    for name in RUN_FILES:
        (t / "myrun" / name).write_bytes(b"x")
    return t / "myrun"


NO = "/no/such/run"
DATA = str(SAMPLE)
CASES = {
    "apply --run on a missing folder": (
        lambda t: ["apply", "--run", NO, "--data", DATA, "--out", str(t / "o")],
        "/no/such/run: no such folder",
    ),  # fmt: skip
    "ablate --run on a missing folder": (lambda t: ["ablate", "--run", NO, "--zero", "1"], "no such folder"),
    "figures of a missing folder": (lambda t: ["figures", NO, "--out", str(t / "f")], "no such folder"),
    "apply --run on a dataset": (
        lambda t: ["apply", "--run", DATA, "--data", DATA, "--out", str(t / "o")],
        "is not a run folder: it holds none of the files a search writes. It looks like a dataset",
    ),
    "ablate --run on a dataset, unverified": (
        lambda t: ["ablate", "--run", DATA, "--zero", "1", "--unverified"],
        "is not a run folder.*goes to --data",
    ),
    "figures of a dataset": (lambda t: ["figures", DATA, "--out", str(t / "f")], "is not a run folder"),
    "figures of a file": (
        lambda t: ["figures", str(ROOT / "README.md"), "--out", str(t / "f")],
        "is a file, not a run",
    ),
    "a folder of datasets as --data": (
        lambda t: ["search", "--data", str(ROOT / "assets"), "--out", str(t / "o")],
        r"assets is a folder of datasets \(.*sample/.*\), not one dataset; give one, e.g. ",
    ),
    "a text file as --data": (
        lambda t: ["search", "--data", str(ROOT / "README.md"), "--out", str(t / "o")],
        "README.md is a file, not a dataset: give a dataset folder or a .zip of one",
    ),
    "images without masks for a segmentation model": (
        lambda t: ["search", "--data", str(_class_folders(t)), "--out", str(t / "o")],
        r"sam_tiny_demo does segment, but the data reads as classify data \(class folders cats/, dogs/ of images, "
        r"no masks\); for segment give images/ \+ masks/",
    ),
    "a run folder as --data": (
        lambda t: ["search", "--data", str(_fake_run(t)), "--out", str(t / "o")],
        "myrun holds a search's results \\(a run folder of this tool\\), not a dataset",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_mistake_gets_one_line_naming_the_real_problem(case, tmp_path, capsys):
    argv, message = CASES[case]
    assert main(argv(tmp_path)) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: ") and re.search(message, line), line
    assert "interrupted" not in line and "class folder" not in line.split("reads as")[0]  # not the wrong problem


def test_bundled_data_named_from_another_folder_is_the_bundled_folder(tmp_path, monkeypatch, capsys):
    from redundancy.bundled import DOMAINS
    from redundancy.cli.verbs import _data

    monkeypatch.chdir(tmp_path)  # the README's `--data assets/...` from a folder with no assets/ of its own
    assert _data("assets/domains/gray") == str(DOMAINS / "gray")
    assert "using the bundled dataset" in capsys.readouterr().err
    (tmp_path / "assets" / "domains" / "gray").mkdir(parents=True)  # a folder of the user's own comes first
    assert _data("assets/domains/gray") == "assets/domains/gray"
    for outside in ("assets/../../etc", "assets/no-such-domain"):
        assert _data(outside) == outside  # not bundled: left as given, to be refused as missing
    assert main(["search", "--data", "assets/no-such-domain", "--out", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in _one_error_line(capsys.readouterr().err)


# ---------- tables that say what their rows mean ----------

ROW = re.compile(
    r"^zero (\d+) +(\d+\.\d{2}) +([+-]\d+\.\d{2}) +([+-]\d+\.\d{2}) to ([+-]\d+\.\d{2}) +\d+\.\d{4} +"
    r"(useful|redundant|harmful)$"
)


@pytest.mark.slow
def test_the_zero_sweep_labels_every_channel_and_sorts_by_the_change(run, capsys):
    assert main(["ablate", "--run", str(run), "--zero", "all"]) == 0
    text = capsys.readouterr().out
    rows = [ROW.match(line) for line in text.splitlines() if line.startswith("zero ")]
    assert len(rows) == 256 and all(rows), [line for line in text.splitlines() if line.startswith("zero ")][:3]
    assert sorted(int(r[1]) for r in rows) == list(range(256))
    changes = [float(r[3]) for r in rows]
    assert changes == sorted(changes, reverse=True)  # the most harmful channels first
    groups = int(re.search(r"here (\d+) groups", text)[1])
    for r in rows:  # the verdict is what the interval says (an end printed as 0.00 may lie on either side)
        lo, hi, verdict = float(r[4]), float(r[5]), r[6]
        if groups < MIN_GROUPS:  # too few to tell, as search says: the middle word whatever the interval
            assert verdict == "redundant" and "too few to tell" in text
            continue
        assert verdict != "useful" or hi <= 0
        assert verdict != "harmful" or lo >= 0
        assert verdict != "redundant" or lo <= 0 <= hi
        assert (hi < 0) <= (verdict == "useful") and (lo > 0) <= (verdict == "harmful")
    counts = {v: sum(r[6] == v for r in rows) for v in ("harmful", "redundant", "useful")}
    assert f"256 edits, sorted by the change: {counts['harmful']} harmful, {counts['redundant']} redundant, " in text
    assert "useful (zeroing makes the score worse)" in text and "harmful (zeroing makes it better)" in text


def test_single_edits_keep_their_order_and_say_whether_they_help(run, capsys):
    assert main(["ablate", "--run", str(run), "--zero", "6", "--replace", "3:7", "--json"]) == 0
    edits = json.loads(capsys.readouterr().out)["edits"]
    assert [e["edit"] for e in edits] == ["zero 6", "replace 3<-7"]
    assert edits[0]["verdict"] in ("useful", "redundant", "harmful")
    assert edits[1]["verdict"] in ("hurts", "within noise", "helps")
    assert all(e["delta_lo"] <= e["delta_hi"] for e in edits)


def test_a_run_folder_given_to_apply_as_its_images_is_one_line(run, tmp_path, capsys):
    assert main(["apply", "--run", str(run), "--data", str(run), "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "holds a search's results (a run folder of this tool), not a dataset" in line and "CSV" not in line


def test_apply_reports_with_the_metrics_decimals_and_pair_grammar(run, tmp_path, capsys):
    assert main(["apply", "--run", str(run), "--data", str(SAMPLE), "--out", str(tmp_path / "o")]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    pairs = len(json.loads((run / "replacements.json").read_text())["pairs"])
    assert re.fullmatch(rf"mIoU \d+\.\d\d -> \d+\.\d\d \([+-]\d+\.\d\d\) with {pairs} pairs?", line), line
    one = ApplyResult(12, Path("p.zip"), 41.6667, 20.0, [(1, 2)], "accuracy", "accuracy", 2)
    assert one.score_text() == "accuracy 41.67 -> 20.00 (-21.67) with 1 pair"
    rmse = ApplyResult(3, Path("p.zip"), 0.25, 0.2, [(1, 2), (3, 4)], "rmse", "RMSE", 4)
    assert rmse.score_text() == "RMSE 0.2500 -> 0.2000 (-0.0500) with 2 pairs"
