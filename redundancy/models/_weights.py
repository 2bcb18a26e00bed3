"""Checkpoint download, cache, sha256 verification and safe loading (no model code here)."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import torch
from safetensors.torch import load_file as load_safetensors
from tqdm import tqdm

from ..bundled import DEMO_LABEL, notice_for
from ..errors import WeightsError
from ..hub import user_token
from ..io import cache_dir
from ..io import sha256_file as sha256_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightsInfo:
    """Where a model's weights came from; `label` is what every output shows."""

    kind: str  # "random" | "checkpoint" | "demo" (a model this repository trained, shipped in assets/demo) | "module"
    seed: int | None = None
    sha256: str | None = None
    path: str | None = None
    finetuned: dict | None = None  # FinetuneReport.to_dict() of a plug-in fine-tune over these weights
    state_sha256: str | None = None  # hash of the loaded state dict's contents: what the weights really are
    hub: dict | None = None  # a Hub checkpoint: repo, file, requested revision and the commit it resolved to
    note: str | None = None  # a demo model's own label (what it is and is not); default DEMO_LABEL

    @property
    def label(self) -> str:
        if self.kind == "random":
            base = f"random weights (seed {self.seed})"
        else:
            assert self.sha256 is not None, "the loader hashes every file it reads"
            if self.kind == "demo":
                base = f"{self.note or DEMO_LABEL} (sha256:{self.sha256[:12]})"
            elif self.kind == "module":
                base = f"the module's own weights, given from Python (state sha256:{self.sha256[:12]})"
            elif self.hub:
                h = self.hub
                at = (h.get("commit") or h.get("revision") or "?")[:12]
                base = f"hf://{h['repo']}/{h['file']}@{at} sha256:{self.sha256[:12]}"
                if h.get("same_as_official_file"):
                    base += " (byte for byte Meta's official file)"
            else:
                base = f"checkpoint sha256:{self.sha256[:12]}"
        if self.finetuned:
            base += f" + {self.finetuned['kind']} fine-tune sha256:{self.finetuned['sha256'][:12]}"
        return base

    @property
    def notice(self) -> str | None:
        """The warning every output of this model's results carries (None: a real checkpoint needs none)."""
        return notice_for(self.kind, self.note)

    @property
    def key(self) -> str:
        """Stable identity used in cache keys and run configs: the weights' content where it is known.

        Keyed by content, no label can alias two weight sets (a seed built wrongly, a file edited in place).
        """
        if self.state_sha256:
            return f"state-{self.state_sha256}"
        key = f"random-seed{self.seed}" if self.kind == "random" else f"sha256-{self.sha256}"
        return key + (f"+ft-{self.finetuned['sha256']}" if self.finetuned else "")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "label": self.label,
            "notice": self.notice,
            "seed": self.seed,
            "sha256": self.sha256,
            "path": self.path,
            "finetuned": self.finetuned,
            "state_sha256": self.state_sha256,
            "hub": self.hub,
        }


OFFLINE_FIX = (
    "download the file elsewhere and give it as the checkpoint file (CLI: --checkpoint PATH), or use random weights "
    "for a pipeline test (CLI: --random-init)."
)


