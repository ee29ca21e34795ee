"""The web page's files (static/), shipped in the wheel and read once when the app is built.

Each file is kept in memory as it is and gzipped, with an ETag, so a page load costs the server
a dictionary lookup and the transfer is the compressed size. The page is plain ES modules and CSS,
written by hand: nothing to build, no Node toolchain, no CDN, and no network at run time.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file under static/ by its name there (subfolders as `a/b.js`); unknown kinds are left out."""
    assets: dict[str, Asset] = {}
    root = resources.files(__name__).joinpath("static")
    pending = [("", root)]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry))
                continue
            suffix = "." + entry.name.rpartition(".")[2]
            media_type = _MEDIA_TYPES.get(suffix)
            if media_type is None:
                continue
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
            assets[prefix + entry.name] = Asset(body, gzip.compress(body, 9, mtime=0), media_type, etag)
    return assets
