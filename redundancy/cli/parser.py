"""The command line's flags: one parser for every verb, its choices read from the registries (tasks, metrics,
search modes and their options, protocols), and the frozen configs the flags build."""

from __future__ import annotations

import argparse
import difflib
import re
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ..devices import DEVICES, check_device
from ..errors import DeviceError
from .catalogue import load

if TYPE_CHECKING:  # the engine loads after parsing: --help and a mistyped flag answer before torch is imported
    from ..engine import SearchSettings, SessionConfig
    from ..replace import Edit

DESCRIPTION = (
    "Find redundant channels in a vision foundation model's encoder (SAM, SAM2, DINOv2, ...) and replace them with "
    "copies of useful ones: the model adapts to your data with zero trained parameters. Every verb has --help."
)
EPILOG = (
    "a first run (offline, about a minute on a 2-core CPU, from the repository root): python -m redundancy search "
    "--data assets/domains/gray --search-images 16 --top-n 6 --out runs/gray"
)
TRAIN_OUT = Path("runs") / "train-demo"  # train-demo's default --out: never the shipped assets/demo
TRAIN_FLAGS = (
    ("steps", int, "optimizer steps (cosine schedule)"),
    ("batch", int, "source images per step"),
    ("lr", float, "peak AdamW learning rate"),
    ("seed", int, "seed of the weights and the image stream"),
    ("eval_every", int, "steps between source-score checks"),
)  # train-demo's TrainConfig fields: unset ones keep the architecture's recipe (`Recipe.defaults`)


class Parser(argparse.ArgumentParser):
    """argparse with one line per mistake (not the whole usage first): the problem, what a missing option is for,
    and where the rest is (`--help`)."""

    def error(self, message: str) -> NoReturn:
        missing = "the following arguments are required: "
        if message.startswith(missing):
            names = message[len(missing) :].split(", ")
            message = "missing " + "; ".join(f"{n}: {self._what(n)}" if self._what(n) else n for n in names)
        ending = self._suggestion(message) or "."
        self.exit(2, f"{self.prog}: error: {message.rstrip('.')}{ending} See `{self.prog} --help`.\n")

    def _suggestion(self, message: str) -> str:
        """'; did you mean ...?' for a mistyped verb, choice or flag (argparse on Python 3.11 has no suggestions)."""
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if choice:
            wanted, options = choice[1], [c.strip(" '") for c in choice[2].split(",")]
        elif message.startswith("unrecognized arguments: "):
            flags = [t.split("=")[0] for t in message.split(": ", 1)[1].split() if t.startswith("--")]
            wanted, options = (flags[0] if flags else ""), self._flags()
        else:
            return ""
        close = difflib.get_close_matches(wanted, options, n=2, cutoff=0.6) if wanted else []
        return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""

    def _flags(self) -> list[str]:
        """Every long flag of this parser and its verbs' (an unrecognized flag is reported by the top parser)."""
        flags = []
        for a in self._actions:
            flags += [o for o in a.option_strings if o.startswith("--")]
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    flags += [o for b in sub._actions for o in b.option_strings if o.startswith("--")]
        return list(dict.fromkeys(flags))

    def _what(self, name: str) -> str:
        """What the argument called `name` in an error is for: its help, or the verbs to choose from."""
        for a in self._actions:
            if name in (*a.option_strings, a.dest, a.metavar):
                if isinstance(a, argparse._SubParsersAction):
                    return "one of " + ", ".join(a.choices)
                return a.help or ""
        return ""


def device_choice(text: str) -> str:
    """--device: auto, cpu, cuda or cuda:N, checked when parsed (one line naming the choices, not free text)."""
    try:
        return check_device(text)
    except DeviceError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        type=device_choice,
        metavar="{" + ",".join(DEVICES) + "}",
        help="where the model runs: auto (a CUDA GPU when one is visible, else the CPU), cpu, cuda, or cuda:N "
        "(the GPU of index N)",
    )


def layer_arg(text: str) -> int | str:
    """--layer as a block / stage index (digits) or a module name."""
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else text  # -1: an index, refused as one


