"""The benchmark scripts run end to end on CPU at test size (their GPU runs use the same code)."""

from __future__ import annotations

import json
import sys

import pytest

from benchmarks import full_search, plain_vs_batched


def test_full_search_reports_both_stages_and_memory(capsys):
    r = full_search.main(["--model", "sam_tiny", "--images", "3", "--channels", "every:64", "--top-n", "2"])
    assert r["pairs"] == 12 and r["images"] == 3 and r["combinations"] == 3
    assert r["score_rows_per_s"] > 0 and r["peak_memory_gb"] > 0 and r["full_scan_estimate_s"] > r["score_s"]
    assert "random weights" in r["weights"] and json.loads(capsys.readouterr().out) == r


def test_plain_vs_batched_agree(capsys):
    r = plain_vs_batched.main(["--model", "sam_tiny", "--images", "2", "--pairs", "4"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == r
    assert r["decoder_calls"] == 8 and r["max_abs_gain_diff"] < 0.05 and r["speedup"] > 0
    assert r["same_top_10_in_order"] is True


def test_rank_one_benchmark_agrees_with_the_generic_path(capsys):
    from benchmarks import rank_one

    r = rank_one.main(["--model", "dinov2_tiny", "--images", "4", "--sources", "every:16"])
    assert r["pairs"] == 4 * 63 and r["task"] == "classify" and "random weights" in r["weights"]
    assert r["max_abs_stat_diff"] < 1e-8 and r["speedup"] > 0


@pytest.mark.slow
def test_demo_domains_compares_the_selection_rules(monkeypatch, capsys):
    from benchmarks import demo_domains

    argv = ["demo_domains", "--domains", "gray", "--search-images", "6", "--seeds", "0", "--sources", "every:64",
            "--targets", "every:64", "--top-n", "2", "--select", "search,cv,greedy,soft,greedy+soft",
            "--alphas", "0.5"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    demo_domains.main()
    out = capsys.readouterr().out
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["select"] for r in runs] == ["search", "cv", "greedy", "soft", "greedy+soft"]
    assert all(r["heldout_images"] == 114 and "not SAM" in r["weights"] for r in runs)
    assert "| soft | 6 | 1 |" in out and "| cv | 6 | 1 |" in out


def test_layer_cost_times_a_row_at_the_output_and_inside_the_encoder(monkeypatch, capsys):
    from benchmarks import layer_cost

    argv = ["layer_cost", "--model", "dinov2_tiny", "--layers", "out,0", "--images", "2", "--pairs", "4"]
    monkeypatch.setattr(sys, "argv", argv)
    layer_cost.main()
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [r["layer"] for r in rows] == ["output", "block 0"] and rows[0]["vs_output"] == 1.0
    assert all(r["ms_per_row"] > 0 and r["channels"] == 64 and "random weights" in r["weights"] for r in rows)


@pytest.mark.slow
def test_precision_benchmark_counts_flops_and_compares_with_fp32(capsys):
    from benchmarks import precision

    argv = ["--model", "sam_tiny_demo", "--images", "3", "--channels", "every:64", "--top-n", "2",
            "--options", "fp32,tf32,bf16"]  # fmt: skip
    rows = precision.main(argv)
    assert [r["option"] for r in rows] == ["fp32", "tf32", "bf16"]
    assert all(r["row_gflop"] > 0 and r["share_of_probe"] > 0 and r["rows_per_s"] > 0 for r in rows)
    assert rows[0]["same_top_n_in_order"] and rows[0]["max_abs_gain_diff"] == 0
    assert rows[1]["max_abs_gain_diff"] == 0  # tf32 on a CPU is fp32
    assert "not SAM" in rows[0]["weights"] and "| bf16 |" in capsys.readouterr().out


@pytest.mark.slow
def test_gpu_suite_runs_every_step_at_test_size_and_reports_each(tmp_path):
    from benchmarks import gpu_suite

    r = gpu_suite.main(["--out", str(tmp_path), "--size", "test", "--skip", "pytest,torchrun", "--device", "cpu"])
    failed = {k: v["failed"] for k, v in r.items() if isinstance(v, dict) and "failed" in v}
    assert not failed, failed
    assert set(r["timings_s"]) == {"environment", "reference", "profile", "batched", "families"}
    assert [x["option"] for x in r["reference"]] == list(gpu_suite.PRECISION_RUNS)
    assert r["reference"][0]["same_best_set_as_fp32"] is True and r["reference"][0]["full_scan_estimate_s"] > 0
    assert [x["task"] for x in r["families"]] == ["segment", "classify"]
    assert json.loads((tmp_path / "suite.json").read_text())["size"] == "test"
    assert "| fp32 | 12 |" in (tmp_path / "suite.md").read_text()


@pytest.mark.slow
def test_estimates_benchmark_times_what_the_app_estimates(capsys):
    from benchmarks import estimates

    rows = estimates.measure(2, ("search", "quick", "sweep", "apply"))
    assert [r["job"] for r in rows] == ["search", "quick", "sweep", "apply"] and len(rows[1]["heldout"]) == 2
    assert all(r["estimate_s"] > 0 and r["measured_s"] > 0 and r["ratio"] > 0 for r in rows)
    assert "measured / estimate" in capsys.readouterr().out


@pytest.mark.slow
def test_backbones_benchmark_measures_an_architecture_in_its_own_process(tmp_path):
    import subprocess

    from .conftest import ROOT

    out = tmp_path / "rows.json"
    cmd = [sys.executable, "-m", "benchmarks.backbones", "regnety_002", "--search-images", "8", "--json", str(out)]
    line = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (row,) = json.loads(out.read_text())
    assert line.startswith("| regnety_002 | classify | 368 |") and row["pairs"] == 46 * 45
    assert row["rows_per_s"] > 0 and row["encode_ms_per_image"] > 0 and row["peak_mb"] > 100


@pytest.mark.slow
def test_cpu_time_benchmark_times_a_job_in_its_own_process(tmp_path, capsys, monkeypatch):
    from benchmarks import cpu_time

    small = ["--search-images", "2", "--heldout-images", "1", "--sources", "every:64", "--targets", "every:64"]
    monkeypatch.setitem(cpu_time.JOBS, "search", ["search", "--data", cpu_time.DATA, *small, "--top-n", "1"])
    out = tmp_path / "rows.json"
    cpu_time.main(["--only", "search", "--json", str(out), "--no-settle"])  # a test machine is never quiet
    (row,) = json.loads(out.read_text())
    assert row["job"] == "search" and row["wall_s"] > 0 and row["user_s"] > 0  # the child's own CPU seconds
    assert row["wait"].startswith(("default", "passive"))  # how the tool chose to let its threads wait
    assert "| search |" in capsys.readouterr().out
