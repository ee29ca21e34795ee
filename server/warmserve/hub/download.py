"""The hub's side of a model: list a repo, download its files into huggingface_hub's cache, find them offline.

huggingface_hub does the transfer, in its own cache (HF_HUB_CACHE, else HF_HOME/hub, else
~/.cache/huggingface/hub), with its progress bar, its authentication (HF_TOKEN, or a token saved by
`hf auth login`), its endpoint (HF_ENDPOINT) and offline switch (HF_HUB_OFFLINE). A transfer that
breaks off is resumed where it stopped (a Range request, up to five times in a row without progress);
one cut short with the process starts again, as huggingface_hub keeps no partial file between runs.

What it leaves to us: which files a reference means (reference.py), checking each new file against
the hub's listing (huggingface_hub compares the size with its HEAD answer only; we compare the size and
the sha256 the listing gives for LFS files), and using the cache when the hub cannot be reached, with
an error saying what to run when the cache lacks the model too.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from warmserve.errors import ModelNotCached, ModelReferenceError, ModelSourceError
from warmserve.hub.progress import DownloadCancelled, Progress
from warmserve.hub.reference import HubReference, pick_files

log = logging.getLogger(__name__)

DEFAULT_REVISION = "main"
_LIST_TIMEOUT_S = 30.0
_COMMIT = re.compile(r"[0-9a-f]{40}")
_HASH_CHUNK = 1 << 20


class HubUnreachable(Exception):
    """The hub did not answer (offline mode, no connection, a timeout, a server error): use the cache."""


@dataclass(frozen=True)
class RepoFile:
    name: str
    size: int | None
    sha256: str | None  # LFS files only


@dataclass(frozen=True)
class Resolved:
    """A reference's files at one revision, as the hub lists them."""

    reference: HubReference
    revision: str
    commit: str | None
    files: tuple[RepoFile, ...]


def pull_command(reference: HubReference | str, revision: str | None = None) -> str:
    """The command that fetches the model while online (what an offline error tells the user to run)."""
    flag = f" --revision {revision}" if revision and revision != DEFAULT_REVISION else ""
    return f"warmserve pull {reference}{flag}"


def resolve(reference: HubReference, revision: str | None) -> Resolved:
    """The files `reference` means, listed by the hub: a `ModelReferenceError` when the hub says there is no
    such repo, revision, file or quant; `HubUnreachable` when it does not answer."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    revision = revision or DEFAULT_REVISION
    repo = reference.repo_id
    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=True, timeout=_LIST_TIMEOUT_S)
    except GatedRepoError:
        raise ModelReferenceError(
            f"{repo} is gated: accept its terms on the hub, then set HF_TOKEN to a token of that account.",
            param="path",
        ) from None
    except RepositoryNotFoundError:
        raise ModelReferenceError(
            f"The Hugging Face hub has no repo {repo} (or it is private: set HF_TOKEN to a token that may read it).",
            param="path",
        ) from None
    except RevisionNotFoundError:
        raise ModelReferenceError(f"{repo} has no revision {revision}.", param="revision") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise ModelReferenceError(
                f"The hub refused to list {repo} ({status}): check HF_TOKEN.", param="path"
            ) from None
        raise HubUnreachable(f"the hub answered {status}") from exc
    except Exception as exc:  # offline mode, no connection, a timeout, a proxy: the hub cannot answer now
        raise HubUnreachable(f"{type(exc).__name__}: {exc}") from exc
    siblings = {sibling.rfilename: sibling for sibling in info.siblings or []}
    files = []
    for name in pick_files(reference, siblings):
        sibling = siblings[name]
        lfs = sibling.lfs
        files.append(RepoFile(name, lfs.size if lfs else sibling.size, lfs.sha256 if lfs else None))
    return Resolved(reference, revision, info.sha, tuple(files))


def download(resolved: Resolved, progress: Progress | None = None) -> Path:
    """Each file of `resolved` into the cache (those there already are kept); the local path of the first,
    which is the one llama.cpp opens."""
    from huggingface_hub import hf_hub_download

    progress = progress or Progress()
    repo = resolved.reference.repo_id
    missing = [f for f in resolved.files if _cached(repo, f.name, resolved.commit or resolved.revision) is None]
    sizes = [f.size for f in missing]
    progress.expect(None if None in sizes else sum(s or 0 for s in sizes))
    if missing:
        total = progress.status().total_bytes
        log.info("downloading %s (%s) from the Hugging Face hub", resolved.reference, _size(total))
    started = time.monotonic()
    paths = []
    for file in resolved.files:
        try:
            path = Path(hf_hub_download(repo, file.name, revision=resolved.revision, tqdm_class=progress.bar_class()))
        except DownloadCancelled:
            raise
        except Exception as exc:
            raise ModelSourceError(
                f"Downloading {file.name} from {repo} failed ({type(exc).__name__}: {exc}). Files downloaded "
                f"completely stay in the cache; run `{pull_command(resolved.reference, resolved.revision)}` to retry."
            ) from exc
        if file in missing:
            _verify(path, file, resolved)
        paths.append(path)
    if missing:
        log.info("downloaded %s in %.1f s: %s", resolved.reference, time.monotonic() - started, paths[0])
    return paths[0]


def cached_file(reference: HubReference, revision: str | None, why: str | None = None) -> Path:
    """The reference's first file in the local cache, without asking the hub; `ModelNotCached` names what to
    run when it is not there (`why`: why the hub was not asked, e.g. "the hub cannot be reached (...)")."""
    revision = revision or DEFAULT_REVISION
    folder = _snapshot_folder(reference.repo_id, revision)
    advice = f"While online, run `{pull_command(reference, revision)}` (or serve it once) to put it in the cache."
    because = f"; {why}" if why else ""
    if folder is None:
        message = f"{reference} is not in the local Hugging Face cache{because}. {advice}"
        raise ModelNotCached(message, param="path")
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    try:
        files = pick_files(reference, names, where="in the local cache")
    except ModelReferenceError as exc:
        raise ModelNotCached(f"{exc.message.rstrip('.')}{because}. {advice}", param="path") from None
    return folder / files[0]


def fetch(reference: HubReference, revision: str | None, progress: Progress | None = None) -> Path:
    """The model's first file, downloaded if need be; from the cache alone when the hub cannot be reached."""
    try:
        resolved = resolve(reference, revision)
    except HubUnreachable as exc:
        path = cached_file(reference, revision, why=f"the hub cannot be reached ({exc})")
        log.warning("the Hugging Face hub cannot be reached (%s); using %s from the local cache", exc, path)
        return path
    return download(resolved, progress)


