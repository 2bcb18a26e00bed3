"""The CLI end to end on sam_tiny + the sample data: run files, exact ablation, determinism, apply."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from redundancy.cli import main
from redundancy.runs.rundir import RUN_FILES

from ..conftest import search_argv, write_pair

SEARCH = search_argv(heldout=4)
DATA = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "assets" / "sample")


@pytest.fixture(scope="module")
def run(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main([*SEARCH, "--data", str(sample), "--sources", "every:32", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_search_writes_every_run_file(run):
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and set(RUN_FILES) <= set(manifest["files"])
    config = json.loads((run / "config.json").read_text())
    repl = json.loads((run / "replacements.json").read_text())
    assert config["weights"]["label"] == "random weights (seed 0)" == repl["weights_label"]
    assert config["protocol"] == "perseg" and config["config"]["prompt"] == "none"
    assert config["pairs_scored"] == 8 * 7 and len(config["data"]["search_set"]) == 4
    assert len(config["data"]["sha256"]) == 64
    scores = np.load(run / "pair_scores.npy")
    assert scores.shape == (256, 256) and scores.dtype == np.float32
    assert np.isnan(np.diag(scores)).all() and (~np.isnan(scores)).sum() == 56
    top = json.loads((run / "topn.json").read_text())["top"]
    assert len(top) == 3 and top[0]["gain"] == pytest.approx(float(np.nanmax(scores)))
    rows = (run / "combinations.csv").read_text().splitlines()
    assert rows[0].startswith("size,pairs,score,loss,delta_score") and len(rows) == 1 + 7
    assert repl["search"]["images"] == 4 and repl["heldout"]["images"] == 4
    best = max(float(r.split(",")[2]) for r in rows[1:])
    if repl["pairs"]:
        assert repl["search"]["patched_score"] == pytest.approx(best)
        assert repl["search"]["patched_score"] > repl["search"]["baseline_score"]
    else:
        assert best <= repl["search"]["baseline_score"] and repl["note"]


@pytest.mark.slow
def test_ablate_replace_reproduces_the_pair_score_exactly(run, capsys):
    scores = np.load(run / "pair_scores.npy")
    i, j = (int(v) for v in np.unravel_index(np.nanargmax(scores), scores.shape))
    k, m = 64, 224
    assert main(["ablate", "--run", str(run), "--replace", f"{i}:{j},{k}:{m}", "--zero", "6", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    deltas = {e["edit"]: e["delta_score"] for e in out["edits"]}
    assert np.float32(deltas[f"replace {i}<-{j}"]) == scores[i, j]
    assert np.float32(deltas[f"replace {k}<-{m}"]) == scores[k, m]
    assert out["weights_label"] == "random weights (seed 0)" and "zero 6" in deltas


@pytest.mark.slow
def test_same_seed_gives_an_identical_run(run, sample, tmp_path):
    assert main([*SEARCH, "--data", str(sample), "--sources", "every:32", "--out", str(tmp_path)]) == 0
    for name in ("pair_scores.npy", "topn.json", "combinations.csv", "replacements.json"):
        assert (tmp_path / name).read_bytes() == (run / name).read_bytes(), name


@pytest.mark.slow
def test_compiled_tf32_search_records_its_arithmetic_and_finds_the_same_set(run, sample, tmp_path):
    argv = [*SEARCH, "--data", str(sample), "--sources", "every:32", "--precision", "tf32", "--compile"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert (cfg["config"]["precision"], cfg["config"]["compile"]) == ("tf32", True)
    got, want = (json.loads((d / "replacements.json").read_text()) for d in (tmp_path, run))
    assert got["pairs"] == want["pairs"]
    np.testing.assert_allclose(np.load(tmp_path / "pair_scores.npy"), np.load(run / "pair_scores.npy"), atol=1e-3)


@pytest.mark.slow
def test_apply_writes_patched_masks_and_a_zip(run, sample, tmp_path, capsys):
    assert main(["apply", "--run", str(run), "--data", str(sample), "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 32 and summary["patched_score"] is not None
    with zipfile.ZipFile(tmp_path / "predictions.zip") as zf:
        masks = [n for n in zf.namelist() if n.startswith("masks/")]
    assert len(masks) == 32 and all(n.endswith(".png") for n in masks)
    assert len(list((tmp_path / "masks").rglob("*.png"))) == 32


@pytest.mark.slow
def test_table_output_and_models_listing(run, capsys):
    assert main(["models"]) == 0
    assert "sam_vit_h" in capsys.readouterr().out
    assert main(["ablate", "--run", str(run), "--zero", "6,216"]) == 0
    text = capsys.readouterr().out
    assert "random weights" in text and "zero 216" in text and "baseline" in text


TINY = ["--model", "sam_tiny", "--random-init", "--data", DATA]  # the flags every case below shares


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ablate", "--model", "nope", "--random-init", "--data", DATA, "--zero", "1"], "unknown model"),
        (["ablate", *TINY, "--zero", "300", "--search-images", "2"], "out of range"),
        (["ablate", *TINY, "--zero", "x"], "not a channel"),
        (["ablate", *TINY, "--search-images", "2", "--replace", "4:4"], "itself"),
        (["search", *TINY, "--search-images", "99", "--out", "OUT"], "32 or fewer search images"),
        (["search", "--model", "sam_tiny", "--random-init", "--data", "/no/such/dir", "--out", "OUT"], "no such"),
        (["apply", "--run", "/no/run", "--data", DATA, "--out", "OUT"], "/no/run: no such folder"),
        (["search", *TINY, "--seed", "12345678901234567890123", "--out", "OUT"], "out of range"),
        (["search", *TINY, "--search-images", "2", "--batch-rows", "-4", "--out", "OUT"], "from 1 to"),
        (["search", *TINY, "--search-images", "2", "--cache", "/etc/passwd", "--out", "OUT"], "is a file"),
    ],
)
def test_bad_input_is_one_clear_line(argv, message, capsys, tmp_path):
    argv = [str(tmp_path / "run") if a == "OUT" else a for a in argv]  # a fresh folder: only the named fault
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


@pytest.mark.slow
def test_apply_to_images_without_masks(run, sample, tmp_path, capsys):
    folder = tmp_path / "new"
    folder.mkdir()
    for k in range(3):
        (folder / f"img{k}.jpg").write_bytes((sample / "Images" / "ring" / f"0{k}.jpg").read_bytes())
    assert main(["apply", "--run", str(run), "--data", str(folder), "--out", str(tmp_path / "out"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 3 and summary["baseline_score"] is None  # no GT: predictions only
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["img0.png", "img1.png", "img2.png"]


@pytest.mark.slow
def test_compare_prints_and_writes_the_mode_table(tmp_path, capsys):
    argv = ["compare", *search_argv(channels="every:64")[1:], "--candidates", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "random weights (seed 0): baseline mIoU" in out and out.count("/3") == 3
    lines = (tmp_path / "modes.csv").read_text().splitlines()
    assert lines[0].startswith("mode,overlap,top_n,spearman,scored") and [r.split(",")[0] for r in lines[1:]] == [
        "exact",
        "taylor",
        "halving",
    ]
    assert lines[1].split(",")[1] == "3/3" and lines[2].split(",")[4] == "4"  # exact finds itself; 4 rescored
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["scored"] == 12 and rows[0]["cost"] == 1.0


@pytest.mark.slow
def test_search_reads_a_zip_given_on_the_command_line(sample, tmp_path, capsys):
    import shutil

    archive = shutil.make_archive(str(tmp_path / "sample"), "zip", sample)
    out = tmp_path / "run"
    assert main([*SEARCH, "--data", archive, "--out", str(out), "--json"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["images"] == 32 and config["data"]["layout"] == "perseg"


def _copy(run, tmp_path):
    import shutil

    return Path(shutil.copytree(run, tmp_path / "copy"))


@pytest.mark.slow
def test_apply_refuses_unfinished_or_altered_runs_unless_told(run, sample, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    argv = ["apply", "--run", str(copy), "--data", str(sample), "--out", str(tmp_path / "o")]
    (copy / "pair_scores.csv").write_text("source,target\n")  # edited after the run
    assert main(argv) == 2
    assert "pair_scores.csv does not match its sha256" in capsys.readouterr().err
    assert main([*argv, "--unverified"]) == 0
    (copy / "manifest.json").unlink()  # an interrupted search never wrote it
    assert main(argv) == 2
    assert "not a finished run" in capsys.readouterr().err


@pytest.mark.slow
def test_ablate_from_another_folder_uses_the_runs_absolute_data_path(tmp_path, monkeypatch, capsys):
    root = Path(DATA).parents[1]
    monkeypatch.chdir(root)
    out = tmp_path / "rel"
    assert (
        main(
            [
                *search_argv(images=2, heldout=1, top_n=1, channels="every:128"),
                "--data",
                "assets/sample",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    monkeypatch.chdir(tmp_path)
    assert main(["ablate", "--run", str(out), "--zero", "3"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert "ablation.json" in manifest["files"]  # the ablation is part of the run and hashed with it
    other = tmp_path / "other"
    write_pair(other, "a")
    write_pair(other, "b")
    assert main(["ablate", "--run", str(out), "--zero", "3", "--data", str(other)]) == 2
    assert "is not the data this run searched" in capsys.readouterr().err
    assert main(["ablate", "--run", str(out), "--zero", "3", "--data", str(root / "assets" / "sample")]) == 0


@pytest.mark.slow
def test_a_finished_run_of_other_settings_is_not_overwritten_silently(tmp_path, capsys):
    argv = [*search_argv(images=2, heldout=1, top_n=1, channels="every:128"), "--out", str(tmp_path)]
    assert main(argv) == 0
    assert main(["ablate", "--run", str(tmp_path), "--zero", "3"]) == 0
    capsys.readouterr()
    other = [*argv, "--seed", "1"]
    assert main(other) == 2
    assert "finished run of other settings" in capsys.readouterr().err
    assert (tmp_path / "ablation.json").exists()
    assert main([*other, "--overwrite"]) == 0
    assert not (tmp_path / "ablation.json").exists()  # the old run's files went with it
    assert json.loads((tmp_path / "config.json").read_text())["config"]["seed"] == 1
    capsys.readouterr()
    stamp = (tmp_path / "pair_scores.npy").stat().st_mtime_ns
    assert main(other) == 0 and "already holds this search, finished" in capsys.readouterr().out  # nothing redone
    assert (tmp_path / "pair_scores.npy").stat().st_mtime_ns == stamp
    assert main([*other, "--restart"]) == 0 and "already holds" not in capsys.readouterr().out  # asked: redone


@pytest.mark.parametrize(
    "argv, said",
    [
        (["serch"], "did you mean 'search'? See"),
        (["search", "--mode", "exat", "--data", "d", "--out", "o"], "did you mean 'exact'?"),
        (["search", "--modle", "x", "--data", "d", "--out", "o"], "did you mean '--mode' or '--model'?"),
    ],
)
def test_a_mistyped_verb_choice_or_flag_gets_a_suggestion(argv, said, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and said in err and err.count("\n") == 1  # one line


def test_a_failed_command_leaves_no_folder_it_made(tmp_path, capsys):
    made, mine = tmp_path / "new", tmp_path / "mine"
    mine.mkdir()  # a folder of the user's own stays, empty or not
    for out in (made, mine):
        argv = [
            "search",
            "--model",
            "sam_tiny",
            "--random-init",
            "--data",
            str(tmp_path / "nothing"),
            "--out",
            str(out),
        ]
        assert main(argv) == 2 and "no such file or folder" in capsys.readouterr().err
    assert not made.exists() and mine.is_dir()
