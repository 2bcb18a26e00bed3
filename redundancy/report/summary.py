"""What a finished search found, in words: one text for the CLI (plain lines) and the app (a markdown list), and
the small formatting helpers both use (durations, intervals)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from ..engine.confidence import HELPS, HURTS, MIN_GROUPS, NOISE, verdict
from ..replace import pair_text
from ..tasks import Metric


def format_seconds(seconds: float) -> str:
    """'40 ms', '4.2 s', '42 s', '7.5 min', '3.2 h' or '2.1 days'."""
    if seconds < 0.095:  # shown as milliseconds, never a "0.0 s" that reads as no time at all
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "under 1 ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def format_range(low: float, high: float) -> str:
    """An estimate's range in the unit of its upper end: '40-70 s', '1.5-2.6 min', '3-5 min' (one figure where
    both ends read the same)."""
    if high < 0.095:
        return format_seconds(high)
    scale, unit = next(((u, n) for limit, u, n in RANGE_UNITS if high < limit), (86400.0, "days"))
    digits = 1 if high / scale < 10 else 0
    lo, hi = f"{low / scale:.{digits}f}", f"{high / scale:.{digits}f}"
    return f"{hi} {unit}" if lo == hi else f"{lo}-{hi} {unit}"


RANGE_UNITS = ((90, 1.0, "s"), (2 * 3600, 60.0, "min"), (2 * 86400, 3600.0, "h"))
UNITS = {"image": "image", "perseg": "object", "persam": "object"}  # what a protocol's metric groups are
WORDS = {HELPS: "helps", NOISE: "can't tell from noise", HURTS: "hurts"}
RULE = (
    "helps / hurts: the 95% interval of the gain, from resampling the {unit}s, lies above / below 0; otherwise "
    f"(or with fewer than {MIN_GROUPS} {{unit}}s) the data can't tell the gain from noise. The sign-flip test's p "
    "reads the same differences exactly and more strictly: with n {unit}s it cannot go below 2/2^n (0.0625 for 5), "
    "so a verdict from few {unit}s can stand beside a p above 0.05; the more {unit}s, the more the two agree"
)


@dataclass(frozen=True)
class Line:
    """One line of a summary: its indent, its text, and the plain-words verdict with the figures behind it."""

    depth: int
    text: str
    verdict: str = ""
    figures: str = ""


def describe(conf: dict, fmt: str = "+.2f", unit: str = "group") -> str:
    """An interval record's figures in one line: '+3.47, 95% interval +0.17 to +7.76 from resampling 4 objects;
    sign-flip test p 0.252' (with the floor few groups put on p)."""
    g = conf["groups"]
    units = f"{g} {unit}{'' if g == 1 else 's'}"
    floor = f" (with {units} p cannot go below {min(1.0, 2 / 2**g):.2g})" if 0 < g <= 10 else ""
    few = f"; only {units}: too few to tell" if g < MIN_GROUPS else ""
    return (
        f"{conf['gain']:{fmt}}, {conf['level']:.0%} interval {conf['lo']:{fmt}} to {conf['hi']:{fmt}} from "
        f"resampling {units}; sign-flip test p {conf['p']:.3g}{floor}{few}"
    )


def interval(conf: dict, m: Metric, unit: str = "group") -> str:
    """A confidence record's figures in the metric's units (a lower-is-better metric: its decrease)."""
    what = f" {m.label} points" if m.percent else ("" if m.higher_is_better else f" ({m.label} decrease)")
    return describe(conf, "+.2f" if m.percent else "+.4f", unit).replace(",", what + ",", 1)


def judged(depth: int, text: str, conf: dict | None, m: Metric, unit: str, where: str = "") -> Line:
    """A line whose number gets a verdict in words (`where` finishes it: 'on new images')."""
    if not conf:
        return Line(depth, text)
    word = verdict(conf)
    return Line(depth, text, WORDS[word] + (f" {where}" if where and word != NOISE else ""), interval(conf, m, unit))


def delta(m: Metric, before: float, after: float) -> str:
    """'+0.41' for a score a user reads as it is; for a lower-is-better one, its own change ('-0.0160')."""
    d = m.value(after) - m.value(before)
    return f"{d:+.2f}" if m.percent else f"{d:+.4f}"


