"""One worker process as the API process sees it: spawn, pipe, in-flight requests.

A reader thread blocks on the pipe and hands each message to the event loop; a
writer thread does the sends, so a worker busy in a long step never blocks the
loop. The pipe reaching EOF is how we learn the process died (the parent closes
its copy of the child's end right after spawning, as concurrent.futures does with
its sentinels).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Literal

from warmserve.config import ModelSpec
from warmserve.embedding import Embedded
from warmserve.errors import ErrorInfo, is_permanent
from warmserve.generation import (
    Detokenized,
    Failed,
    Finished,
    GenerationEvent,
    ModelFacts,
    PromptCacheStats,
    Tokenized,
)
from warmserve.pool.events import WorkerEventKind, WorkerStatus
from warmserve.pool.messages import (
    AdapterChanged,
    Cancel,
    Detokenize,
    Embed,
    FromWorker,
    LoadAdapter,
    PromptCacheReport,
    RequestEvents,
    SetThreads,
    Shutdown,
    Submit,
    Tokenize,
    ToWorker,
    UnloadAdapter,
    WorkerLoadFailed,
    WorkerReady,
)
from warmserve.pool.stream import RequestStream

KILL_WAIT_S = 5.0  # after SIGKILL, how long stop() waits for the process to be gone

log = logging.getLogger(__name__)

WorkerState = Literal["loading", "ready", "failed", "exited"]
_SPAWN = multiprocessing.get_context("spawn")

Work = Submit | Tokenize | Detokenize | Embed


@dataclass
class Held:
    """A request a worker holds: its stream, and the message that sent it (to send it again elsewhere)."""

    stream: RequestStream
    message: Work


class WorkerHandle:
    def __init__(
        self,
        spec: ModelSpec,
        index: int,
        log_level: str,
        on_change: Callable[[WorkerHandle, WorkerEventKind, str | None], None],
        on_done: Callable[[WorkerHandle, str, GenerationEvent | None], None],
        on_lost: Callable[[WorkerHandle, list[Held], int | None], None],
        on_cache: Callable[[WorkerHandle, PromptCacheStats | None, PromptCacheStats], None] | None = None,
    ) -> None:
        """`on_lost(worker, held, exitcode)`: the worker died holding these requests (before `died` is told);
        `on_cache(worker, before, now)`: its prompt cache changed."""
        self.spec = spec
        self.index = index
        self.state: WorkerState = "loading"
        self.load_error: ErrorInfo | None = None
        self.capacity = 0  # requests the engine runs at once; known when ready
        self.threads: int | None = None  # last thread count sent; None: the spec's
        self.facts: ModelFacts | None = None  # what the engine reports about its model; known when ready
        self.prompt_cache: PromptCacheStats | None = None  # its engine's prompt cache, as last reported
        self.inflight: dict[str, Held] = {}
        self._adapter_answers: deque[asyncio.Future[AdapterChanged | None]] = deque()  # in the order asked
        self._on_change = on_change
        self._on_done = on_done
        self._on_lost = on_lost
        self._on_cache = on_cache
        self._log_level = log_level
        self._outbox: queue.SimpleQueue[ToWorker | None] = queue.SimpleQueue()
        self._loop = asyncio.get_running_loop()
        self._conn: Connection | None = None
        self.exited = asyncio.Event()  # set once the process's end has been handled (and announced)
        self._process: multiprocessing.process.BaseProcess | None = None

    @property
    def busy(self) -> bool:
        return bool(self.inflight)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def status(self) -> WorkerStatus:
        error = self.load_error.message if self.load_error is not None else None
        return WorkerStatus(self.index, self.pid, self.state, len(self.inflight), error, slots=self.capacity)

    async def start(self) -> None:
        """Spawn the process; a spawn that fails counts as a worker that died while loading."""
        try:
            await asyncio.to_thread(self._spawn)
        except Exception as exc:
            log.exception("%s: could not start worker %d", self.spec.name, self.index)
            self.load_error = ErrorInfo(code="model_unavailable", message=f"The worker could not start: {exc}")
            self.state = "failed"
            self.exited.set()
            self._on_change(self, "died", f"could not start: {exc}")
            return
        self._on_change(self, "started", None)
        threading.Thread(target=self._read, name=f"{self._name}-reader", daemon=True).start()
        threading.Thread(target=self._write, name=f"{self._name}-writer", daemon=True).start()

    @property
    def _name(self) -> str:
        return f"warmserve-{self.spec.name}-{self.index}"

    def _spawn(self) -> None:
        parent_conn, child_conn = _SPAWN.Pipe(duplex=True)
        process = _SPAWN.Process(
            target=_worker_main,
            args=(self.spec, child_conn, self.index, self._log_level),
            name=self._name,
            daemon=True,
        )
        process.start()
        child_conn.close()
        self._conn, self._process = parent_conn, process
        log.info("%s: started worker %d (pid %s)", self.spec.name, self.index, process.pid)

    def submit(self, stream: RequestStream, message: Work) -> None:
        self.inflight[stream.request_id] = Held(stream, message)
        self._outbox.put(message)

    def change_adapter(self, message: LoadAdapter | UnloadAdapter) -> asyncio.Future[AdapterChanged | None]:
        """Ask the worker to load or unload an adapter (between its steps, once it holds the model).

        Resolves to its answer, or to None if the process ends first: a replacement loads the adapters
        of the pool's spec at start.
        """
        answer: asyncio.Future[AdapterChanged | None] = self._loop.create_future()
        self._adapter_answers.append(answer)
        self._outbox.put(message)
        return answer

    def set_threads(self, threads: int) -> None:
        """Tell the engine how many CPU threads to use from its next step on (sent only on change)."""
        if threads != self.threads:
            self.threads = threads
            self._outbox.put(SetThreads(threads))

    def cancel(self, request_id: str) -> bool:
        """Cancel a request this worker holds; False if it holds no such request."""
        if self.inflight.pop(request_id, None) is None:
            return False
        self._outbox.put(Cancel(request_id))
        self._on_done(self, request_id, None)
        return True

    def stop(self, timeout: float) -> None:
        """Ask the worker to exit, then make sure it has (blocking; run it in a thread)."""
        self._outbox.put(Shutdown())
        self._outbox.put(None)
        process = self._process
        if process is None:
            return
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(KILL_WAIT_S)

    # --- threads ------------------------------------------------------------------------

    def _write(self) -> None:
        while (message := self._outbox.get()) is not None:
            try:
                assert self._conn is not None
                self._conn.send(message)
            except (OSError, ValueError):
                return

    def _read(self) -> None:
        assert self._conn is not None
        assert self._process is not None
        try:
            while True:
                message: FromWorker = self._conn.recv()
                self._loop.call_soon_threadsafe(self._on_message, message)
        except (EOFError, OSError):
            pass
        except RuntimeError:  # the event loop closed under us: the server is gone
            return
        self._process.join()
        self._outbox.put(None)
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_exit, self._process.exitcode)

    # --- on the event loop --------------------------------------------------------------

    def _on_message(self, message: FromWorker) -> None:
        if isinstance(message, RequestEvents):
            for request_id, event in message.events:
                held = self.inflight.get(request_id)
                if held is None:
                    continue  # cancelled while the event was on its way
                held.stream.push(event)
                if isinstance(event, Finished | Failed | Tokenized | Detokenized | Embedded):
                    self.inflight.pop(request_id, None)
                    self._on_done(self, request_id, event)
        elif isinstance(message, PromptCacheReport):
            before, self.prompt_cache = self.prompt_cache, message.stats
            if self._on_cache is not None:
                self._on_cache(self, before, message.stats)
        elif isinstance(message, AdapterChanged):
            if self._adapter_answers:
                answer = self._adapter_answers.popleft()
                if not answer.done():
                    answer.set_result(message)
        elif isinstance(message, WorkerReady):
            self.state = "ready"
            self.capacity = message.capacity
            self.facts = message.facts
            self._on_change(self, "ready", None)
        elif isinstance(message, WorkerLoadFailed):
            self.state = "failed"
            self.load_error = message.error
            # A permanent error is the model's, not this worker's: the pool reports it once, as the model's state.
            level = logging.DEBUG if is_permanent(message.error) else logging.ERROR
            log.log(level, "%s: worker %d failed to load: %s", self.spec.name, self.index, message.error.message)
            self._on_change(self, "load_failed", message.error.message)

    def _on_exit(self, exitcode: int | None) -> None:
        # Not ready any more before its requests fail: their ends dispatch queued work, never to this worker.
        if self.state == "loading":
            self.load_error = ErrorInfo(
                code="model_unavailable",
                message=f"The worker exited (code {exitcode}) while loading the model.",
            )
            self.state = "failed"
        if self.state != "failed":
            self.state = "exited"
        lost = list(self.inflight.values())
        self.inflight.clear()
        while self._adapter_answers:
            answer = self._adapter_answers.popleft()
            if not answer.done():
                answer.set_result(None)
        self._on_lost(self, lost, exitcode)
        self.exited.set()
        self._on_change(self, "died", f"exited with code {exitcode}")


def _worker_main(spec: ModelSpec, conn: Connection, index: int, log_level: str) -> None:
    """The spawned process's entry: the worker module (and the engines) load there, never in the API process."""
    from warmserve.pool.worker import worker_main

    worker_main(spec, conn, index, log_level)