def _add_common(p: argparse.ArgumentParser, data_required: bool = True) -> None:
    p.add_argument(
        "--model",
        default=load().default_model,
        help="registry name (see `models`); the default is the shipped demo model (not SAM: works offline), "
        "e.g. sam_vit_b for SAM ViT-B (downloaded on first use); or any timm model as timm:NAME (timm:resnet18; "
        "timm:NAME(key=value,...) for architecture arguments) or transformers model as hf:OWNER/NAME or hf:FOLDER, "
        "scored by a head fitted on its features",
    )
    p.add_argument(
        "--checkpoint",
        help="weights instead of the official download: a local file (.pt/.pth/.safetensors; transformers SamModel "
        "files too), hf://OWNER/REPO[/FILE][@REVISION], or 'hub' for the registry's Hub copy (see `models`)",
    )
    p.add_argument(
        "--finetuned",
        help="your fine-tuned weights over the base: full, decoder-only or LoRA (peft adapters too), a file or hf://",
    )
    p.add_argument("--random-init", action="store_true", help="seeded random weights (pipeline tests only)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights and the search-set split")
    p.add_argument(
        "--data",
        required=data_required,
        help="dataset folder or .zip: images/+masks/ or PerSeg (segment), class folders or a CSV of image,label "
        "(classify), images/+depth/ (depth); bundled ones are in the repository's assets/ folder"
        + ("" if data_required else " (required without --run)"),
    )
    p.add_argument(
        "--task",
        choices=tuple(load().tasks),
        help="the task; default: the data's (masks: segment; class folders or a label CSV: classify; images/ + "
        "depth/: depth)",
    )
    p.add_argument(
        "--head",
        help="classify / depth: a head state dict (weight, bias) over the model's tokens; default: fit one on a "
        "head split of the data (images set aside only to fit the head: never searched, never held out)",
    )
    p.add_argument("--head-images", type=int, help="images in that head split (default: a third of the data)")
    p.add_argument(
        "--layer",
        type=layer_arg,
        help="replace channels at the output of this encoder block (0-based; SAM's ViT, DINOv2's ViT, SAM2's Hiera "
        "trunk; its width, e.g. 768 for SAM ViT-B) and re-run the blocks after it per candidate; for timm:/module "
        "models a stage index of timm's feature_info or a module name (layer3, stages.2), whose output the head "
        "then reads; default: the encoder output, as the paper",
    )
    p.add_argument(
        "--search-images", type=int, default=50, help="images the pairs are scored on (the search set; paper: 50)"
    )
    p.add_argument(
        "--heldout-images",
        type=int,
        help="cap on the held-out images (never searched; they check the found set) evaluated (default: all)",
    )
    p.add_argument(
        "--prompt",
        default="none",
        choices=load().prompt_modes,
        help="segmentation prompts, taken from the ground-truth (GT) masks: none, each mask's box, or a point in it",
    )
    p.add_argument(
        "--protocol",
        choices=load().protocols,
        help="mIoU: image (per-image mean), perseg (pooled per object) or persam (PerSAM's eval_miou.py: "
        "as perseg without each object's 00 reference image); default: the dataset's own",
    )
    p.add_argument(
        "--mask",
        dest="mask_choice",
        default="single",
        choices=load().mask_choices,
        help="single-mask output, or the multimask output with the best predicted IoU",
    )
    p.add_argument(
        "--metric",
        choices=load().metrics,
        help="what pair gains measure: "
        + "; ".join(f"{name}: {', '.join(metrics)}" for name, metrics in load().tasks.items())
        + " (default: the task's first)",
    )
    _add_device(p)
    p.add_argument(
        "--batch-rows",
        dest="rows",
        type=int,
        help="decoder rows per call, a row being one (channel edit, image) pass through the head (SAM's mask decoder, "
        "a linear head); more rows per call use more memory (default: per device)",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=load().precisions,
        help="how the decoder multiplies: fp32; tf32 (CUDA's TF32 tensor cores; the same as fp32 on a CPU); bf16 "
        "autocast (GPUs, and CPUs with bf16 units: ~2x for SAM ViT-B here, but the top 10 can change); metrics "
        "stay fp32 / fp64 (benchmarks/RESULTS.md: top-10 agreement with fp32)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the fixed-shape decoder call (CUDA graphs on a GPU); the first call compiles (tens of "
        "seconds), results agree with eager to float rounding",
    )
    p.add_argument("--cache", help="feature cache folder (default $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    p.add_argument("--json", action="store_true", help="print a machine-readable result on stdout")


def _add_scope(p: argparse.ArgumentParser) -> None:
    """Which pairs to score and the search modes' own options (search and compare)."""
    p.add_argument("--top-n", type=int, default=10, help="pairs kept for the 2^N - 1 combination stage")
    p.add_argument("--sources", default="auto", help="channels that may be replaced: auto|all|every:K|0-31,40")
    p.add_argument(
        "--targets",
        default="auto",
        help="channels that may be copied (same syntax); auto = all on GPU, every 8th on CPU",
    )
    for option in load().options:  # each mode's own parameters (screening/), as the mode declares them
        p.add_argument(
            "--" + option.name.replace("_", "-"), type=option.kind, help=f"{option.help} (default: {option.default})"
        )


class DEFAULTS(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows each option's default, where it has one worth showing (0 is one; unset, off or "" are not)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or action.default is False or action.default in ("", argparse.SUPPRESS):
            return action.help or ""
        if "(default" in (action.help or ""):  # the help says it in words
            return action.help or ""
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m redundancy", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB", help="one of:")

    def add(name: str, help: str) -> argparse.ArgumentParser:  # a verb's own --help opens with what it does
        verb = sub.add_parser(name, help=help, description=help, formatter_class=DEFAULTS)  # (not inherited)
        talk = verb.add_mutually_exclusive_group()
        talk.add_argument("-v", "--verbose", action="count", default=0, help="say more (-vv: debug); the full "
                          "log always goes to <cache>/logs/redundancy.log")  # fmt: skip
        talk.add_argument("-q", "--quiet", action="store_true", help="print errors only (no warnings)")
        return verb

    m = add("models", help="list the model registry")
    m.add_argument("--json", action="store_true", help="print the registry as JSON")

    s = add("search", help="score channel pairs, pick the top N, search their combinations")
    _add_common(s)
    _add_scope(s)
    s.add_argument(
        "--mode",
        default=load().default_mode,
        choices=tuple(load().modes),
        help="; ".join(f"{name}: {summary}" for name, summary in load().modes.items()),
    )
    s.add_argument(
        "--select",
        default="search",
        choices=load().select_modes,
        help="search: the best subset on the search set (the paper); cv: N and the subset chosen by k-fold "
        "cross-validation on the search set, with an estimate of the gain on unseen images; greedy: the set grown "
        "one pair at a time from a larger pool, its size chosen by cross-validation (cv, greedy: mode exact)",
    )
    s.add_argument("--folds", type=int, default=5, help="select cv / greedy: folds of the search set")
    s.add_argument(
        "--alphas",
        help="soft replacement: alphas in (0, 1) scored besides 1, e.g. 0.25,0.5,0.75; pair (i, j, a) makes "
        "channel i (1 - a) X_i + a X_j; each pair keeps its best alpha (select cv / greedy: chosen per fold)",
    )
    s.add_argument("--pool", type=int, help="select greedy: candidate pairs (default 4 x top N)")
    s.add_argument("--out", required=True, help="run directory to write (an interrupted run there resumes)")
    s.add_argument("--restart", action="store_true", help="discard the unfinished search saved in --out")
    s.add_argument(
        "--yes",
        action="store_true",
        help="start a search estimated at more than an hour without asking (without a terminal it warns and goes on)",
    )
    s.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a finished run of other settings in --out (everything it owns is removed first)",
    )

    c = add(
        "compare",
        help=f"{' vs '.join(load().modes)} on the same pairs: top-N overlap, rank correlation, best-set score, time",
    )
    _add_common(c)
    _add_scope(c)
    c.add_argument("--out", help="folder for modes.json and modes.csv")

    a = add(
        "ablate",
        help="baseline and single-channel edits (the paper's Table 1: a channel zeroed, swapped, replaced or scaled, "
        "one edit at a time): --zero 6,216 --swap 1:2 --replace 3:7; each zeroed channel is called useful, redundant "
        "or harmful",
    )
    _add_common(a, data_required=False)
    a.add_argument("--run", help="take model, data and split from a finished run")
    a.add_argument(
        "--zero",
        default="",
        help="channels to zero, one edit each: 6,216 (or 'all': every channel, sorted by the change); a zeroed "
        "channel is useful when the 95%% interval of the change is below 0 (zeroing makes the score worse), "
        "redundant when it holds 0 (no change beyond noise), harmful when above 0 (zeroing makes it better)",
    )
    a.add_argument("--swap", default="", help="pairs to swap, one edit each: 1:2,5:9")
    a.add_argument("--replace", default="", help="i:j makes channel i a copy of channel j: 3:7")
    a.add_argument("--scale", default="", help="i:s multiplies channel i by s (0 zeroes it): 6:0.5,216:2")
    a.add_argument("--plain", action="store_true", help="use the unbatched reference path (one call per image)")
    a.add_argument("--unverified", action="store_true", help="use a --run whose files do not match its manifest")

    f = add(
        "figures",
        help="publication figures (PNG 300 dpi, SVG, PDF) from one or more run dirs",
    )
    f.add_argument("runs", nargs="+", help="run directories (several: adds the cross-dataset consistency figure)")
    f.add_argument("--format", default="png,svg,pdf", help="comma list of png, svg, pdf")
    f.add_argument("--out", required=True, help="folder for the figures and their caption .txt files")
    f.add_argument("--unverified", action="store_true", help="draw runs whose files do not match their manifest")
    f.add_argument(
        "--consistency",
        action="store_true",
        help="require the cross-run consistency figure: refused unless the runs share model, channel count and block "
        "(without it, runs that differ get the per-run figures and a note)",
    )

    p = add("apply", help="apply a run's replacement set to images and write the patched predictions")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a finished run directory (its replacements.json and model)")
    src.add_argument(
        "--replacements", help="a shared set: a run folder, or hf://OWNER/REPO[@REVISION] as `push` uploads it"
    )
    p.add_argument("--checkpoint", help="the run's weights file where its recorded path is not on this machine")
    p.add_argument("--data", required=True, help="images to predict: a folder or .zip, with masks for mIoU or without")
    p.add_argument("--out", required=True, help="folder for masks/, baseline_masks/, overlays/ and predictions.zip")
    _add_device(p)
    p.add_argument("--cache", help="feature cache folder (default $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    p.add_argument("--unverified", action="store_true", help="use a run that is unfinished or whose files changed")
    p.add_argument("--protocol", choices=load().protocols, help="mIoU protocol for the report (default: the run's)")

    u = add("push", help="share a finished run on the Hugging Face Hub: run files, figures and a model card")
    u.add_argument("run", help="a finished run directory")
    u.add_argument("repo", help="OWNER/REPO on the Hub (created if needed; your token: HF_TOKEN or `hf auth login`)")
    u.add_argument("--private", action="store_true", help="create the repository as private")
    u.add_argument("--to", help="write the repository's content to this folder instead of uploading (to check it)")

    t = add(
        "train-demo",
        help="train a demo model on synthetic data (sam_tiny / sam2_tiny / dinov2_tiny_wide classes): not SAM, not "
        "DINOv2",
    )
    t.add_argument("--model", default="sam_tiny", choices=list(load().recipes), help="architecture to train")
    for flag, kind, what in TRAIN_FLAGS:
        shipped = ", ".join(f"{b} {defaults[flag]}" for b, defaults in load().recipes.items())
        t.add_argument(f"--{flag.replace('_', '-')}", type=kind, help=f"{what} (default: as shipped, {shipped})")
    t.add_argument(
        "--out",
        help=f"folder for <model>_demo.pt and models.json (default: {TRAIN_OUT}; with --replace-shipped: assets/demo)",
    )
    t.add_argument(
        "--replace-shipped",
        action="store_true",
        help="write into the repository's assets/demo (the default --out then), replacing the shipped demo model "
        "every command uses; without it, that folder is refused. The old model is scored first and kept beside as "
        ".bak; a new one that scores worse is refused",
    )
    t.add_argument(
        "--force", action="store_true", help="with --replace-shipped: replace it even when the new one scores worse"
    )

    r = add(
        "paper",
        help="regenerate the paper's tables on the demo models: report.md, a CSV per table and the figures",
    )
    r.add_argument("--out", required=True, help="folder for the report (new, empty, or an earlier report it rewrites)")
    r.add_argument(
        "--tiny",
        action="store_true",
        help="every table on a handful of images, in seconds: a check that it all runs, not numbers to read",
    )
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--cache", help="feature cache folder (default $REDUNDANCY_CACHE or ~/.cache/redundancy)")
    return parser


def parse_edit_flags(zero: str, swap: str, replace: str, scale: str = "") -> list[Edit]:
    """Edits from the ablate flags, in flag order (range checks happen against the model)."""
    from ..replace import parse_edits

    flags = (("zero", zero), ("swap", swap), ("replace", replace), ("scale", scale))
    return [e for kind, text in flags for e in parse_edits(kind, text)]


def _fields(cls: type, args: argparse.Namespace, **override) -> dict:
    """The dataclass `cls`'s fields among the parsed flags (unset flags keep the class defaults)."""
    given = {k: v for k, v in vars(args).items() if k in cls.__dataclass_fields__ and v is not None}
    return {**given, **override}


def session_config(args: argparse.Namespace, **override) -> SessionConfig:
    """The session config the flags describe."""
    from ..engine import SessionConfig

    return SessionConfig(**_fields(SessionConfig, args, **override))


def search_settings(args: argparse.Namespace) -> SearchSettings:
    """The search settings the flags describe; a mode option is set only where its flag is given."""
    from ..engine import SearchSettings

    options = {o.name: getattr(args, o.name) for o in load().options if getattr(args, o.name, None) is not None}
    return SearchSettings(**_fields(SearchSettings, args), options=options)