def summary_lines(result, m: Metric) -> list[Line]:
    """The lines of a finished search (`engine.SearchResult`) in the metric `m`."""
    c = result.combos
    unit = UNITS.get(result.provenance.get("protocol", "image"), "image")
    lines = [Line(0, f"{result.header['weights_label']}: baseline {m.show(c.baseline_score)} on "
                     f"{result.search_images} search images")]  # fmt: skip
    if result.top:
        lines.append(Line(0, "top pairs (source <- target[@alpha], gain): "
                             + ", ".join(f"{pair_text(p.pair)} {p.gain:+.4g}" for p in result.top)))  # fmt: skip
    if c.best:
        pairs = " ".join(pair_text(p) for p in c.best.pairs)
        lines.append(Line(0, f"best set: {pairs}  {m.show(c.best.score)} ({delta(m, c.baseline_score, c.best.score)})"))
        if result.confidence and result.confidence["best"]:
            lines.append(judged(1, "on the search images it was chosen on (optimistic)", result.confidence["best"],
                                m, unit))  # fmt: skip
    else:
        lines.append(Line(0, "best set: empty (no subset of the top pairs beat the baseline)"))
    cv = result.selection
    if cv:
        curve = ", ".join(f"{g:+.3g}" for g in cv["curve"])
        lines.append(Line(0, f"{cv['select']} selection, {cv['folds']}-fold cross-validated: N = {cv['chosen_n']} "
                             f"(held-out gain per N: {curve})"))  # fmt: skip
        lines.append(judged(1, f"at N = {cv['best_n']}, on {cv['unit']}s each fold did not see", cv["estimate"], m,
                            cv["unit"], "on unseen images"))  # fmt: skip
        if not cv["chosen_n"]:
            lines.append(Line(1, "no set is chosen: the empty set leaves the model as it is"))
    if result.heldout:
        h = result.heldout
        lines.append(judged(0, f"held-out ({h['images']} images): {m.show(h['baseline_score'])} -> "
                               f"{m.show(h['patched_score'])}", h["confidence"], m, unit, "on new images"))  # fmt: skip
        if c.best and verdict(h["confidence"]) != HELPS and result.settings.select == "search":
            lines.append(Line(1, "this set does not carry over to new images here: it was the best subset on the "
                                 "search images, which makes its gain there optimistic. The cross-validated rule "
                                 "(--select cv; in the app: Choose the set, cross-validated) picks the set size on "
                                 "images the choice did not see, and keeps the model as it is when no gain stands "
                                 "out."))  # fmt: skip
    scored = int((result.scores.gain == result.scores.gain).sum())  # finite cells: the pairs scored exactly
    lines.append(Line(0, f"mode {result.settings.mode}: {scored:,} of {result.pairs_in_scope:,} pairs in scope "
                         f"scored exactly ({result.scores.seconds:.1f} s)"))  # fmt: skip
    return lines


def summary_text(result, m: Metric) -> str:
    """The summary as plain lines (the CLI): each verdict with its figures in parentheses."""
    return "\n".join(
        "  " * ln.depth + ln.text + (f": {ln.verdict} ({ln.figures})" if ln.verdict else "")
        for ln in summary_lines(result, m)
    )


def summary_markdown(result, m: Metric) -> str:
    """The summary as a markdown list (the app): verdicts in bold words, their figures on hover."""
    lines = summary_lines(result, m)
    out = []
    for ln in lines:
        text = html.escape(ln.text).replace(" -&gt; ", " → ").replace("&lt;-", "←")
        if ln.verdict:
            text += f': <span title="{html.escape(ln.figures)}">**{ln.verdict}**</span>'
        out.append("  " * ln.depth + "- " + text)
    if any(ln.verdict for ln in lines):
        unit = UNITS.get(result.provenance.get("protocol", "image"), "image")
        out.append("\n<small>" + RULE.format(unit=unit) + "; hover a verdict for its figures.</small>")
    return "\n".join(out)


@dataclass(frozen=True)
class EditLine:
    """One row of Table 1 as a user reads it (RMSE: lower is better): the edit's score, its change from the
    baseline with the change's 95% interval, its loss and its verdict (None for the baseline row)."""

    edit: str
    score: float
    loss: float
    change: float | None = None
    lo: float | None = None
    hi: float | None = None
    verdict: str | None = None


def ablation_lines(m: Metric, base, rows: list, sweep: bool = False) -> list[EditLine]:
    """Table 1 (`engine.ablate`'s baseline and rows) for the CLI and the app alike: the baseline first, then each
    edit; a zero sweep sorted by the change, the largest first."""
    lines = [EditLine("baseline", m.value(base.score), base.loss)]
    for r in sorted(rows, key=lambda r: -r.delta_score) if sweep else rows:
        lo, hi = sorted((m.value(r.delta_lo), m.value(r.delta_hi)))
        change = m.value(r.score) - m.value(base.score)
        lines.append(EditLine(r.edit, m.value(r.score), r.loss, change, lo, hi, r.verdict))
    return lines
