"""The CLI's -v / -q and a bug's one line: its traceback goes to the log file a user can attach to a report."""

from __future__ import annotations

import logging

import pytest

from redundancy.cli import main, verbs
from redundancy.logs import ROOT, log_file


@pytest.fixture(autouse=True)
def _unconfigured():
    yield
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, "_redundancy", False)]:
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True
    warned = logging.getLogger("py.warnings")
    for handler in [h for h in warned.handlers if getattr(h, "_redundancy", False)]:
        warned.removeHandler(handler)
    warned.propagate = True
    logging.captureWarnings(False)


def _bug(args):
    raise ZeroDivisionError("a bug in a verb")


def test_a_bug_is_one_line_naming_the_log_file_that_holds_its_traceback(monkeypatch, capsys):
    monkeypatch.setattr(verbs, "cmd_models", _bug)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: unexpected ZeroDivisionError: a bug in a verb; this is a bug: the traceback is in ")
    ref = err.rsplit("(ref ", 1)[1].split(")")[0]
    text = log_file().read_text()
    assert f"'models' failed (ref {ref})" in text and "Traceback" in text and "a bug in a verb" in text


def test_verbose_shows_the_traceback_and_quiet_hides_warnings(monkeypatch, capsys):
    monkeypatch.setattr(verbs, "cmd_models", _bug)
    assert main(["models", "-v"]) == 1
    assert "Traceback" in capsys.readouterr().err

    def warns(args):
        logging.getLogger("redundancy.models").warning("a cached file was stale")
        return 0

    monkeypatch.setattr(verbs, "cmd_models", warns)
    assert main(["models"]) == 0
    assert capsys.readouterr().err == "warning: a cached file was stale\n"
    assert main(["models", "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_library_warnings_go_to_the_log_file_not_the_terminal(monkeypatch, capsys):
    """`paper` printed torch's and torchvision's warnings among its own lines: they belong in the log (-v shows)."""
    import warnings

    def warns(args):
        warnings.warn("torch.jit.script is deprecated", FutureWarning, stacklevel=1)
        return 0

    monkeypatch.setattr(verbs, "cmd_models", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main(["models"]) == 0
        assert "deprecated" not in capsys.readouterr().err
        assert "torch.jit.script is deprecated" in log_file().read_text()
        assert main(["models", "-v"]) == 0
        assert "torch.jit.script is deprecated" in capsys.readouterr().err
