"""Sharing a found set: `push` (model card, repository content, upload through huggingface_hub) and the
round trip back through `apply --replacements` (a folder, or hf:// through the Hub cache)."""

from __future__ import annotations

import json
import shutil

import pytest

from redundancy.cli import main
from redundancy.report.share import model_card
from redundancy.runs.rundir import RunDir

from ..conftest import SAMPLE, search_argv


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("share") / "run"
    assert main([*search_argv(images=4, top_n=2, channels="every:64"), "--out", str(out)]) == 0
    return out


def test_card_says_what_was_found_on_what(run):
    card = model_card(RunDir(run), "me/found-set")
    config = json.loads((run / "config.json").read_text())
    repl = json.loads((run / "replacements.json").read_text())
    assert card.startswith("---\nlibrary_name: redundancy\n")
    assert "**Random weights.**" in card and config["weights_label"] in card
    assert config["data"]["sha256"][:16] in card and "search set 4" in card
    assert f"| search (4 images) | mIoU {repl['search']['baseline_score']:.2f} |" in card
    assert "redundancy apply --replacements hf://me/found-set" in card and "from redundancy import patch" in card


@pytest.mark.slow
def test_push_to_a_folder_then_apply_from_it_and_from_hf(run, tmp_path, monkeypatch, capsys):
    repo_dir = tmp_path / "repo"
    assert main(["push", str(run), "me/found-set", "--to", str(repo_dir)]) == 0
    assert "nothing uploaded" in capsys.readouterr().out
    RunDir(repo_dir).verify()  # the shared files are the run's, hash for hash
    assert (repo_dir / "README.md").is_file() and any((repo_dir / "figures").glob("*.png"))
    out = tmp_path / "applied"
    assert main(["apply", "--replacements", str(repo_dir), "--data", str(SAMPLE), "--out", str(out), "--json"]) == 0
    local = json.loads(capsys.readouterr().out)
    import huggingface_hub

    calls = []
    monkeypatch.setattr(
        huggingface_hub,
        "snapshot_download",
        lambda repo, revision=None, **k: calls.append((repo, revision)) or str(repo_dir),
    )
    out2 = tmp_path / "applied2"
    argv = ["apply", "--replacements", "hf://me/found-set@v1", "--data", str(SAMPLE), "--out", str(out2), "--json"]
    assert main(argv) == 0
    assert calls == [("me/found-set", "v1")]
    assert json.loads(capsys.readouterr().out) == {**local, "zip": str(out2 / "predictions.zip")}


@pytest.mark.slow
def test_push_uploads_through_huggingface_hub_and_never_shows_the_token(run, monkeypatch, capsys, tmp_path):
    import huggingface_hub

    token = "hf_secretTOKEN1234567890"
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.delenv("SPACE_ID", raising=False)
    made, uploaded, given = [], [], []

    class FakeApi:
        def __init__(self, token=None):
            given.append(token)  # the push names its token: never huggingface_hub's implicit lookup

        def create_repo(self, repo, private=False, exist_ok=False):
            made.append((repo, private, exist_ok))

        def upload_folder(self, folder_path, repo_id, commit_message):
            uploaded.append((folder_path, repo_id))
            files = [p for p in __import__("pathlib").Path(folder_path).rglob("*") if p.is_file()]
            assert not any(token.encode() in p.read_bytes() for p in files)  # nothing staged holds the token

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    assert main(["push", str(run), "me/found-set", "--private"]) == 0
    printed = capsys.readouterr()
    assert made == [("me/found-set", True, True)] and uploaded[0][1] == "me/found-set" and given == [token]
    assert "https://huggingface.co/me/found-set" in printed.out and token not in printed.out + printed.err


def test_push_refuses_an_unfinished_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert main(["push", str(tmp_path), "me/x", "--to", str(tmp_path / "o")]) == 2
    assert "not a finished run" in capsys.readouterr().err


def test_push_button_only_with_the_users_own_token(monkeypatch, tmp_path):
    from redundancy.report.share import push_allowed

    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no stored login
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert not push_allowed()
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert push_allowed()
    monkeypatch.setenv("SPACE_ID", "owner/redundancy")  # a Space: the token is the owner's, visitors must not push
    assert not push_allowed()
    monkeypatch.setenv("REDUNDANCY_ALLOW_PUSH", "1")
    assert push_allowed()


@pytest.mark.slow
def test_push_to_never_writes_over_a_folder_of_the_users_own(run, tmp_path, capsys):
    """`--to` a folder holding the user's README.md and config.json is refused, both kept; an earlier bundle is
    rewritten in place (to check it again after a new figure, say)."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my notes\n")
    (mine / "config.json").write_text('{"mine": true}\n')
    assert main(["push", str(run), "me/found-set", "--to", str(mine)]) == 2
    assert "not an earlier `push --to`" in capsys.readouterr().err
    assert (mine / "README.md").read_text() == "my notes\n" and (mine / "config.json").read_text() == '{"mine": true}\n'
    assert sorted(p.name for p in mine.iterdir()) == ["README.md", "config.json"]
    bundle = tmp_path / "bundle"
    assert main(["push", str(run), "me/found-set", "--to", str(bundle)]) == 0
    assert main(["push", str(run), "me/other-name", "--to", str(bundle)]) == 0  # its own earlier bundle: rewritten
    assert "hf://me/other-name" in (bundle / "README.md").read_text()


@pytest.mark.parametrize("recorded", [True, False], ids=["notice recorded", "older run without it"])
def test_a_dinov2_demo_runs_card_and_figures_carry_its_own_label(run, tmp_path, recorded):
    """The card's banner and every figure's footer say what the model is in its own words ("not DINOv2"), from
    the weights the run recorded; a run written before the notice was recorded derives it from its label."""
    from redundancy.models import build_backend
    from redundancy.report.figures import render

    weights = build_backend("dinov2_tiny_demo", device="cpu").weights.to_dict()
    own = weights["notice"]
    assert "not DINOv2" in own and "not SAM" not in own
    if not recorded:
        del weights["notice"]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config | {"weights": weights}))
    card = model_card(RunDir(copy), "me/found-set")
    assert f"**Demo model.** Found on the {own}." in card and "not SAM" not in card
    svgs = [p for p in render([copy], tmp_path / "figures", formats=("svg",), verify=False) if p.suffix == ".svg"]
    assert svgs and all(own in p.read_text() and "not SAM" not in p.read_text() for p in svgs)
