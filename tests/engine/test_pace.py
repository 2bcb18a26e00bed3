"""Rates measured robustly (`engine.pace`): the median of recent calls, their spread as an estimate's range, the
share of the machine other processes took, and this machine's quiet rate recorded once to name a slowdown."""

from __future__ import annotations

import pytest

from redundancy.engine import pace
from redundancy.engine.pace import BAND, Pace, Sample, note_pace, quiet_rate
from redundancy.report.summary import format_range


def paced(*seconds: float, others: float | None = 0.0) -> Pace:
    p = Pace()
    for s in seconds:
        p.add(Sample(s, others))
    return p


def test_the_rate_is_the_median_and_one_slow_call_does_not_move_it():
    assert paced(1.0, 1.1, 0.9, 9.0).seconds() == pytest.approx(1.05)


def test_the_range_is_the_calls_spread_and_never_narrower_than_the_band():
    assert paced(1.0, 1.0, 1.0).band() == BAND
    low, high = paced(0.5, 1.0, 1.0, 3.0).band()
    assert low == pytest.approx(0.5) and high == pytest.approx(3.0)
    low, high = paced(0.1, 0.6, 1.0, 1.0, 2.0, 9.0).band()  # one outlier each end left out (a thread's first call)
    assert low == pytest.approx(0.6) and high == pytest.approx(2.0)


def test_on_a_busy_machine_the_range_reaches_down_to_the_quiet_rate():
    """The load may ease while the work runs: as fast as quiet at best, or as the CPU share others left says."""
    busy = paced(2.0, 2.0, 2.0, others=0.5)
    assert busy.band(quiet=1.0) == (0.5, 2.0)  # as fast as quiet, or slower by twice the others' share
    assert busy.band() == (0.5, 2.0)  # no quiet rate recorded: the half the others left
    assert paced(2.0, 2.0, others=0.05).band(quiet=1.0) == BAND  # quiet now: the calls' own spread


def test_only_recent_calls_count():
    p = paced(*[10.0] * pace.RECENT)
    for _ in range(pace.RECENT):  # the load went away
        p.add(Sample(1.0, 0.0))
    assert p.seconds() == 1.0


def test_timing_measures_what_other_processes_took(monkeypatch):
    readings = iter([100.0, 100.0 + 0.5 * 4])  # the machine's CPU seconds before and after: 2 s of others' work
    monkeypatch.setattr(pace, "machine_cpu_seconds", lambda: next(readings))
    monkeypatch.setattr(pace.os, "cpu_count", lambda: 2)
    clock = iter([0.0, 2.0])  # 2 s of wall time on 2 cores: 4 CPU seconds, half of them others'
    monkeypatch.setattr(pace.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(pace.time, "process_time", lambda: 0.0)
    p = Pace()
    with p.timing(rows=4):
        pass
    assert p.samples[0] == Sample(0.5, 0.5)


def test_a_call_that_raises_is_not_kept():
    p = Pace()
    with pytest.raises(RuntimeError), p.timing(rows=1):
        raise RuntimeError("out of memory")
    assert not len(p)


def test_a_quiet_rate_is_recorded_once_and_a_busy_machine_named_against_it(tmp_path, monkeypatch):
    monkeypatch.setenv("REDUNDANCY_CACHE", str(tmp_path))
    assert note_pace("m", paced(0.01, 0.01, others=0.02)) is None  # quiet: recorded, nothing to say
    assert quiet_rate("m")["seconds"] == 0.01
    assert note_pace("m", paced(0.02, others=0.03)) is None and quiet_rate("m")["seconds"] == 0.01  # slower: kept
    line = note_pace("m", paced(0.03, 0.03, others=0.5))
    assert line.startswith("This machine is busy: other processes used 50% of its CPU") and "3.0x slower" in line
    assert "x slower" not in note_pace("other", paced(0.03, others=0.5))  # busy, but no quiet rate to compare with
    assert note_pace("m", paced(0.03, others=None)) is None  # not measurable here (no /proc/stat): nothing said


@pytest.mark.parametrize(
    ("low", "high", "shown"),
    [(33, 70, "33-70 s"), (3, 5, "3.0-5.0 s"), (80, 130, "1.3-2.2 min"), (600, 900, "10-15 min"), (40, 40.2, "40 s")],
)
def test_a_range_reads_in_the_unit_of_its_upper_end(low, high, shown):
    assert format_range(low, high) == shown


def test_a_rate_read_while_a_job_adds_calls_reads_the_calls_as_they_were():
    """A page's thread read the rate while the job's thread added a call: 'deque mutated during iteration' (once in
    five browser-tier runs under load). Here the call is added in the middle of the read itself, every time."""

    class Adding:  # a call whose rate, read, adds another call: the job's thread, at the worst moment
        others = None

        def __init__(self, p):
            self.p = p

        @property
        def seconds(self):
            self.p.add(Sample(1.0, None))
            return 1.0

    p = pace.Pace()
    p.add(Adding(p))
    p.add(Sample(3.0, None))
    assert p.seconds() == 2.0 and p.band()[1] >= 1.0 and p.others() is None
    assert len(p) == 5  # every read added its call, and none was lost
