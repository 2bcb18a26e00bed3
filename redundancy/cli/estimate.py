"""The time a search will take, said before its long stages start (the app's estimate, from the same cost model),
and the question a search of more than an hour asks first."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..engine import SearchSettings, Session
from ..engine.cost import search_cost
from ..engine.evaluator import TIMED_CALLS
from ..errors import RunError
from ..report.summary import format_range, format_seconds

CONFIRM_ABOVE_S = 3600.0  # a longer search asks first (or, with no one to ask, warns)
MEASURE_SHARE = 20  # rates are timed only for a search of at least this many times the rows the timing runs


@dataclass(frozen=True)
class Estimate:
    """A search's predicted time before it starts: its decoder rows, and where it was worth timing first, the
    point estimate, its range and a line naming a busy machine."""

    rows: int
    seconds: float | None = None
    span: tuple[float, float] = (0.0, 0.0)
    busy: str | None = None


def search_seconds(session: Session, settings: SearchSettings, n_pairs: int) -> Estimate:
    """The predicted time of a search of `n_pairs` pairs on this session, every stage counted (`engine.cost`). The
    rates are the app's (`Evaluator.seconds_per_row`: the median of a few timed decoder calls on the encoded search
    set; the encoder's time per image), its range their spread: timed only where that is a small share of the
    search (seconds None: a search too small to be worth timing first)."""
    ev = session.evaluator("search")
    unencoded = 0 if "heldout" in session.encode_seconds else len(session.heldout_set)
    shortcut = session.backend.has_pair_outputs()
    cost = search_cost(
        session.resolve(settings), n_pairs, len(session.search_set), len(session.heldout_set), session.task,
        shortcut, unencoded,
    )  # fmt: skip
    if cost.rows < MEASURE_SHARE * (1 + TIMED_CALLS) * ev.rows:
        return Estimate(cost.rows)
    pair_s = ev.seconds_per_pair_row() if cost.shortcut else ev.seconds_per_row()
    seconds = cost.seconds(ev.seconds_per_row(), pair_s, session.encode_seconds_per_image() or 0.0)
    return Estimate(cost.rows, seconds, session.time_range(seconds), session.busy_note())


def announce(estimate: Estimate, n_pairs: int, images: int, device: str, yes: bool) -> None:
    """Say the estimate on stderr; above an hour, ask to go on (y/N) when a person is at the terminal, else warn.
    A "no" raises RunError: nothing of the search has run."""
    say = lambda m: print(m, file=sys.stderr)  # noqa: E731
    scope = f"{n_pairs:,} pairs x {images} search images, {estimate.rows:,} decoder rows in all"
    seconds = estimate.seconds
    if seconds is None:
        say(f"estimated: a short search on {device} ({scope}; too few to be worth timing first)")
        return
    say(f"estimated {format_range(*estimate.span)} on {device}: {scope}")
    if estimate.busy:
        say(estimate.busy)
    if seconds <= CONFIRM_ABOVE_S or yes:
        return
    if not sys.stdin.isatty():
        say(
            f"warning: this search runs for more than an hour (≈ {format_seconds(seconds)}); narrow --sources / "
            "--targets or --search-images to shorten it. Going on (no terminal to ask; --yes skips this warning)."
        )
        return
    print(f"This search runs for ≈ {format_seconds(seconds)}. Go on? [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise RunError(
            f"search not started (estimated {format_seconds(seconds)}); narrow --sources / --targets or "
            "--search-images, or pass --yes to run it without asking."
        )
