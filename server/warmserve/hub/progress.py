"""How far a model's download has come, counted by the progress bar huggingface_hub draws.

huggingface_hub reports every chunk it writes to the bar class it is handed (`tqdm_class`), for plain
HTTP and Xet downloads alike, retries and resumed ranges included. Our subclass keeps drawing its bar
on a terminal (and stays quiet where huggingface_hub's own would), adds each chunk to a `Progress`
that the API shows, and is where a cancelled download stops: the next chunk raises.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


class DownloadCancelled(Exception):
    """The download was stopped on purpose (the model was unloaded, or the server stops)."""


@dataclass(frozen=True)
class DownloadStatus:
    done_bytes: int
    total_bytes: int | None  # None while the sizes are not known yet


class Progress:
    """Bytes of a model's files downloaded so far; written by the download's thread, read by anyone."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = 0
        self._total: int | None = None
        self.cancelled = threading.Event()

    def expect(self, total_bytes: int | None, done_bytes: int = 0) -> None:
        with self._lock:
            self._total, self._done = total_bytes, done_bytes

    def add(self, n: int) -> None:
        with self._lock:
            self._done += n

    def status(self) -> DownloadStatus:
        with self._lock:
            return DownloadStatus(self._done, self._total)

    def bar_class(self) -> type[Any]:
        """A huggingface_hub progress bar that also counts into this `Progress` (and stops when cancelled)."""
        from huggingface_hub.utils.tqdm import tqdm

        progress = self

        class CountingBar(tqdm):
            def update(self, n: float | None = 1) -> bool | None:
                if progress.cancelled.is_set():
                    raise DownloadCancelled("the download was cancelled")
                progress.add(int(n or 0))
                result: bool | None = super().update(n)
                return result

        return CountingBar