def download(url: str, sha256: str | None, dest: Path, progress: bool = True, offline_fix: str = OFFLINE_FIX) -> Path:
    """Download `url` to `dest` with a progress bar; verify sha256 (when published) before it appears; a failed
    connection says `offline_fix`."""
    log.info("downloading %s to %s", url, dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            h = hashlib.sha256()
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        if sha256 is not None and h.hexdigest() != sha256:
            raise WeightsError(
                f"downloaded {dest.name} has sha256 {h.hexdigest()[:16]}..., expected {sha256[:16]}...; "
                "the download was corrupted or the file changed upstream. Try again, or give the checkpoint file."
            )
        tmp.replace(dest)
        return dest
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        raise WeightsError(f"could not download {url} ({e}). This machine may be offline: {offline_fix}") from e
    finally:
        tmp.unlink(missing_ok=True)


def fetch(url: str, sha256: str | None, progress: bool = True, offline_fix: str = OFFLINE_FIX) -> Path:
    """Path of the official checkpoint in the cache, downloading it on first use (verified when a hash exists)."""
    dest = cache_dir() / "checkpoints" / url.rsplit("/", 1)[-1]
    if dest.exists():
        if sha256 is None or sha256_of(dest) == sha256:
            return dest
        log.warning("cached %s does not match its sha256; downloading it again", dest.name)
        dest.unlink()  # a stale or corrupted cached copy: fetch it again
    return download(url, sha256, dest, progress, offline_fix)


OFFICIAL_FIX = (
    "it is not the official checkpoint for this model (or it is truncated). Pick the matching model or re-download."
)


def load_state_dict(
    path: Path, expected_sha256: str | None = None, fix: str = OFFICIAL_FIX, trusted_sha256: str | None = None
) -> tuple[dict, str]:
    """Safely load a checkpoint's tensors (no pickled code runs) and return (state_dict, sha256).

    With `expected_sha256` the file's hash is checked before anything is parsed; `fix` says what to do if not.
    A TorchScript archive (OpenAI's CLIP files) holds code as well as tensors: it is opened only when its
    hash is `trusted_sha256`, the published hash of an official file.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"checkpoint {path} does not exist; check the path, or give no checkpoint to download the official one."
        )
    digest = sha256_of(path)
    if expected_sha256 and digest != expected_sha256:
        raise WeightsError(f"{path.name} has sha256 {digest[:16]}..., expected {expected_sha256[:16]}...; {fix}")
    if path.suffix == ".safetensors" or _is_safetensors(path):  # tensors only: safe by construction
        try:
            return _checked(load_safetensors(str(path)), path.name), digest
        except WeightsError:
            raise
        except Exception as e:  # safetensors raises its own SafetensorError for a damaged file
            raise WeightsError(f"{path.name} is not a readable .safetensors file ({e}); re-download it.") from e
    if _is_torchscript(path):
        if trusted_sha256 is None or digest != trusted_sha256:
            raise WeightsError(
                f"{path.name} is a TorchScript archive (code as well as tensors); only an official file whose "
                "sha256 is published is opened that way. Give the weights as a state dict (torch.save of "
                "model.state_dict(), or .safetensors)."
            )
        return _checked(torch.jit.load(str(path), map_location="cpu").state_dict(), path.name), digest
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = next((line.strip() for line in str(e).splitlines() if "Unsupported global" in line), None)
        if found is None:  # the unpickler met bytes that are no pickle at all
            raise WeightsError(
                f"{path.name} is not a readable PyTorch checkpoint (not a pickle or zip of tensors); re-download it."
            ) from e
        raise WeightsError(
            f"{path.name} holds more than tensors (pickled code or objects: {found}), which safe loading refuses. "
            "Re-save it as a plain state dict: torch.save(model.state_dict(), path)."
        ) from e
    except Exception as e:  # torch.load raises many kinds (zip, pickle, storage) for a file it cannot read
        first = str(e).splitlines()[0][:160] if str(e) else e.__class__.__name__
        raise WeightsError(
            f"{path.name} is not a readable PyTorch checkpoint (truncated or wrong format: {first}); re-download it."
        ) from e
    for key in ("model", "state_dict"):  # training scripts often wrap the weights
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path.name} does not hold a state dict of tensors; save model.state_dict().")
    return _checked(state, path.name), digest


def _is_torchscript(path: Path) -> bool:
    """Whether a file is a TorchScript archive (a zip holding compiled code beside its tensors)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(n.endswith("/constants.pkl") for n in zf.namelist())


def _is_safetensors(path: Path) -> bool:
    """Whether a file is in the safetensors format: an 8-byte header length, then a JSON header."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _checked(state: dict, name: str) -> dict:
    """A state dict whose keys are names and whose values are ordinary (dense, real) tensors."""
    bad_key = next((k for k in state if not isinstance(k, str)), None)
    if bad_key is not None:
        raise WeightsError(f"{name}: key {bad_key!r} is not a tensor name; save model.state_dict() (string keys).")
    for k, v in state.items():
        if v.layout != torch.strided or v.is_meta or v.is_complex() or v.is_quantized:
            kind = "meta (no data)" if v.is_meta else "complex" if v.is_complex() else f"{v.layout}"
            raise WeightsError(
                f"{name}: tensor {k} is {kind}, not ordinary weights; save the model's dense weights "
                "(model.state_dict() after loading them)."
            )
    return state


def load_into(model: torch.nn.Module, state: dict, name: str, model_name: str) -> None:
    """Strictly load `state` into `model`; mismatches produce one readable report."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    check_dtypes(own, state, name)
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            k = shapes[0]
            parts.append(
                f"{len(shapes)} tensors have other shapes (e.g. {k}: file {tuple(state[k].shape)}, "
                f"model {tuple(own[k].shape)})"
            )
        if missing:
            parts.append(f"{len(missing)} keys missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        raise WeightsError(
            f"{name} does not fit {model_name}: {'; '.join(parts)}. Is it a checkpoint for another model size? "
            "Pick the model that matches the file."
        )
    model.load_state_dict(state, strict=True)


def check_dtypes(own: dict, state: dict, name: str) -> None:
    """Refuse tensors whose kind differs from the model's: integer or boolean values where it holds floats
    (a quantised or corrupted file would otherwise load, silently cast)."""
    for k, v in state.items():
        if k in own and own[k].is_floating_point() and not v.is_floating_point():
            raise WeightsError(
                f"{name}: tensor {k} holds {str(v.dtype).removeprefix('torch.')} values where the model has "
                f"{str(own[k].dtype).removeprefix('torch.')} weights (a quantised or damaged file?); give the "
                "checkpoint in floating point."
            )


def state_sha256(model: torch.nn.Module, source: str) -> str:
    """sha256 over the model's state dict (names, dtypes, shapes, bytes); refuses NaN or Inf weights.

    `source` names where the weights came from, for the message.
    """
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise WeightsError(
                f"{source}: tensor {name} holds NaN or Inf values; the checkpoint is broken (a diverged or "
                "corrupted training run). Use another file."
            )
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


HUB_SCHEME = "hf://"
HUB_DEFAULT_FILES = ("model.safetensors", "pytorch_model.bin")  # what a repo named without a file is read from


@dataclass(frozen=True)
class HubRef:
    """hf://OWNER/REPO[/FILE][@REVISION]: a file in a Hugging Face Hub model repository."""

    repo: str
    file: str | None = None
    revision: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubRef:
        body = text[len(HUB_SCHEME) :]
        body, _, revision = body.partition("@")
        parts = [p for p in body.split("/") if p]
        if len(parts) < 2:
            raise WeightsError(f"'{text}' names no repository; write hf://OWNER/REPO[/FILE][@REVISION].")
        return cls("/".join(parts[:2]), "/".join(parts[2:]) or None, revision or None)


def is_hub(spec: object) -> TypeGuard[str]:
    """Whether a checkpoint argument names a Hub file (hf://...)."""
    return isinstance(spec, str) and spec.startswith(HUB_SCHEME)


def prefer_hub(ref: str) -> bool:
    """Use the registry's Hub copy instead of Meta's URL: on a Hugging Face Space (SPACE_ID is set), or
    wherever the file is already in the Hub cache (a Space's preload_from_hub, an earlier download)."""
    from huggingface_hub import try_to_load_from_cache

    if os.environ.get("SPACE_ID"):
        return True
    hub = HubRef.parse(HUB_SCHEME + ref)
    return isinstance(try_to_load_from_cache(hub.repo, hub.file or HUB_DEFAULT_FILES[0]), str)


def hub_fetch(text: str, progress: bool = True, fix: str | None = None) -> tuple[Path, dict]:
    """(local path, record) of an hf:// checkpoint through huggingface_hub: its cache, progress bar, token
    (`hub.user_token`: HF_TOKEN or `hf auth login`; none for a Space visitor) and offline mode (HF_HUB_OFFLINE=1)
    apply; a file already in the cache (a Space's preload_from_hub, an earlier run) is never downloaded twice."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    ref = HubRef.parse(text)
    names = (ref.file,) if ref.file else HUB_DEFAULT_FILES
    last: Exception | None = None
    for name in names:
        try:
            path = Path(hf_hub_download(ref.repo, name, revision=ref.revision, token=user_token()))
        except LocalEntryNotFoundError as e:  # (a subclass of EntryNotFoundError: caught first)
            raise WeightsError(
                f"{text}: not in the local Hub cache and the Hub cannot be reached (offline, or HF_HUB_OFFLINE=1); "
                + (fix or "download it where the Hub is reachable, or pass the file's local path.")
            ) from e
        except EntryNotFoundError as e:
            last = e
            continue
        except (HfHubHTTPError, OSError, ValueError) as e:
            raise WeightsError(
                f"{text}: the Hub refused or failed ({e.__class__.__name__}: {str(e).splitlines()[0][:160]}); "
                "check the repository, file and revision names, and your token for a private or gated repo."
            ) from e
        parts = path.parts  # <cache>/models--OWNER--REPO/snapshots/<commit>/<file>: the resolved commit
        commit = parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None
        record = {"repo": ref.repo, "file": name, "revision": ref.revision, "commit": commit}
        return path, record
    raise WeightsError(
        f"{text}: the repository has none of {', '.join(names)} ({last.__class__.__name__}); name the file: "
        f"hf://{ref.repo}/FILE."
    )
