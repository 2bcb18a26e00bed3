"""Share a found set on the Hugging Face Hub: a run directory plus a model card, and fetching one back.

`bundle` lays out what a Hub repository of a run holds (the verified run files, its figures and a
README.md model card written from the run); `push` uploads that folder with huggingface_hub (its
token handling: HF_TOKEN or `hf auth login`; the token is never printed or stored here); `fetch_run`
brings a shared run back as a local run directory (`--replacements hf://OWNER/REPO`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from ..bundled import weights_notice
from ..errors import RedundancyError, RunError
from ..hub import network_errors, on_space, user_token
from ..io import ensure_folder
from ..replace import pair_of, pair_text
from ..runs.resume import is_run_folder
from ..runs.rundir import ABLATION, MANIFEST, SEARCH_FILES, RunDir
from ..tasks import SEGMENT, get_task
from .figures import render

CARD = "README.md"
CARD_START = "---\nlibrary_name: redundancy\n"  # how every model card `model_card` writes begins
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")  # the Hub's OWNER/NAME


def _value(config: dict, score: float | None) -> str:
    """A stored score as a user reads it, in the run's metric."""
    if score is None:
        return "n/a"
    metric = get_task(config.get("task", SEGMENT)).metric(config.get("search", {}).get("metric"))
    return metric.show(score)


def family_label(config: dict) -> str:
    """How papers name the run's model family ("SAM", "DINOv2", ...): as the run recorded it, or (runs written
    before the family was recorded) as the registry knows the model."""
    if "family_label" in config:
        return config["family_label"]
    from ..models import family_of  # only for older runs: the registry loads the model classes

    try:
        return family_of(config["model"]).label
    except RedundancyError:
        return config["model"]


def model_card(run: RunDir, repo: str) -> str:
    """README.md for a shared run: what was searched, on what, what it gained, and how to apply it."""
    c, r = run.config(), run.replacements()
    s, h = r["search"], r.get("heldout")
    weights = c["weights"]
    hub = weights.get("hub") or {}
    base_model = hub.get("repo")
    pairs = [pair_of(p) for p in r["pairs"]]
    task = c.get("task", SEGMENT)
    family = family_label(c)
    tags = ["redundancy", "parameter-free", "channel-replacement", task, family.lower()]
    front = [*CARD_START.splitlines(), "tags:"] + [f"- {t}" for t in tags]
    if base_model:
        front.append(f"base_model: {base_model}")
    front.append("---")
    notice = weights_notice(weights)  # the model's own words: a DINOv2 demo is "not DINOv2", not "not SAM"
    warning = {
        "random": "> **Random weights.** This set was found on a seeded random-weight model: a pipeline check, "
        "not a result.\n",
        "demo": f"> **Demo model.** Found on the {notice}.\n",
    }.get(weights.get("kind"), "")
    heldout = (
        f"| held-out ({h['images']} images) | {_value(c, h['baseline_score'])} | {_value(c, h['patched_score'])} |"
        if h
        else "| held-out | none | none |"
    )
    pair_list = ", ".join(pair_text(p) for p in pairs) or "the empty set (nothing beat the baseline)"
    return "\n".join(
        [
            *front,
            "",
            f"# Redundant-channel replacement set for `{c['model']}`",
            "",
            warning,
            "A zero-parameter patch found by [redundancy](https://arxiv.org/abs/2504.08915): on the encoder "
            "output, channel i takes channel j's values for every pair below. Nothing was trained.",
            "",
            f"- model: `{c['model']}` ({c['channels']} channels), task `{task}`",
            f"- weights: {weights['label']}",
            f"- data: sha256 `{c['data']['sha256'][:16]}...`, {c['data']['images']} images, search set "
            f"{len(c['data']['search_set'])}, protocol `{c['protocol']}`",
            f"- search: metric `{c['search']['metric']}`, top N {c['search']['top_n']}, mode `{c['search']['mode']}`, "
            f"{c['pairs_scored']:,} pairs scored",
            *([f"- head: {c['head']['label']}"] if c.get("head") else []),
            f"- pairs (source ← target): {pair_list}",
            "",
            "| set | baseline | patched |",
            "|---|---|---|",
            f"| search ({s['images']} images) | {_value(c, s['baseline_score'])} | {_value(c, s['patched_score'])} |",
            heldout,
            "",
            "## Apply it",
            "",
            "```python",
            "from redundancy import patch",
            "",
            f"handle = patch(model, {pairs!r})  # your {family} model; handle.remove() undoes it",
            "```",
            "",
            "or with the command line, on your images (masks, labels or depth maps optional):",
            "",
            "```",
            f"redundancy apply --replacements hf://{repo} --data my_images/ --out predictions/",
            "```",
            "",
            "The repository is the search's run directory (`manifest.json` holds every file's sha256; "
            "`config.json` everything needed to repeat the search).",
            "",
        ]
    )


