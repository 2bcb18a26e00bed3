"""Shared fixtures: the bundled sample data, a seeded random-weight sam_tiny, a private feature cache."""

from __future__ import annotations

import os

# The browser tests' app, Chromium and the test itself share the cores: torch's threads wait passively rather than
# spin (`redundancy/threads.py`); test_browser.py ran in 130 s instead of 201 s on 2 cores. Before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "sample"
# where browser tests leave screenshots for a person to look at: never the repository
SHOTS = Path(os.environ.get("REDUNDANCY_SHOTS") or Path(tempfile.gettempdir()) / "redundancy-screenshots")


# a rough cost per test, seconds on 2 loaded cores: what orders the files for the two workers
COST_S = {"browser": 15.0, "slow": 4.0}


def pytest_collection_modifyitems(config, items):
    """The costliest test files first (each file stays whole and in order): `--dist loadfile` hands files out in
    this order, so the long browser files start early instead of leaving one worker alone with them at the end."""
    cost: dict[str, float] = {}
    for item in items:
        marks = {m.name for m in item.iter_markers()}
        cost[str(item.path)] = cost.get(str(item.path), 0) + max(
            [COST_S[m] for m in marks & COST_S.keys()], default=0.1
        )
    items.sort(key=lambda item: -cost[str(item.path)])  # stable: a file's own order is kept


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Never touch the user's ~/.cache: every test session gets its own cache root."""
    os.environ["REDUNDANCY_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def sample() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def tiny():
    from redundancy.models import build_backend

    return build_backend("sam_tiny", random_init=True, seed=0, device="cpu")


def load_app(model="sam_tiny", weights=0, source=None, n_search=4, ws=None, **form) -> list:
    """The Data tab's Load with these controls (weights: an index into its weights choices; source: its bundled
    sample by default): [workspace, badge, summary, gallery] (the other tabs refresh themselves after it)."""
    from redundancy.ui.tabs import data

    source = data.BUNDLED if source is None else source
    form = data.LoadForm(model=model, weights=data.WEIGHTS[weights], source=source, n_search=n_search, **form)
    values = [getattr(form, name) for name in data.LOAD_FIELDS]
    return data.load(ws, *values, progress=lambda *a, **k: None)  # the button's own (guarded) handler


def search_argv(*extra: str, model="sam_tiny", seed=0, images=4, heldout=2, top_n=3, channels="every:32"):
    """argv for a small random-weight `search` on the sample data; `extra` flags come last (and win)."""
    return [
        "search",
        "--model",
        model,
        "--random-init",
        "--seed",
        str(seed),
        "--data",
        str(SAMPLE),
        "--search-images",
        str(images),
        "--heldout-images",
        str(heldout),
        "--top-n",
        str(top_n),
        "--sources",
        channels,
        "--targets",
        channels,
        *extra,
    ]


def predictor_kwargs(prompt) -> dict:
    """The same prompt as keyword arguments of SamPredictor / SAM2ImagePredictor.predict."""
    if prompt.box:
        return {"box": np.array(prompt.box)}
    if prompt.point:
        return {"point_coords": np.array([prompt.point]), "point_labels": np.array([1])}
    return {}


def write_pair(folder: Path, stem: str, size=(40, 30), box=(5, 5, 20, 20), mask_value=255, ext=".png") -> None:
    """One image + mask in an images/ + masks/ dataset."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        folder / "images" / f"{stem}{ext}"
    )
    mask = np.zeros((size[1], size[0]), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = mask_value
    Image.fromarray(mask).save(folder / "masks" / f"{stem}.png")


def stop_group(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a process started with `start_new_session=True` and everything it started (its process group): SIGTERM,
    then SIGKILL for what is left. `proc.terminate()` alone reaches only the parent, and an app's forked workers
    (ZeroGPU's) outlive it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:  # the whole group is gone
            break
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            continue
        time.sleep(0.2)  # the parent is gone; its children get the next signal if they linger
    proc.wait(timeout=timeout)


@contextmanager
def running_app(folder: Path, command: list[str] | None = None, env: dict | None = None):
    """`python app.py` (or `command`) on a free 127.0.0.1 port with its own cache under `folder`; its URL. The app
    runs in its own process group, stopped whole when the block ends."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "REDUNDANCY_POLL_S": "0.25",
        "REDUNDANCY_JOBS": "lockstep",  # every stage a job passes reaches the page (`interactive.jobs`)
        "REDUNDANCY_CACHE": str(folder / "app-cache"),
        **(env or {}),
    }
    log_path = folder / "app.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            command or [sys.executable, "app.py"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop_group` reaches the workers it forks
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.5)
        else:
            stop_group(proc)
            pytest.fail(f"app did not start; see {log_path}")
        if proc.poll() is not None:
            stop_group(proc)
            pytest.fail(f"app exited; see {log_path}: {log_path.read_text()[-2000:]}")
        try:
            yield url
        finally:
            stop_group(proc)


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """The app on a free port, shared by the browser and client tests; stopped after the session. It runs its work
    in its own process whatever the shell says (not as ZeroGPU tasks, not as a Space): what the tests check is
    what the page shows, not how long a GPU worker takes to start."""
    local = {"SPACES_ZERO_GPU": "", "SPACE_ID": ""}  # zerogpu.ON false: the workspace's LocalExecutor
    with running_app(tmp_path_factory.mktemp("app"), env=local) as url:
        yield url
