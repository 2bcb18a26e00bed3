"""The CLI parses before the engine loads: `--help` and a flag error never import torch, and the snapshot of the
registries' choices that makes this possible (`cli/catalogue.json`) says what the registries say."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from redundancy.cli import catalogue

PROBE = """
import sys
from redundancy.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("torch" in sys.modules, "redundancy.engine" in sys.modules)
"""


def test_snapshot_matches_the_registries():
    """A registered task, metric, mode, option or recipe shows in the CLI: refresh with the module's command."""
    assert catalogue._snapshot().data == json.loads(json.dumps(catalogue.live())), (
        "cli/catalogue.json is stale: run `python -m redundancy.cli.catalogue`"
    )


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["search", "--help"], ["ablate", "--help"], ["search", "--top-n", "x"], ["serach"], ["compare"]],
)
def test_help_and_flag_errors_come_before_torch(argv):
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True, check=True)
    assert done.stdout.split()[-2:] == ["False", "False"], done.stdout + done.stderr
    if argv[-1] != "--help":
        assert "error:" in done.stderr and "Traceback" not in done.stderr


def test_options_keep_their_kind():
    """A mode option's flag converts as its registered type does (int, float)."""
    from redundancy.engine.screening import all_options

    assert [(f.name, f.kind, f.default) for f in catalogue._snapshot().options] == [
        (o.name, o.kind, o.default) for o in all_options()
    ]