def check(reference: HubReference, revision: str | None) -> None:
    """Fail now, without downloading, if the reference names nothing on the hub (or, offline, in the cache)."""
    try:
        resolve(reference, revision)
    except HubUnreachable as exc:
        cached_file(reference, revision, why=f"the hub cannot be reached ({exc})")


def snapshot(repo_id: str, revision: str | None) -> Path:
    """A whole repo's folder (a transformers model), downloaded or found in the cache; offline, say what to do."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    log.info("fetching %s from the Hugging Face hub (or its local cache)", repo_id)
    try:
        path: str = snapshot_download(repo_id, revision=revision)
    except (LocalEntryNotFoundError, OSError) as exc:
        command = f"warmserve pull --backend transformers {repo_id}{f' --revision {revision}' if revision else ''}"
        raise ModelSourceError(
            f"Could not get '{repo_id}' from the Hugging Face hub and it is not in the local cache "
            f"({type(exc).__name__}: {exc}). On a machine that is online run `{command}` "
            "and copy the cache here, or pass a local directory."
        ) from exc
    return Path(path)


def _snapshot_folder(repo_id: str, revision: str) -> Path | None:
    """The cached snapshot of `revision` (a branch, tag or commit), by huggingface_hub's cache layout."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    storage = Path(constants.HF_HUB_CACHE) / repo_folder_name(repo_id=repo_id, repo_type="model")
    commit = revision
    if not _COMMIT.fullmatch(revision):
        try:
            commit = (storage / "refs" / revision).read_text().strip()
        except OSError:
            return None
    folder = storage / "snapshots" / commit
    return folder if folder.is_dir() else None


def _cached(repo_id: str, filename: str, revision: str) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    return Path(found) if isinstance(found, str) else None


def _verify(path: Path, file: RepoFile, resolved: Resolved) -> None:
    """A new file must have the size and sha256 the listing gives; one that does not leaves the cache."""
    size = path.stat().st_size
    wrong = None
    if file.size is not None and size != file.size:
        wrong = f"{size} bytes where the hub lists {file.size}"
    elif file.sha256 is not None:
        digest = _sha256(path)
        if digest != file.sha256:
            wrong = f"sha256 {digest} where the hub lists {file.sha256}"
    if wrong is None:
        return
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)
    raise ModelSourceError(
        f"{file.name} from {resolved.reference.repo_id} did not verify ({wrong}) and was removed from the cache. "
        f"Run `{pull_command(resolved.reference, resolved.revision)}` to download it again."
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _size(total: int | None) -> str:
    return "size unknown" if total is None else f"{total / 1e6:.1f} MB"