def is_bundle(folder: Path) -> bool:
    """Whether `folder` holds what `bundle` writes: a run's manifest (by its schema) and this tool's model card."""
    card = folder / CARD
    try:
        ours = card.is_file() and card.read_text(errors="replace").startswith(CARD_START)
    except OSError:
        return False
    return ours and is_run_folder(folder)


def check_bundle_folder(out: Path) -> Path:
    """`out` as a folder `bundle` may write into: new, empty, or an earlier bundle (refused otherwise: its README.md
    and config.json would be replaced)."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not is_bundle(out):
        raise RunError(
            f"--to {out} already holds files that are not an earlier `push --to` of a run (e.g. "
            f"{sorted(p.name for p in out.iterdir())[0]}); give a new or empty folder, so that nothing of yours is "
            "replaced."
        )
    return ensure_folder(out, "--to")


def bundle(run: Path, out: Path, repo: str) -> Path:
    """Write the Hub repository's content for a finished run into `out` (new, empty or an earlier bundle): run files,
    figures, model card. `repo` is checked as a push checks it: the card tells readers to apply hf://`repo`."""
    repo = check_repo_id(repo)
    out = check_bundle_folder(out)
    rd = RunDir(run)
    rd.verify()
    for name in (*SEARCH_FILES, ABLATION, MANIFEST):
        if (rd.path / name).is_file():
            shutil.copy2(rd.path / name, out / name)
    figures = rd.path / "figures"
    if not figures.is_dir():
        render([rd.path], figures, ("png",))
    shutil.copytree(figures, out / "figures", dirs_exist_ok=True)
    (out / CARD).write_text(model_card(rd, repo))
    return out


def push_allowed() -> bool:
    """Whether a front end offers a push: a Hub token is configured and it is the user's own.

    On a Space the token is the owner's secret, and every visitor would push with it; there a push is offered
    (and its app endpoint registered) only where the owner opts in (REDUNDANCY_ALLOW_PUSH=1, e.g. on a private
    duplicate). `push` checks the same, whoever calls it.
    """
    return bool(user_token())


def push_token() -> str:
    """The user's own Hub token for a push, or one line saying why a push is off here."""
    token = user_token()
    if not token:
        raise RunError(
            "pushing to the Hub is off here: on a Hugging Face Space the token is the owner's, so visitors cannot push "
            "(the owner may set REDUNDANCY_ALLOW_PUSH=1 on a private duplicate)."
            if on_space()
            else "no Hub token: log in first (`hf auth login` or HF_TOKEN) with write access, then push again."
        )
    return str(token)


def check_repo_id(repo: str) -> str:
    """`repo` stripped, if it names a Hub repository as OWNER/NAME; else one line saying so."""
    repo = (repo or "").strip()
    if not REPO_ID.fullmatch(repo):
        raise RunError(f"'{repo}' is not a Hub repository name; write it as OWNER/NAME (e.g. you/my-found-set).")
    return repo


def push(run: Path, repo: str, private: bool = False, staging: Path | None = None) -> str:
    """Upload a finished run to the Hub repository `repo` (created if needed); returns its URL."""
    repo = check_repo_id(repo)
    import tempfile

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = push_token()  # given explicitly: on a Space, never the owner's secret without the owner's opt-in
    folder = bundle(run, Path(staging or tempfile.mkdtemp(prefix="redundancy-push-")), repo)
    api = HfApi(token=token)
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message=f"redundancy run {Path(run).name}")
    except (HfHubHTTPError, OSError, ValueError, *network_errors()) as e:  # the last: the Hub cannot be reached
        raise RunError(
            f"could not upload to {repo} ({e.__class__.__name__}); check the repository name, that you are logged "
            "in (`hf auth login` or HF_TOKEN) with write access, and the network."
        ) from None
    return f"https://huggingface.co/{repo}"


def fetch_run(source: str) -> Path:
    """A shared run as a local run directory: a folder, or hf://OWNER/REPO[@REVISION] (through the Hub cache)."""
    if not source.startswith("hf://"):
        path = Path(source)
        if path.is_file() and path.name == "replacements.json":
            path = path.parent
        if not (path / "replacements.json").is_file():
            raise RunError(f"{source} holds no replacements.json; give a run folder or hf://OWNER/REPO.")
        return path
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, _, revision = source.removeprefix("hf://").partition("@")
    try:
        return Path(snapshot_download(repo.strip("/"), revision=revision or None, token=user_token()))
    except LocalEntryNotFoundError:
        raise RunError(
            f"{source}: not in the local Hub cache and the Hub cannot be reached; try again online."
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise RunError(
            f"{source}: the Hub refused or failed ({e.__class__.__name__}); check the repository name."
        ) from None
