"""The README front matter is a valid Space configuration, and what it preloads is what the registry reads."""

from __future__ import annotations

import gradio
import huggingface_hub
import pytest

from redundancy.models import REGISTRY

from ..conftest import ROOT

# Every key of the Spaces configuration reference (https://huggingface.co/docs/hub/spaces-config-reference).
DOCUMENTED = {
    "title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "python_version", "app_file", "app_port",
    "base_path", "fullWidth", "header", "short_description", "models", "datasets", "tags", "thumbnail", "pinned",
    "hf_oauth", "hf_oauth_scopes", "hf_oauth_expiration_minutes", "hf_oauth_authorized_org", "disable_embedding",
    "startup_duration_timeout", "custom_headers", "preload_from_hub", "license", "suggested_hardware",
    "suggested_storage",
}  # fmt: skip
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}


@pytest.fixture(scope="module")
def meta() -> dict:
    return huggingface_hub.metadata_load(ROOT / "README.md")


def test_front_matter_uses_documented_keys_with_valid_values(meta):
    assert set(meta) <= DOCUMENTED, set(meta) - DOCUMENTED
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == gradio.__version__  # the pinned Gradio
    assert (ROOT / meta["app_file"]).is_file() and meta["python_version"] == "3.11"
    assert meta["suggested_hardware"] in {h.value for h in huggingface_hub.SpaceHardware}
    assert {meta["colorFrom"], meta["colorTo"]} <= COLORS
    assert 0 < len(meta["short_description"]) <= 60
    card = huggingface_hub.SpaceCard.load(ROOT / "README.md")  # the Hub's own parser accepts it
    assert card.data.sdk == "gradio" and card.data.models == meta["models"]


def test_preloaded_files_are_the_registry_hub_copies_the_app_reads(meta):
    """Each preload_from_hub entry is 'REPO FILE', lists a model of `models:`, and is a registry Hub copy."""
    hub_files = {spec.hub for spec in REGISTRY.values() if spec.hub}
    repos = []
    for entry in meta["preload_from_hub"]:
        repo, files = entry.split(" ")
        repos.append(repo)
        for f in files.split(","):
            assert f"{repo}/{f}" in hub_files, entry
    assert repos == meta["models"]


def test_the_app_says_how_long_a_first_search_takes_and_how_to_run_it_locally(monkeypatch):
    from redundancy.ui.tabs.data import about_text

    monkeypatch.delenv("SPACE_ID", raising=False)
    text = about_text()  # the About box: no fixed time (the Search tab measures it), how to duplicate and run
    assert "measured on this machine" in text and "Duplicate this Space" in text
    assert "pip install -r requirements.txt" in text and "git clone" not in text and "<" not in text
    monkeypatch.setenv("SPACE_ID", "someone/redundancy")  # on a Space: the command clones that Space
    assert "git clone https://huggingface.co/spaces/someone/redundancy redundancy" in about_text()
