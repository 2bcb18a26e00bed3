"""Run format 2 calls every score a score; a run written in format 1 (every score field named mIoU) still loads,
applies and draws, under today's names, without its files changing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from redundancy.bundled import DOMAINS
from redundancy.cli import main
from redundancy.errors import RunError
from redundancy.io import sha256_file
from redundancy.report.figures import render
from redundancy.runs.rundir import LEGACY_FIELDS, RUN_FORMAT, RunDir

from ..conftest import search_argv

OLD = Path(__file__).parent / "format1" / "run"


@pytest.fixture
def old(tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(OLD, run)
    return run


def _hashes(run: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in run.iterdir() if p.is_file()}


def test_a_format_1_run_reads_under_todays_names(old):
    rd = RunDir(old)
    rd.verify()  # its files are as that version wrote them
    assert "run_format" not in rd.config()
    text = "".join(p.read_text() for p in old.glob("*.json")) + (old / "combinations.csv").read_text()
    assert "baseline_miou" in text and "delta_miou" in text  # the fixture really is format 1
    r, t, a, combos = rd.replacements(), rd.topn(), rd.ablation(), rd.combinations()
    for record in (r, t, a, combos):
        assert not set(LEGACY_FIELDS) & set(_keys(record))
    assert r["search"]["patched_score"] >= r["search"]["baseline_score"] and "baseline_score" in t
    assert set(combos[0]) == {"size", "pairs", "score", "loss", "delta_score", "delta_loss"}
    assert {"score", "delta_score"} <= set(a["edits"]["zero 1"]) and "score" in a["baseline"]


def _keys(record) -> list[str]:
    if isinstance(record, dict):
        return [*record, *(k for v in record.values() for k in _keys(v))]
    if isinstance(record, list):
        return [k for v in record for k in _keys(v)]
    return []


@pytest.mark.slow
def test_a_format_1_run_applies_and_draws_and_its_files_stay_as_they_were(old, tmp_path, capsys):
    before = _hashes(old)
    data = tmp_path / "data"  # three images of the run's domain, with masks
    for kind, ext in (("Images", "jpg"), ("Annotations", "png")):
        (data / kind / "blob").mkdir(parents=True)
        for k in range(3):
            shutil.copy(DOMAINS / "gray" / kind / "blob" / f"0{k}.{ext}", data / kind / "blob")
    assert main(["apply", "--run", str(old), "--data", str(data), "--out", str(tmp_path / "applied")]) == 0
    assert "mIoU" in capsys.readouterr().out  # the score under its metric's name
    written = {p.name for p in render([old], tmp_path / "figures", formats=("png",))}
    assert {"ablation.png", "pair_heatmap.png", "topn.png", "combinations.png", "pairs_curve.png"} <= written
    assert _hashes(old) == before


@pytest.mark.slow
def test_a_new_run_is_format_2_with_score_fields(tmp_path):
    out = tmp_path / "run"
    assert main([*search_argv(images=2, heldout=1, top_n=2, channels="0-3"), "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["run_format"] == RUN_FORMAT == 2
    text = "".join(p.read_text() for p in out.glob("*.json")) + (out / "combinations.csv").read_text()
    assert "miou_gain" not in text and "baseline_miou" not in text and "baseline_score" in text
    assert (out / "pair_scores.csv").read_text().startswith("source,target,score_gain,loss_gain\n")


@pytest.mark.parametrize("version", [3, "2", 0, True])
def test_a_run_format_this_version_cannot_read_is_one_line(old, version):
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps(config | {"run_format": version}))
    fix = "upgrade redundancy" if version == 3 else "not a format version"
    with pytest.raises(RunError, match=fix):
        RunDir(old).config()
