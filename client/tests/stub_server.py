"""A tiny HTTP server on 127.0.0.1 with canned answers, and a record of every request it gets.

The real server does all of this (API keys, 429 at capacity, /v1/tokenize, an error event when
a worker dies mid-stream); the stub stands in where the shared session server should not be
put in that state, where a test must see exactly what the client sent, or where it plays an
older server (no /v1/tokenize, no capabilities). Unknown paths get warmserve's 404 body.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOT_FOUND = {
    "error": {"message": "Not Found", "type": "invalid_request_error", "param": None, "code": "not_found"}
}


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    sse: tuple[Any, ...] | None = None  # events sent as `data: ...` lines, after a 200


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


class StubServer:
    def __init__(self) -> None:
        self._replies: dict[tuple[str, str], deque[Reply]] = defaultdict(deque)
        self.requests: list[Recorded] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self, "GET")

            def do_POST(self) -> None:
                stub._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def reply(self, method: str, path: str, reply: Reply) -> None:
        """Queue an answer for `path`; the last one queued keeps answering."""
        self._replies[(method, path)].append(reply)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next(self, method: str, path: str) -> Reply:
        queue = self._replies.get((method, path))
        if not queue:
            return Reply(404, NOT_FOUND)
        return queue.popleft() if len(queue) > 1 else queue[0]

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {name.lower(): value for name, value in handler.headers.items()}
        self.requests.append(Recorded(method, handler.path, headers, body))
        reply = self._next(method, handler.path)
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.sse is not None:
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            for event in reply.sse:
                data = event if isinstance(event, str) else json.dumps(event)
                handler.wfile.write(f"data: {data}\n\n".encode())
            return
        payload = json.dumps(reply.body).encode()
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
