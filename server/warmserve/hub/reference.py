"""What a hub reference names, and which of a repo's files it means.

    owner/repo:Q4_K_M           the repo's GGUF model of that quant (one file, or every part of a split)
    owner/repo/dir/file.gguf    that file (for a part of a split model, all of its parts)
    owner/repo                  its only GGUF model, or its Q4_K_M (llama.cpp's default) when it has several
    hf.co/owner/repo:Q4_K_M     the same, written as Ollama does (huggingface.co/ too)

Only string work on file names: the names come from the hub's listing of the repo or, offline,
from the local cache, and both go through `pick_files`, so a reference means the same files either way.
A local path never parses as a reference: it starts with /, ., or ~, or is a two-part name ending in .gguf.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from warmserve.errors import ModelReferenceError

DEFAULT_QUANT = "Q4_K_M"  # what llama-server's -hf picks when the reference names none
_PREFIXES = ("https://huggingface.co/", "huggingface.co/", "hf.co/")
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?")
_QUANT_TEXT = re.compile(r"[A-Za-z0-9_]+")
# llama.cpp's quantization names as files carry them: Q4_K_M, IQ3_XXS, TQ1_0, F16, BF16, MXFP4 ...
_QUANT_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])((?:I|T)?Q\d(?:_[A-Z0-9]+)*|B?F16|F32|MXFP4)(?![A-Za-z0-9])", re.IGNORECASE
)
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


@dataclass(frozen=True)
class HubReference:
    repo_id: str
    quant: str | None = None
    filename: str | None = None  # a path inside the repo

    def __str__(self) -> str:
        if self.filename is not None:
            return f"{self.repo_id}/{self.filename}"
        return f"{self.repo_id}:{self.quant}" if self.quant else self.repo_id

    @property
    def served_name(self) -> str:
        """The model's default name: the file's stem (without a split's part number), or repo:QUANT."""
        if self.filename is not None:
            return model_stem(PurePosixPath(self.filename).name)
        repo = self.repo_id.split("/")[1]
        return f"{repo}:{self.quant}" if self.quant else repo


def parse_reference(text: str, gguf_only: bool = False) -> HubReference | None:
    """The reference `text` writes, or None when it reads as a local path (or is no reference at all).
    With `gguf_only`, a bare `owner/repo` is None too: it names a whole (transformers) repo, not a GGUF."""
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if text.startswith(("/", ".", "~")) or "\\" in text:
            return None
    base, colon, quant = text.partition(":")
    parts = base.split("/")
    if len(parts) < 2 or not all(_NAME.fullmatch(p) for p in parts[:2]):
        return None
    repo_id = "/".join(parts[:2])
    if colon:
        if len(parts) != 2 or not _QUANT_TEXT.fullmatch(quant):
            return None
        return HubReference(repo_id, quant=quant.upper())
    if len(parts) == 2:
        if parts[1].lower().endswith(".gguf") or gguf_only:
            return None  # a missing local file, not a repo
        return HubReference(repo_id)
    filename = "/".join(parts[2:])
    if not filename.lower().endswith(".gguf") or any(p in ("", ".", "..") for p in parts[2:]):
        return None
    return HubReference(repo_id, filename=filename)


def looks_like_repo_id(text: str) -> bool:
    """`owner/repo` (or a bare name, for the hub's old un-namespaced models), not a local path."""
    parts = text.split("/")
    return len(parts) <= 2 and all(p and not p.startswith(".") for p in parts) and "\\" not in text


def split_part(filename: str) -> tuple[str, int, int] | None:
    """(stem, part, count) of a split model's part `stem-0000k-of-0000n.gguf`, else None."""
    match = _SPLIT.match(filename)
    if match is None:
        return None
    return match["stem"], int(match["part"]), int(match["count"])


def model_stem(filename: str) -> str:
    """A GGUF file's name without `.gguf` and without a split part's `-0000k-of-0000n`."""
    split = split_part(filename)
    return split[0] if split is not None else filename.removesuffix(".gguf").removesuffix(".GGUF")


def quant_of(filename: str) -> str | None:
    """The last quantization name in a file name (`Model-7B-Q4_K_M.gguf` -> Q4_K_M), upper-cased."""
    found = _QUANT_IN_NAME.findall(model_stem(PurePosixPath(filename).name))
    return found[-1].upper() if found else None


@dataclass(frozen=True)
class _Model:
    """One GGUF model of a repo: a single file, or the parts of a split model in order."""

    files: tuple[str, ...]

    @property
    def label(self) -> str:
        return quant_of(self.files[0]) or PurePosixPath(self.files[0]).name


def _models(filenames: Iterable[str]) -> list[_Model]:
    """The repo's GGUF models, multimodal projectors (mmproj) left out; a split model needs all its parts."""
    singles: list[_Model] = []
    splits: dict[tuple[str, int], dict[int, str]] = {}
    for name in sorted(filenames):
        if not name.lower().endswith(".gguf") or "mmproj" in PurePosixPath(name).name.lower():
            continue
        split = split_part(name)
        if split is None:
            singles.append(_Model((name,)))
        else:
            stem, part, count = split
            splits.setdefault((stem, count), {})[part] = name
    for (_, count), parts in sorted(splits.items()):
        if sorted(parts) == list(range(1, count + 1)):
            singles.append(_Model(tuple(parts[i] for i in range(1, count + 1))))
    return singles


def _has_quant(filename: str, quant: str) -> bool:
    stem = model_stem(PurePosixPath(filename).name)
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(quant)}(?![A-Za-z0-9_])", stem, re.IGNORECASE) is not None


