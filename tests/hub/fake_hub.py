"""A stand-in for the Hugging Face hub on 127.0.0.1: what huggingface_hub asks of it to list and download.

    GET  /api/models/{owner}/{repo}[/revision/{rev}]    model info with `siblings` (size, lfs.sha256)
    HEAD /{owner}/{repo}/resolve/{rev}/{path}            X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size
    GET  /{owner}/{repo}/resolve/{rev}/{path}            the bytes; a Range request gets a 206 from that byte

Errors carry the hub's `X-Error-Code` (RepoNotFound, RevisionNotFound, EntryNotFound), which
huggingface_hub turns into its typed errors. Every request is recorded with its headers. A file can
be served slowly (`throttle_bytes_per_s`), cut off once halfway through its body (`cut_once`), or
listed with a wrong sha256 (`wrong_sha256`). Point huggingface_hub at it with HF_ENDPOINT=hub.url.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

CHUNK = 64 * 1024


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class HubFile:
    data: Path | bytes
    lfs: bool = True
    sha256: str = ""
    size: int = 0

    def __post_init__(self) -> None:
        content = self.data.read_bytes() if isinstance(self.data, Path) else self.data
        self.size = len(content)
        self.sha256 = hashlib.sha256(content).hexdigest()

    def read(self, start: int) -> bytes:
        if isinstance(self.data, bytes):
            return self.data[start:]
        with self.data.open("rb") as file:
            file.seek(start)
            return file.read()


@dataclass
class Repo:
    files: dict[str, HubFile]
    commit: str


@dataclass
class FakeHub:
    repos: dict[str, Repo] = field(default_factory=dict)
    throttle_bytes_per_s: float | None = None
    cut_once: set[str] = field(default_factory=set)  # file paths whose next GET stops halfway
    wrong_sha256: set[str] = field(default_factory=set)  # file paths listed with another sha256
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def add_repo(self, repo_id: str, files: dict[str, Path | bytes]) -> None:
        """A repo whose .gguf files are LFS files, as on the hub, and the rest plain git files."""
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        self.repos[repo_id] = Repo(
            {name: HubFile(data, lfs=name.endswith(".gguf")) for name, data in files.items()}, commit
        )

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            fake = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, request: Recorded) -> None:
        with self._lock:
            self.requests.append(request)

    def seen(self, method: str, path_part: str = "") -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and path_part in r.path]

    def take_cut(self, path: str) -> bool:
        with self._lock:
            if path in self.cut_once:
                self.cut_once.discard(path)
                return True
            return False

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")


class _Handler(BaseHTTPRequestHandler):
    fake: FakeHub

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.fake.record(Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}))
        if (match := _INFO.match(path)) and body:
            self._info(match["repo"], match["rev"] or "main")
        elif match := _RESOLVE.match(path):
            self._resolve(match["repo"], match["rev"], match["path"], body)
        else:
            self._error(404, "EntryNotFound", body)

    def _repo(self, repo_id: str, revision: str, body: bool) -> Repo | None:
        repo = self.fake.repos.get(repo_id)
        if repo is None:
            self._error(401, "RepoNotFound", body)
        elif revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", body)
        else:
            return repo
        return None

    def _info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, revision, body=True)
        if repo is None:
            return
        siblings = []
        for name, file in repo.files.items():
            sibling: dict[str, object] = {"rfilename": name, "size": file.size, "blobId": file.sha256[:40]}
            if file.lfs:
                sha = "0" * 64 if name in self.fake.wrong_sha256 else file.sha256
                sibling["lfs"] = {"size": file.size, "sha256": sha, "pointerSize": 134}
            siblings.append(sibling)
        data = json.dumps({"id": repo_id, "sha": repo.commit, "private": False, "siblings": siblings}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _resolve(self, repo_id: str, revision: str, name: str, body: bool) -> None:
        repo = self._repo(repo_id, revision, body)
        if repo is None:
            return
        file = repo.files.get(name)
        if file is None:
            self._error(404, "EntryNotFound", body, commit=repo.commit)
            return
        start = 0
        if body and (match := _RANGE.match(self.headers.get("Range", ""))):
            start = int(match[1])
        self.send_response(206 if start else 200)
        etag = f'"{file.sha256}"' if file.lfs else f'"{file.sha256[:40]}"'
        self.send_header("X-Repo-Commit", repo.commit)
        self.send_header("ETag", etag)
        if file.lfs:
            self.send_header("X-Linked-Etag", etag)
            self.send_header("X-Linked-Size", str(file.size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(file.size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{file.size - 1}/{file.size}")
        self.end_headers()
        if body:
            self._send(file.read(start), cut=self.fake.take_cut(name))

    def _send(self, data: bytes, cut: bool) -> None:
        limit = len(data) // 2 if cut else len(data)
        rate = self.fake.throttle_bytes_per_s
        started = time.monotonic()
        sent = 0
        try:
            while sent < limit:
                chunk = data[sent : min(sent + CHUNK, limit)]
                self.wfile.write(chunk)
                sent += len(chunk)
                if rate:
                    time.sleep(max(0.0, started + sent / rate - time.monotonic()))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return
        if cut:
            self.close_connection = True

    def _error(self, status: int, code: str, body: bool, commit: str | None = None) -> None:
        data = json.dumps({"error": code}).encode() if body else b""
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit is not None:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
