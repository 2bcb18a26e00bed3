"""What the real-browser tests share: Chromium, a fresh visitor's page, and the few moves a visitor makes (tabs,
fields, loads, searches), each waiting on a state the page shows (a text, an element, a value read back), never on
time."""

from __future__ import annotations

import os
import re
import urllib.parse
from contextlib import contextmanager

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from ..conftest import SHOTS

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
needs_chromium = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
FORM = "Model and data: change what Load opens"  # the Data tab's form (closed on a first visit)
# Gradio's progress overlay over an output ("queue: 1/1 | 0.3/4.1s", "processing | 2.0s"): the answer is not in yet
BUSY = r"^\s*(queue:|processing|[\d.]+(/[\d.]+)?s\b)"
CHANNELS = 256  # the SAM demo models' encoder channels (what a channel scope such as every:16 is taken of)
# the two widths every browser test of a page layout runs at: a desktop and a phone
WIDTHS = {"desktop": {"width": 1400, "height": 900}, "phone": {"width": 390, "height": 844}}
WAIT_S = 180  # the longest a test waits for any one state (a search at test size on 2 loaded cores)
# Gradio's red "Error" badge over a component: a handler with it among its outputs raised, or returned what Gradio
# refuses (every first visit's reconnect once returned an empty dict: Batch rows showed it on the Search tab)
PILL = "[data-testid=status-tracker] .error"