def available_quants(filenames: Iterable[str]) -> list[str]:
    """The quants a repo offers (a file's name where it has no quant in it), for error messages."""
    return sorted({model.label for model in _models(filenames)})


def pick_files(reference: HubReference, filenames: Iterable[str], where: str = "") -> list[str]:
    """The files `reference` means among `filenames` (a split model's parts in order: llama.cpp opens the
    first and finds the rest beside it). A reference that means none, or several, is a `ModelReferenceError`
    that lists what there is; `where` says where the names came from ("in the local cache")."""
    names = list(filenames)
    models = _models(names)
    repo = f"{reference.repo_id}{' ' + where if where else ''}"
    if reference.filename is not None:
        for model in models:
            if reference.filename in model.files:
                return list(model.files)
        if reference.filename in names:  # a GGUF _models leaves out (an mmproj file): named, so wanted
            return [reference.filename]
        raise ModelReferenceError(
            f"{repo} has no file {reference.filename}; its GGUF models: {_listing(models)}.", param="path"
        )
    if not models:
        raise ModelReferenceError(
            f"{repo} has no GGUF model file (for a transformers model use --backend transformers).", param="path"
        )
    quant = reference.quant
    if quant is None:
        if len(models) == 1:
            return list(models[0].files)
        quant = DEFAULT_QUANT
    matching = [model for model in models if _has_quant(model.files[0], quant)]
    if not matching:
        asked = f"quant {quant}" if reference.quant else f"the default quant ({DEFAULT_QUANT})"
        raise ModelReferenceError(
            f"{repo} has no GGUF model of {asked}; its quants: {_listing(models)}. "
            f"Name one, e.g. {_example(reference.repo_id, models[0])}.",
            param="path",
        )
    if len(matching) > 1:
        files = ", ".join(f"{reference.repo_id}/{model.files[0]}" for model in matching)
        raise ModelReferenceError(
            f"{repo} has {len(matching)} GGUF models of quant {quant}; name the file: {files}.", param="path"
        )
    return list(matching[0].files)


def _listing(models: list[_Model]) -> str:
    return ", ".join(sorted({model.label for model in models})) or "none"


def _example(repo_id: str, model: _Model) -> str:
    quant = quant_of(model.files[0])
    return f"{repo_id}:{quant}" if quant else f"{repo_id}/{model.files[0]}"
