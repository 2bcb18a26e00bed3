"""`redundancy paper --tiny`: every table of the paper measured on the demo models, written as a report."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import re

import pytest

from redundancy.cli import main
from redundancy.report.paper import TINY, read_report
from redundancy.report.paper.run import ORDER
from redundancy.report.paper.tables import OURS

pytestmark = pytest.mark.slow  # every test here shares a set-up that costs a search or a server


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    assert main(["paper", "--tiny", "--out", str(out), "--device", "cpu"]) == 0
    return out


def _numbers(row: dict) -> list[float]:
    found = []
    for value in row.values():
        with contextlib.suppress(ValueError):  # text cells: names, intervals, pairs
            found.append(float(value))
    return [v for v in found if math.isfinite(v)]


def test_every_table_has_measured_rows_with_numbers(report):
    record = read_report(report)
    assert list(record["tables"]) == list(ORDER) and record["size"]["name"] == "tiny"
    for key in ORDER:
        with open(report / f"{key}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        ours = [r for r in rows if r["source"] == OURS]
        assert ours, key
        assert all(_numbers(r) for r in ours), key


def test_the_report_names_its_date_hardware_and_what_the_models_are(report):
    text = (report / "report.md").read_text()
    record = json.loads((report / "paper.json").read_text())
    assert record["date"] in text and record["hardware"] in text
    assert "not SAM, not SAM2, not DINOv2" in text and "paper (arXiv 2504.08915)" in text
    for name in record["figures"]:
        assert (report / name).read_bytes()[:4] == b"\x89PNG" and f"]({name})" in text


def test_paper_rows_are_the_papers_and_ours_are_measured(report):
    """The paper's numbers appear only in rows marked as the paper's; Table 1 names the paper's channel 216."""
    with open(report / "table1_single_channel.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    paper = [r for r in rows if r["source"] != OURS]
    assert any(r["channel"] == "216" and r["row"] == "improves" for r in paper)
    assert {r["model"] for r in rows if r["source"] == OURS} == {TINY.seg_models[0]}


def test_row_names_agree_with_their_verdicts_and_no_meaningless_number_is_shown(report):
    """Table 1 calls a row 'improves' or 'lowers' only where its interval says so; Table 4 at --tiny leaves the
    memory rise it cannot measure in one process blank, and says why; Table 6 shows accuracy at 2 decimals."""
    from redundancy.report.paper.segment import CLAIMS

    with open(report / "table1_single_channel.csv", newline="") as f:
        ours = [r for r in csv.DictReader(f) if r["source"] == OURS and r["row"] != "baseline"]
    assert len(ours) == 5 and all(r["row"] not in CLAIMS or CLAIMS[r["row"]] == r["verdict"] for r in ours)
    with open(report / "cost.csv", newline="") as f:
        cost = [r for r in csv.DictReader(f) if r["source"] == OURS]
    assert cost and all(r["above the loaded model (GB)"] == "" for r in cost)
    text = (report / "report.md").read_text()
    assert "is not measured ('-')" in text
    accuracy = [line for line in text.splitlines() if "| accuracy |" in line and "measured here" in line]
    assert accuracy and all(re.search(r"\| \d+\.\d\d \| \d+\.\d\d \|", line) for line in accuracy), accuracy


def test_a_folder_that_is_not_a_report_is_refused(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["paper", "--tiny", "--out", str(tmp_path)]) != 0
    assert "not a paper report" in capsys.readouterr().err and (tmp_path / "mine.txt").read_text() == "keep me"
