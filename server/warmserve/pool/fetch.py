"""A hub model's download, once per model, before its workers start.

The pool runs it while the model is `loading` and starts the workers once the files are in the
cache, where each worker finds them (`ModelSpec.model_file`). The transfer runs on a daemon thread
of its own, not the event loop's executor: a server told to stop while a large file is on its way
exits without waiting for it, and an unload cancels it at the next chunk. `status` is what
/admin/models shows meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from warmserve import hub
from warmserve.hub import DownloadStatus, HubReference, Progress

T = TypeVar("T")


class ModelFetch:
    def __init__(self, reference: HubReference, revision: str | None) -> None:
        self.reference = reference
        self._revision = revision
        self._progress = Progress()

    @property
    def status(self) -> DownloadStatus:
        return self._progress.status()

    async def run(self) -> Path:
        """The model's first file, in the cache (downloaded, or found there when the hub is out of reach)."""
        return await _on_daemon_thread(
            lambda: hub.fetch(self.reference, self._revision, self._progress), f"fetch {self.reference}"
        )

    def cancel(self) -> None:
        """Stop the transfer at its next chunk (huggingface_hub then deletes its partial file)."""
        self._progress.cancelled.set()


async def _on_daemon_thread(work: Callable[[], T], name: str) -> T:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.done():
            return  # the awaiting task was cancelled
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(), None
        except BaseException as exc:  # handed to the awaiting task
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the event loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done
