"""How torch's threads wait is chosen once per process: passive on a shared machine, the default on a quiet one,
the user's own choice always kept; a run records it."""

from __future__ import annotations

import json
import os

from redundancy import threads


def test_a_loaded_machine_or_a_space_waits_passively(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    assert threads.choose()["wait_policy"] == "default" and "OMP_WAIT_POLICY" not in os.environ
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 1.0, 1.0))
    chosen = threads.choose()
    assert chosen["wait_policy"] == "passive" and "load 1.5 on 2 cores" in chosen["why"]
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setenv("SPACE_ID", "me/space")
    assert threads.choose()["why"].startswith("a shared Space")


def test_the_user_s_policy_is_kept_and_a_late_choice_says_so(monkeypatch):
    import torch  # noqa: F401  (its OpenMP runtime has started: a choice now comes too late)

    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    chosen = threads.choose()
    assert chosen["wait_policy"] == "active" and chosen["why"].startswith("set in the environment")
    assert "not in effect" in chosen["why"]


def test_a_run_records_how_its_threads_waited(tmp_path):
    from redundancy.cli import main

    out = tmp_path / "run"
    argv = ["search", "--data", "assets/domains/gray", "--search-images", "2", "--heldout-images", "0",
            "--sources", "every:64", "--targets", "every:64", "--top-n", "1", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    recorded = json.loads((out / "config.json").read_text())["environment"]["cpu_threads"]
    assert recorded["wait_policy"] in ("default", "passive", "active") and recorded["torch"] >= 1


def test_the_web_app_waits_passively_unless_the_user_chose(monkeypatch):
    """The app's torch work runs in several threads: passive there, whatever the load (`threads.serve`)."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    monkeypatch.setattr(threads, "CHOSEN", threads.choose())
    assert threads.CHOSEN["wait_policy"] == "default"
    threads.serve()
    assert threads.CHOSEN["wait_policy"] == "passive" and threads.CHOSEN["why"].startswith("a web app")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setattr(threads, "CHOSEN", threads.choose())
    threads.serve()
    assert threads.CHOSEN["wait_policy"] == "active"  # the user's choice is kept
