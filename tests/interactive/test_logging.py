"""A bug in a background job reaches the user as one line with a reference, and its traceback the log file."""

from __future__ import annotations

import logging

import pytest

from redundancy.interactive.jobs import Job
from redundancy.logs import ROOT, configure


@pytest.fixture(autouse=True)
def _unconfigured():
    """Each test configures the package logger itself; afterwards it is as the other tests found it."""
    yield
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_redundancy", False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True


def test_a_failed_job_logs_its_traceback_under_the_reference_the_user_sees(tmp_path):
    path = configure(0, tmp_path / "logs" / "redundancy.log")

    def broken(state, cancel):
        raise ValueError("an index went wrong")

    job = Job(broken, kind="search")
    job.thread.join()
    error = job.state.error
    assert error.startswith("unexpected error (ValueError: an index went wrong)") and job.state.finished
    ref = error.rsplit("log reference ", 1)[1].rstrip(").")
    assert len(ref) == 8 and str(tmp_path) not in error  # a reference, never a server path
    for handler in logging.getLogger(ROOT).handlers:
        handler.flush()
    text = path.read_text()
    assert f"(ref {ref})" in text and "Traceback" in text and 'raise ValueError("an index went wrong")' in text


def test_configure_again_replaces_its_handlers_and_a_read_only_folder_leaves_the_terminal(tmp_path):
    logger = logging.getLogger(ROOT)
    configure(1, tmp_path / "a.log")
    configure(-1, tmp_path / "b.log")
    ours = [h for h in logger.handlers if getattr(h, "_redundancy", False)]
    assert len(ours) == 2 and ours[0].level == logging.ERROR  # the terminal (quiet) and the one file
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert configure(0, blocked / "x.log") is None  # its folder is a file: no log file, no traceback
    assert [type(h).__name__ for h in logger.handlers if getattr(h, "_redundancy", False)] == ["StreamHandler"]
