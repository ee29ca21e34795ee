"""A pool that runs its engine inside the API process: the fake at the `Pool` interface.

For the API's own tests, the way httpx's MockTransport stands in for the network: the routes
see the real `Pool` interface, `RequestTracker` and `Lifecycle`, and the engine (the fake, as a
rule) runs on the event loop between requests, with no worker process to spawn, load or kill.
Process faults (crashes, restarts, drains of real workers) are `ModelPool`'s and are tested there.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from warmserve.adapters import AdapterSpec
from warmserve.config import ModelSpec
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import BackendError, ModelUnavailable, Overloaded, QueueTimeout, WarmServeError
from warmserve.generation import Failed, Finished, GenerationRequest, ModelFacts
from warmserve.hub import DownloadStatus
from warmserve.metrics import Metrics
from warmserve.pool.admission import Queued, WaitingQueue
from warmserve.pool.events import Publish, WorkerStatus
from warmserve.pool.lifecycle import Lifecycle
from warmserve.pool.messages import Submit
from warmserve.pool.stream import RequestStream
from warmserve.pool.tracker import RequestTracker, Tracked

if TYPE_CHECKING:
    from warmserve.backends import Engine

log = logging.getLogger(__name__)


class InProcessPool(Tracked):
    def __init__(self, spec: ModelSpec, metrics: Metrics, publish: Publish) -> None:
        if spec.backend == "fake" and (spec.fake.crash_on or spec.fake.crash_on_load):
            raise ValueError("an in-process engine must not crash the process: test crashes with ModelPool")
        self.spec = spec
        self._lifecycle = Lifecycle(spec.name, publish)
        self._tracker = RequestTracker(spec.name, self._lifecycle, metrics, spec.request_timeout_s, self._cancel)
        self._waiting = WaitingQueue(spec.queue_timeout_s, self._queue_timed_out)
        self._running: dict[str, RequestStream] = {}
        self._engine: Engine | None = None
        self._work = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def ready_workers(self) -> int:
        return 1 if self._engine is not None else 0

    @property
    def workers(self) -> list[WorkerStatus]:
        return []

    @property
    def facts(self) -> ModelFacts | None:
        return self._engine.facts if self._engine is not None else None

    @property
    def download(self) -> DownloadStatus | None:
        return None  # the fake needs no files

    async def start(self) -> None:
        from warmserve.backends import load_engine  # an engine's imports stay out of the API process otherwise

        self._lifecycle.move("loading")
        self._engine = await asyncio.to_thread(load_engine, self.spec)
        self._lifecycle.move("ready")
        self._loop = asyncio.get_running_loop().create_task(self._steps())

    async def stop(self) -> None:
        if not self._begin_stop(self.spec.name):
            return
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        self._engine = None
        self._lifecycle.move("unloaded")

    async def submit(self, request: GenerationRequest) -> RequestStream:
        self._tracker.check_admissible()
        if len(self._waiting) >= self.spec.max_waiting:
            self._tracker.rejected("overloaded")
            raise Overloaded(f"Model '{self.spec.name}' is at capacity. Retry after a moment.")
        stream = self._tracker.open(request.response_id)
        self._waiting.push(Queued(stream, Submit(stream.request_id, request)))
        self._work.set()
        return stream

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        return self._ready_engine().tokenize(request)

    async def detokenize(self, tokens: list[int]) -> str:
        return self._ready_engine().detokenize(tokens)

    async def embed(self, request: EmbedRequest) -> Embedded:
        answer = self._ready_engine().embed(request)
        self._tracker.count(answer)
        return answer

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        """Loaded between two steps: the engine runs on this event loop, as a worker's between its steps."""
        self._ready_engine().add_adapter(adapter)
        self.spec = self.spec.model_copy(update={"adapters": [*self.spec.adapters, adapter]})

    async def remove_adapter(self, name: str) -> None:
        self.spec = self.spec.model_copy(update={"adapters": [a for a in self.spec.adapters if a.name != name]})
        if self._engine is not None:
            self._engine.remove_adapter(name)

    def _ready_engine(self) -> Engine:
        self._tracker.check_admissible()
        if self._engine is None:
            raise ModelUnavailable(f"Model '{self.spec.name}' has no ready worker yet; retry shortly.")
        return self._engine

    def _cancel(self, request_id: str) -> bool:
        if self._waiting.remove(request_id):
            return True
        if self._running.pop(request_id, None) is None:
            return False
        if self._engine is not None:
            self._engine.cancel(request_id)
        return True

    def _queue_timed_out(self, item: Queued) -> None:
        self._tracker.rejected("queue_timeout")
        error = QueueTimeout(
            f"The request waited {self.spec.queue_timeout_s:g} s for a free slot on '{self.spec.name}'."
        )
        self._tracker.fail(item.stream.request_id, error.info())

    async def _steps(self) -> None:
        """The worker's loop on the event loop: admit while there is room, step, hand out the events."""
        engine = self._engine
        assert engine is not None
        while True:
            if not self._running and not len(self._waiting):
                self._work.clear()
                await self._work.wait()
            while len(self._waiting) and engine.running < engine.capacity:
                item = self._waiting.pop()
                if item is None:
                    break
                stream, request_id = item.stream, item.stream.request_id
                try:
                    stream.push(engine.add(request_id, item.message.request))
                except Exception as exc:
                    error = exc if isinstance(exc, WarmServeError) else BackendError(f"The engine failed: {exc}")
                    self._tracker.fail(request_id, error.info())
                    continue
                self._running[request_id] = stream
                self._tracker.run(request_id)
            if self._running:
                try:
                    events = engine.step()
                except Exception as exc:  # as a worker does: the step's requests fail, the pool goes on
                    log.exception("engine step failed")
                    events = [(rid, Failed(BackendError(f"The engine failed: {exc}").info())) for rid in self._running]
                for request_id, event in events:
                    stream_or_none = self._running.get(request_id)
                    if stream_or_none is None:
                        continue
                    stream_or_none.push(event)
                    if isinstance(event, Finished | Failed):
                        del self._running[request_id]
                        self._tracker.done(request_id, event)
            await asyncio.sleep(0)  # let the readers and new requests in between steps