def launch(playwright):
    """Chromium as the tests drive it."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def upload(page, elem_id: str, path) -> None:
    """Put the file `path` into the upload box `elem_id` and wait until the box serves it back (its link names the
    file): the upload has reached the server. (The box's text splits a name from its extension.)"""
    page.locator(f"#{elem_id} input[type=file]").set_input_files(str(path))
    page.locator(f"#{elem_id} a[href$='{urllib.parse.quote(path.name)}']").first.wait_for()


@contextmanager
def visitor(browser, url: str, viewport: dict, init_script: str | None = None):
    """A fresh visitor's page: its own browser context (storage, so its own app session and workspace), opened
    on the app and rendered; the context is closed after the block. `init_script` runs before the page's own."""
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    if init_script:
        context.add_init_script(init_script)
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(url, wait_until="domcontentloaded")
        page.locator("#load-btn").wait_for()
        try:  # the page's own first refresh (a reconnect that finds no session) is over before any move
            settled(page, "")
        except PlaywrightTimeout:
            raise AssertionError("a fresh page's refresh never ended (#session-settled stayed empty): a handler in "
                                 "its chain failed (see the app's log)") from None  # fmt: skip
        yield page
    finally:
        context.close()


def error_badges(page) -> list[str]:
    """The components that show Gradio's error badge (`PILL`) now: their text, shortened."""
    js = "els => els.filter(e => e.checkVisibility()).map(e => e.closest('.block').innerText.replace(/\\s+/g, ' '))"
    return [t[:80] for t in page.locator(PILL).evaluate_all(js)]


def tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def text(page, elem_id: str) -> str:
    return page.locator(f"#{elem_id}").inner_text()


def _until(page, elem_id: str, js_test: str, arg, what: str, timeout: float) -> None:
    """Wait (polled in the page) until `js_test(text, arg)` holds for the element's text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(
            f"""([id, arg]) => {{ const e = document.getElementById(id); if (!e) return false;
                 const text = e.innerText; return ({js_test})(text, arg); }}""",
            arg=[elem_id, arg],
            timeout=timeout * 1000,
        )
    except PlaywrightTimeout:
        raise AssertionError(f"#{elem_id} never showed {what}; last text: {text(page, elem_id)!r}") from None


def wait_text(page, elem_id: str, needle: str, timeout: float = WAIT_S) -> str:
    """The element's text once it shows `needle`."""
    _until(page, elem_id, "(t, n) => t.includes(n)", needle, repr(needle), timeout)
    return text(page, elem_id)


def wait_changed(page, elem_id: str, before: str, needle: str, timeout: float = WAIT_S) -> str:
    """The element's text once it differs from `before`, shows `needle` and no progress overlay (a new answer)."""
    test = f"(t, [b, n]) => t !== b && t.includes(n) && !new RegExp({BUSY!r}).test(t)"
    _until(page, elem_id, test, [before, needle], f"a new {needle!r}", timeout)
    return text(page, elem_id)


def record(page, elem_id: str) -> None:
    """From now on, keep every text the element shows (a MutationObserver in the page), however briefly it shows
    it: `wait_recorded` and `recorded` read them. Recording again starts a new record."""
    page.locator(f"#{elem_id}").wait_for(state="attached")
    page.evaluate(
        """id => { const e = document.getElementById(id); window.__rec = window.__rec || {};
             if (window.__rec[id]) window.__rec[id].observer.disconnect();
             const texts = []; let last = e.innerText;  // what it shows now is not recorded, only what follows
             const observer = new MutationObserver(() => {
                 const t = e.innerText; if (t !== last) texts.push(last = t); });
             observer.observe(e, {subtree: true, childList: true, characterData: true, attributes: true});
             window.__rec[id] = {texts, observer}; }""",
        elem_id,
    )


def record_from_load(elem_id: str) -> str:
    """An init script (`visitor(init_script=...)`) that keeps every text the element shows from the page's first
    moment, across a reload, while the element comes and goes with the page: `recorded` reads them."""
    return f"""(() => {{ const id = {elem_id!r}, texts = []; let last = null;
      const observer = new MutationObserver(() => {{ const e = document.getElementById(id); if (!e) return;
        const t = e.innerText; if (t !== last) texts.push(last = t); }});
      observer.observe(document, {{subtree: true, childList: true, characterData: true}});
      window.__rec = {{...window.__rec, [id]: {{texts, observer}}}}; }})();"""


def record_disabled(page, *elem_ids: str) -> None:
    """From now on, keep every disabled state each element takes, however briefly (`disabled_states` reads them)."""
    for elem_id in elem_ids:
        page.locator(f"#{elem_id}").wait_for(state="attached")
    page.evaluate(
        """ids => { window.__dis = window.__dis || {};
             for (const id of ids) {
                 const e = document.getElementById(id), states = [e.disabled];
                 // a record's old value is the state the record before it left: none is lost within one batch
                 new MutationObserver(records => { records.slice(1).forEach(r => states.push(r.oldValue !== null));
                                                   states.push(e.disabled); })
                     .observe(e, {attributes: true, attributeFilter: ["disabled"], attributeOldValue: true});
                 window.__dis[id] = states; } }""",
        list(elem_ids),
    )


def disabled_states(page, elem_id: str) -> list[bool]:
    """The element's disabled states since `record_disabled`, first the one it had then, repeats dropped."""
    states = page.evaluate("id => window.__dis[id]", elem_id)
    return [s for k, s in enumerate(states) if k == 0 or s != states[k - 1]]


def recorded(page, elem_id: str) -> list[str]:
    """The texts the element showed since `record`, in order."""
    return page.evaluate("id => window.__rec[id].texts", elem_id)


def wait_recorded(
    page, elem_id: str, needle: str, timeout: float = WAIT_S, fail: str | None = None, settled: bool = True
) -> str:
    """The first text since `record` that shows `needle` (and, `settled`, no progress overlay: an answer, not a
    step on the way); one that shows `fail` instead fails at once."""
    busy = BUSY if settled else "$^"
    test = f"""(_, [n, f]) => window.__rec[{elem_id!r}].texts.some(t => (t.includes(n) || (f && t.includes(f)))
                 && !new RegExp({busy!r}).test(t))"""
    _until(page, elem_id, test, [needle, fail], f"a new {needle!r}", timeout)
    shown = next(t for t in recorded(page, elem_id) if (needle in t or (fail and fail in t)) and not re.match(busy, t))
    assert needle in shown, f"#{elem_id} showed {shown!r} instead of {needle!r}"
    return shown


def fill(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(value)
    box.press("Enter")


def number(page, elem_id: str, value: int):
    """Type `value` into a number box (or a slider's); the box, to read back what it shows."""
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    return box


def slider(page, elem_id: str, value: int, shows_id: str, needle: str, tries: int = 3) -> None:
    """Type `value` into a slider's box until the line it feeds (`shows_id`) shows `needle`.

    Gradio 6.31's slider can lose a typed value: typed into after a fresh page sat idle a few seconds, the value
    snaps back (to 50 on the Data tab's old search-images slider, about 2 visitors in 5) and the page then sends the
    slider's change ~7 times a second until the box is typed into again; recorded in the page, the reset comes from
    the page's own update of the slider's inputs, seconds after the one handler of ours that outputs it (the
    page-load reconnect, which leaves it as it is) answered. That box is a number box now (which met it in none of
    12 such visitors); for the sliders left, the value counts as taken only once the line that follows it says so,
    and is typed again (what the box and the line showed is printed) when that line does not follow within a while,
    after another value: retyping the value the box already shows would send no change at all.
    """
    for attempt in range(tries):
        if attempt:  # the box may show the value already: another one first, so the value is a change again
            number(page, elem_id, value - 1 if value > 1 else value + 1)
        box = number(page, elem_id, value)
        try:
            wait_text(page, shows_id, needle, timeout=30)
            return
        except AssertionError:
            print(f"#{elem_id} did not take {value} (its box shows {box.input_value()!r}, #{shows_id} shows "
                  f"{text(page, shows_id)[:120]!r}); typing it again")  # fmt: skip
    raise AssertionError(f"#{elem_id} never took {value}: #{shows_id} never showed {needle!r}")


def open_form(page, tries: int = 4) -> None:
    """The Data tab with its model-and-data form open.

    The form opens in the page itself, at once. A click that lands while a loaded machine is still wiring up a fresh
    page is lost (the browser tier under load met it once in five runs: #model never showed): a form still closed
    after a while is clicked again, which a form that did open never is.
    """
    tab(page, "Data")
    model = page.locator("#model")
    for _ in range(tries):
        if model.is_visible():
            return
        page.get_by_text(FORM).click()
        try:
            model.wait_for(timeout=30_000)
            return
        except PlaywrightTimeout:
            continue
    model.wait_for()


def _checked(page, elem_id: str) -> str:
    """The label of a radio group's checked choice."""
    return page.evaluate(
        "id => document.querySelector(`#${id} input:checked`).closest('label').innerText.trim()", elem_id
    )


def load_line(model: str, weights: str, source: str, n_search: int) -> str:
    """The line under Load for these choices, as the page shows it (the app's own `load_summary`, unformatted)."""
    from redundancy.ui.tabs.data import load_summary

    return load_summary(model, weights, source, n_search).replace("*", "")


def choose_model(page, model: str) -> None:
    """Type a model into the Data tab's Model box; returns once the model's hint has switched data and weights to
    ones it can use (the app's own `model_hint`) and the line under Load says so."""
    from redundancy.ui.tabs.data import model_hint

    open_form(page)
    _, source, weights = model_hint(model, _checked(page, "source"), _checked(page, "weights"))
    n_search = int(page.locator("#n-search input[type=number]").first.input_value())
    box = page.locator("#model input").first
    box.click()
    box.fill(model)
    box.press("Enter")
    wait_text(page, "load-what", load_line(model, weights, source, n_search), timeout=60)


def stamp(page) -> str:
    """The page's settled stamp: it changes once Load or a reconnect has refreshed every tab."""
    return page.evaluate("() => document.querySelector('#session-settled')?.textContent.trim() ?? ''")


def settled(page, before: str, timeout: float = WAIT_S) -> None:
    """Wait until every tab has taken the new session (the stamp differs from `before`)."""
    js = "b => (document.querySelector('#session-settled')?.textContent.trim() ?? '') !== b"
    page.wait_for_function(js, arg=before, timeout=timeout * 1000)


def load(page, model: str | None = None, n_search: int | None = None, timeout: float = WAIT_S) -> str:
    """Press Load (first choosing `model` and typing `n_search` where given) and return the new load line, once
    every tab has taken the new session."""
    if model:
        choose_model(page, model)
    if n_search:
        open_form(page)
        number(page, "n-search", n_search)
        wait_text(page, "load-what", f", {n_search} search images", timeout=60)
    tab(page, "Data")
    record(page, "load-info")
    before = stamp(page)
    page.locator("#load-btn").click()
    line = wait_recorded(page, "load-info", "Loaded", timeout, fail="⚠")
    settled(page, before, timeout)
    return line


def pairs(scope: str, channels: int = CHANNELS) -> int:
    """Ordered pairs in a search of `scope` (all, every:K) as sources and targets."""
    n = channels if scope == "all" else len(range(0, channels, int(scope.split(":")[1])))
    return n * (n - 1)


def set_scope(page, scope: str, top_n: int, channels: int = CHANNELS) -> None:
    """The Search tab's sources and targets set to `scope` and its top N to `top_n`; returns once the estimate line
    (which follows all three) shows them."""
    tab(page, "Search")
    said = f"This search: {pairs(scope, channels):,} pairs"
    for attempt in range(3):  # a scope box's change was lost once in CI: typed again, from another value
        if attempt:
            print(f"#estimate did not follow the scope {scope}: {text(page, 'estimate')[:80]!r}; typing it again")
            fill(page, "sources", "auto")
            fill(page, "targets", "auto")
        fill(page, "sources", scope)
        fill(page, "targets", scope)
        slider(page, "top-n", top_n, "estimate", f"then {2**top_n - 1:,} subsets")
        try:
            wait_text(page, "estimate", said, timeout=30)
            return
        except AssertionError:
            continue
    wait_text(page, "estimate", said, timeout=30)


def search(page, scope: str = "every:64", top_n: int = 2, wait: bool = True, channels: int = CHANNELS) -> None:
    """Start a search of `scope` keeping the top `top_n` pairs (and wait for it to finish)."""
    set_scope(page, scope, top_n, channels)
    record(page, "search-status")  # this search's own status: the last one's may read the same
    page.locator("#start-btn").click()
    if wait:
        wait_recorded(page, "search-status", "Search finished")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


# The words of a table's cells that show broken over two lines or past their cell's edge (a number cut in two); a
# Gradio Dataframe shows its body as [role=gridcell] divs (its th / td rows only size the columns, unseen)
CUT_WORDS = """where => {
  const bad = [];
  for (const cell of document.querySelectorAll(`${where} th, ${where} td, ${where} [role=gridcell]`)) {
    const edge = cell.getBoundingClientRect(), walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walk.nextNode(); node; node = walk.nextNode()) {
      if (!node.parentElement.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
      for (const m of node.data.matchAll(/\\S+/g)) {
        const r = document.createRange();
        r.setStart(node, m.index);
        r.setEnd(node, m.index + m[0].length);
        const rects = [...r.getClientRects()];
        if (rects.length > 1 || rects.some(x => x.right > edge.right + 1 || x.left < edge.left - 1)) bad.push(m[0]);
      }
    }
  }
  return bad;
}"""
