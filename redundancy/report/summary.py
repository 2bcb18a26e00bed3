"""What a finished search found, in words: one text for the CLI (plain lines) and the app (a markdown list), and
the small formatting helpers both use (durations, intervals)."""

from __future__ import annotations

from ..replace import pair_text
from ..tasks import Metric


def format_seconds(seconds: float) -> str:
    """'4.2 s', '42 s', '7.5 min', '3.2 h' or '2.1 days'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def describe(conf: dict, fmt: str = "+.2f") -> str:
    """An interval record (`confidence.Interval.to_dict`) as one line: '+3.47, 95% CI +0.17 to +7.76 over 4
    groups, paired p 0.252', with '; within noise' when the interval holds 0."""
    noise = "; within noise" if conf["within_noise"] else ""
    return (
        f"{conf['gain']:{fmt}}, {conf['level']:.0%} CI {conf['lo']:{fmt}} to {conf['hi']:{fmt}} over "
        f"{conf['groups']} groups, paired p {conf['p']:.3g}{noise}"
    )


def interval(conf: dict, m: Metric) -> str:
    """A confidence record as one line, in the metric's units (a lower-is-better metric: its decrease)."""
    what = "" if m.higher_is_better else f" ({m.label} decrease)"
    return describe(conf, "+.2f" if m.percent else "+.4f") + what


def delta(m: Metric, before: float, after: float) -> str:
    """'+0.41' for a score a user reads as it is; for a lower-is-better one, its own change ('-0.0160')."""
    d = m.value(after) - m.value(before)
    return f"{d:+.2f}" if m.percent else f"{d:+.4f}"


def summary_lines(result, m: Metric) -> list[tuple[int, str]]:
    """(depth, text) lines of a finished search (`engine.SearchResult`) in the metric `m`."""
    c = result.combos
    lines = [(0, f"{result.header['weights_label']}: baseline {m.show(c.baseline_miou)} on {result.search_images} "
                 "search images")]  # fmt: skip
    if result.top:
        lines.append((0, "top pairs (source <- target[@alpha], gain): "
                         + ", ".join(f"{pair_text(p.pair)} {p.gain:+.4g}" for p in result.top)))  # fmt: skip
    if c.best:
        pairs = " ".join(pair_text(p) for p in c.best.pairs)
        lines.append((0, f"best set: {pairs}  {m.show(c.best.miou)} ({delta(m, c.baseline_miou, c.best.miou)})"))
        if result.confidence and result.confidence["best"]:
            lines.append((1, f"gain on the search set: {interval(result.confidence['best'], m)}"))
    else:
        lines.append((0, "best set: empty (no subset of the top pairs beat the baseline)"))
    cv = result.selection
    if cv:
        curve = ", ".join(f"{g:+.3g}" for g in cv["curve"])
        lines.append((0, f"{cv['select']} selection, {cv['folds']}-fold cross-validated: N = {cv['chosen_n']} "
                         f"(held-out gain per N: {curve})"))  # fmt: skip
        lines.append((1, f"cross-validated gain on unseen {cv['unit']}s at N = {cv['best_n']}: "
                         f"{interval(cv['estimate'], m)}"))  # fmt: skip
        if not cv["chosen_n"]:
            lines.append((1, "within noise: no set is chosen (the empty set leaves the model as it is)"))
    if result.heldout:
        h = result.heldout
        lines.append((0, f"held-out ({h['images']} images): {m.show(h['baseline_miou'])} -> "
                         f"{m.show(h['patched_miou'])}"))  # fmt: skip
        lines.append((1, f"gain on held-out images: {interval(h['confidence'], m)}"))
    scored = int((result.scores.gain == result.scores.gain).sum())  # finite cells: the pairs scored exactly
    lines.append((0, f"mode {result.settings.mode}: {scored:,} of {result.pairs_in_scope:,} pairs in scope scored "
                     f"exactly ({result.scores.seconds:.1f} s)"))  # fmt: skip
    return lines


def summary_text(result, m: Metric) -> str:
    """The summary as plain lines (the CLI)."""
    return "\n".join("  " * depth + text for depth, text in summary_lines(result, m))


def summary_markdown(result, m: Metric) -> str:
    """The summary as a markdown list (the app), arrows as arrows."""
    return "\n".join("  " * depth + "- " + text.replace(" -> ", " → ") for depth, text in summary_lines(result, m))
