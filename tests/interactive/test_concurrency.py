"""Two clients at once on one server: each gets its own results and cannot fetch the other's files."""

from __future__ import annotations

import io
import json
import os
import time
import urllib.error
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from redundancy.interactive.workspace import APP_ROOT

from ..conftest import write_pair

pytestmark = pytest.mark.slow  # every test here shares a set-up that costs a search or a server


def _session(url: str, data_zip: Path | None, n_search: int) -> dict:
    client = Client(url, verbose=False)
    source = "upload a .zip" if data_zip else "bundled sample (random shapes, 32 images)"
    load = client.predict(
        "sam_tiny",
        "random weights (seeded, for trying the tool)",
        None,
        None,
        0,
        source,
        handle_file(str(data_zip)) if data_zip else None,
        n_search,
        "none",
        api_name="/load",
    )
    result = client.predict(2, "miou", "every:64", "every:64", 0, api_name="/search")
    summary, _gallery, files = client.predict(api_name="/show_results")
    paths = {Path(f).name: f for f in files}
    with zipfile.ZipFile(paths["predictions.zip"]) as zf:
        masks = [n for n in zf.namelist() if n.startswith("masks/")]
    repl = json.loads(Path(paths["replacements.json"]).read_text())
    return {
        "info": load[1],
        "status": result[1],
        "summary": summary,
        "masks": masks,
        "repl": repl,
        "run": summary.split("run folder `")[1].split("`")[0],
    }


def test_two_clients_get_their_own_results(app_url, tmp_path):
    for k in range(5):  # client B's own dataset: 5 images, folder layout
        write_pair(tmp_path / "b", f"b{k}", size=(48, 40), box=(5 + k, 6, 30, 30))
    data_zip = tmp_path / "b.zip"
    with zipfile.ZipFile(data_zip, "w") as zf:
        for p in (tmp_path / "b").rglob("*.png"):
            zf.write(p, str(p.relative_to(tmp_path / "b")))
    with ThreadPoolExecutor(2) as pool:
        a_future = pool.submit(_session, app_url, None, 3)
        b_future = pool.submit(_session, app_url, data_zip, 2)
        a, b = a_future.result(timeout=300), b_future.result(timeout=300)
    assert "**32** images" in a["info"] and "**5** images" in b["info"]
    assert "Search finished" in a["status"] and "Search finished" in b["status"]
    assert len(a["masks"]) == 32 and len(b["masks"]) == 5
    assert sorted(b["masks"]) == [f"masks/b{k}.png" for k in range(5)] and not set(a["masks"]) & set(b["masks"])
    assert a["repl"]["search"]["images"] == 3 and b["repl"]["search"]["images"] == 2
    # B's run folder lives in B's private workspace; the server refuses it to anyone by path
    b_files = list(APP_ROOT.glob(f"*/{b['run']}/replacements.json"))
    assert b_files, "B's run folder should exist on the server"
    for target in (b_files[0], Path("/etc/passwd")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{app_url}/gradio_api/file={target}", timeout=10)
        assert err.value.code in (403, 404)


def test_expired_session_folders_go_on_a_timer(tmp_path):
    from redundancy.interactive.janitor import start_janitor

    old, fresh = tmp_path / "old-session", tmp_path / "fresh-session"
    old.mkdir()
    fresh.mkdir()
    stop = start_janitor(tmp_path, max_age_s=60, every_s=0.05)
    try:
        time.sleep(0.2)
        assert not old.exists() or time.time() - old.stat().st_mtime < 60  # younger than the TTL: kept
        past = time.time() - 120
        os.utime(old, (past, past))  # the client left two minutes ago and never said so
        deadline = time.time() + 5
        while old.exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not old.exists() and fresh.exists()
    finally:
        stop.set()


def test_what_the_server_serves_of_a_sessions_results(app_url, tmp_path):
    """README, Limits and safety: a returned file is served at its URL to anyone holding the URL; nothing else."""
    repl = tmp_path / "replacements.json"
    repl.write_text(json.dumps({"model": "sam_tiny", "pairs": [{"source": 1, "target": 2}]}))
    a = Client(app_url, verbose=False, download_files=False)
    a.predict(
        "sam_tiny",
        "random weights (seeded, for trying the tool)",
        None,
        None,
        0,
        "bundled sample (random shapes, 32 images)",
        None,
        2,
        "none",
        api_name="/load",
    )
    _, _, out = a.predict(handle_file(str(repl)), None, api_name="/apply_uploaded")
    url = out["url"]
    body = urllib.request.urlopen(url, timeout=30).read()  # a plain GET, no session: served
    assert zipfile.is_zipfile(io.BytesIO(body))
    assert str(APP_ROOT) not in url  # a copy in Gradio's cache, not the session folder
    with pytest.raises(urllib.error.HTTPError) as err:  # the session folder itself is never served
        ws_file = next(APP_ROOT.glob("*/apply-*/applied_predictions.zip"))
        urllib.request.urlopen(f"{app_url}/gradio_api/file={ws_file}", timeout=10)
    assert err.value.code in (403, 404)


def test_a_workspace_is_found_only_by_its_own_id(tmp_path):
    from redundancy.interactive.janitor import close_detached
    from redundancy.interactive.workspace import Workspace

    a, b = Workspace(root=tmp_path), Workspace(root=tmp_path)
    try:
        assert Workspace.reconnect(a.key) is a and Workspace.reconnect(b.key) is b
        assert Workspace.reconnect("") is None and Workspace.reconnect("0" * 32) is None
        a.detach()
        assert close_detached(max_age_s=3600) == 0 and Workspace.reconnect(a.key) is a  # came back: kept
        a.detach()
        a.detached_at -= 7200
        assert close_detached(max_age_s=3600) == 1 and Workspace.reconnect(a.key) is None and not a.dir.exists()
    finally:
        a.close()
        b.close()
