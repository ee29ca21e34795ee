"""Models from the Hugging Face hub by name: `owner/repo:QUANT` for GGUF files, `owner/repo` for folders.

The one place warmserve talks to the hub: `reference` says which files a name means, `download` lists,
downloads, verifies and finds them in huggingface_hub's cache, `progress` counts the bytes. The pool
downloads a model once before its workers start (pool/fetch.py), `warmserve pull` without serving, and
worker processes only read the cache (`ModelSpec.model_file`) or, for transformers, fetch a folder.
huggingface_hub is imported inside the functions that call it, so importing this package stays cheap.
"""

from warmserve.hub.download import (
    DEFAULT_REVISION,
    HubUnreachable,
    Resolved,
    cached_file,
    check,
    download,
    fetch,
    pull_command,
    resolve,
    snapshot,
)
from warmserve.hub.progress import DownloadCancelled, DownloadStatus, Progress
from warmserve.hub.reference import HubReference, available_quants, looks_like_repo_id, parse_reference, pick_files

__all__ = [
    "DEFAULT_REVISION",
    "DownloadCancelled",
    "DownloadStatus",
    "HubReference",
    "HubUnreachable",
    "Progress",
    "Resolved",
    "available_quants",
    "cached_file",
    "check",
    "download",
    "fetch",
    "looks_like_repo_id",
    "parse_reference",
    "pick_files",
    "pull_command",
    "resolve",
    "snapshot",
]
