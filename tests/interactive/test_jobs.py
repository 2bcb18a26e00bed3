"""Background jobs: errors as one line, and lockstep, where every stage a job enters waits until a page has shown it."""

from __future__ import annotations

import threading

import pytest

from redundancy.errors import RunError
from redundancy.interactive import jobs
from redundancy.interactive.jobs import Job, advance, enter_stage

STAGES = ("one", "two", "three")


def staged_job() -> tuple[Job, list[threading.Event]]:
    """A job that enters `STAGES` in turn; an event set as each stage is entered and its work done."""
    passed = [threading.Event() for _ in STAGES]

    def work(state, cancel):
        for name, done in zip(STAGES, passed):
            enter_stage(state, name, 1)
            done.set()
        return "ok"

    return Job(work, "test"), passed


def test_in_lockstep_a_stage_waits_until_a_page_has_shown_it(monkeypatch):
    monkeypatch.setattr(jobs, "LOCKSTEP", True)
    job, passed = staged_job()
    for name, done in zip(STAGES, passed):
        # the job waits for the page: nothing of this stage runs before it was shown (a broken lockstep runs on at
        # once; a busy machine can only make this check pass late, never fail it wrongly)
        assert not done.wait(0.3), f"stage {name!r} ran before a page showed it"
        assert job.state.stage == name
        job.state.shown(job.state.updates)  # a page has shown it
        assert done.wait(30)
    job.thread.join(30)
    assert job.state.finished and job.result == "ok"


def test_in_lockstep_a_stage_s_first_partial_result_waits_until_a_page_has_shown_it(monkeypatch):
    """A page sees every reporting stage part-way (the live heatmap with some pairs scored), however fast the job."""
    monkeypatch.setattr(jobs, "LOCKSTEP", True)
    steps = [threading.Event() for _ in range(4)]

    def work(state, cancel):
        enter_stage(state, "scoring", len(steps))
        for k, step in enumerate(steps, 1):
            advance(state, k)
            step.set()

    job = Job(work, "test")
    assert not steps[0].is_set()  # entering the stage waits
    job.state.shown(job.state.updates)
    assert not steps[0].wait(0.3), "the first partial result went on before a page showed it"
    assert (job.state.done, job.state.total) == (1, len(steps))  # what the page is to show: part-way
    job.state.shown(job.state.updates)
    job.thread.join(30)  # the later steps, and the last one (not partial), do not wait
    assert all(step.is_set() for step in steps) and job.state.finished


def test_in_lockstep_a_job_no_page_follows_goes_on(monkeypatch):
    monkeypatch.setattr(jobs, "LOCKSTEP", True)
    monkeypatch.setattr(jobs, "LOCKSTEP_S", 0.05)
    job, passed = staged_job()
    job.thread.join(30)
    assert all(e.is_set() for e in passed) and job.result == "ok"


def test_without_lockstep_a_job_never_waits_for_a_page():
    assert not jobs.LOCKSTEP  # the app's default: a job runs at its own pace, a page follows as it can
    job, passed = staged_job()
    job.thread.join(30)
    assert all(e.is_set() for e in passed) and job.state.finished


@pytest.mark.parametrize(
    ("error", "shown"),
    [(RunError("no search yet"), "no search yet"), (ValueError("boom"), "unexpected error (ValueError: boom)")],
)
def test_a_failed_job_keeps_one_line(error, shown):
    def work(state, cancel):
        raise error

    job = Job(work, "test")
    job.thread.join(30)
    assert job.state.finished and shown in job.state.error and "\n" not in job.state.error
