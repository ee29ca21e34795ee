"""The worker process: load the model once, then serve multiplexed requests forever.

The loop alternates between reading messages from the supervisor and advancing
the engine by one step, so a Cancel takes effect before the next token. Requests
beyond the engine's capacity wait here, in arrival order. Embedding requests are
queued in the engine and worked off one bounded batch per turn, after the generation
step, so neither kind of work waits for the other to finish. When the supervisor's
end of the pipe closes (the server died), the worker exits instead of lingering.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import OrderedDict
from multiprocessing.connection import Connection

from warmserve.backends import Embedder, Engine, Generator, load_engine
from warmserve.backends.base import StepEvents as Events
from warmserve.config import ModelSpec
from warmserve.errors import BackendError, WarmServeError
from warmserve.generation import (
    Detokenized,
    Drawn,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    TextDelta,
    Tokenized,
)
from warmserve.pool.messages import (
    AdapterChanged,
    Cancel,
    Detokenize,
    Embed,
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

log = logging.getLogger("warmserve.worker")

_HELD_PROGRESS_EVERY_S = 0.5


def worker_main(spec: ModelSpec, conn: Connection, index: int, log_level: str) -> None:
    """Entry point of a spawned worker process."""
    # Ctrl+C reaches the whole process group; shutdown is the supervisor's call, not ours.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=log_level.upper(), format=f"%(asctime)s %(levelname)s [{spec.name}/worker-{index}] %(message)s"
    )
    log.info("loading %s with the %s backend", spec.path or spec.name, spec.backend)
    started = time.perf_counter()
    try:
        engine = load_engine(spec, index)
    except Exception as exc:  # report any load failure to the supervisor, then exit
        error = exc if isinstance(exc, WarmServeError) else BackendError(f"Loading {spec.name} failed: {exc}")
        if not error.permanent:  # a permanent one says all there is to say, and the supervisor reports it
            log.exception("load failed")
        conn.send(WorkerLoadFailed(error.info()))
        return
    load_seconds = time.perf_counter() - started
    log.info("model loaded in %.2f s; ready (capacity %d)", load_seconds, engine.capacity)
    conn.send(WorkerReady(load_seconds=load_seconds, capacity=engine.capacity, facts=engine.facts))
    try:
        _serve(engine, conn)
    except (EOFError, OSError):
        log.info("supervisor went away; exiting")
    finally:
        engine.close()


def _serve(engine: Engine, conn: Connection) -> None:
    waiting: OrderedDict[str, GenerationRequest] = OrderedDict()
    running: set[str] = set()
    held = _HeldText()
    cache = engine.prompt_cache_stats()
    while True:
        idle = not running and not waiting and not engine.embedding
        # Block while idle; otherwise only drain what has already arrived.
        while conn.poll(None if idle else 0):
            idle = False
            message: ToWorker = conn.recv()
            if isinstance(message, Shutdown):
                return
            if isinstance(message, Submit):
                log.debug("request %s: queued (%d running, %d waiting)", message.request_id, len(running), len(waiting))
                waiting[message.request_id] = message.request
                if not message.request.stream:
                    held.hold(message.request_id)
            elif isinstance(message, Tokenize | Detokenize):
                conn.send(RequestEvents((_tokenize(engine, message),)))
            elif isinstance(message, Embed):
                refused = _add_embedding(engine, message)
                if refused is not None:
                    conn.send(RequestEvents((refused,)))
            elif isinstance(message, LoadAdapter | UnloadAdapter):
                conn.send(_change_adapter(engine, message))
            elif isinstance(message, SetThreads):
                log.debug("threads -> %d", message.threads)
                engine.set_threads(message.threads)
            elif isinstance(message, Cancel):
                log.debug("request %s: cancelled", message.request_id)
                held.drop(message.request_id)
                engine.cancel_embedding(message.request_id)
                if waiting.pop(message.request_id, None) is None:
                    engine.cancel(message.request_id)
                    running.discard(message.request_id)
        # Starts go out before the step computes anything: the pool counts a worker that dies from here
        # on as one that ran the request (pool/progress.py).
        _send(conn, held, _ended(_admit(engine, waiting, running), running))
        if (now := engine.prompt_cache_stats()) != cache and now is not None:
            cache = now
            conn.send(PromptCacheReport(now))
        events: Events = []
        if running:
            events.extend(_step(engine, running))
        if engine.embedding:
            events.extend(engine.embed_step())
        _send(conn, held, _ended(events, running))


def _ended(events: Events, running: set[str]) -> Events:
    """Take the requests that ended out of `running` (and log how); the events pass through."""
    for request_id, event in events:
        if isinstance(event, Finished):
            log.debug("request %s: %s after %d tokens", request_id, event.finish_reason, event.completion_tokens)
            running.discard(request_id)
        elif isinstance(event, Failed):
            log.info("request %s: failed (%s) %s", request_id, event.error.code, event.error.message)
            running.discard(request_id)
    return events


def _send(conn: Connection, held: _HeldText, events: Events) -> None:
    events = held.filter(events)
    if events:
        conn.send(RequestEvents(tuple(events)))


def _tokenize(engine: Generator, message: Tokenize | Detokenize) -> tuple[str, GenerationEvent]:
    try:
        if isinstance(message, Detokenize):
            return message.request_id, Detokenized(engine.detokenize(list(message.tokens)))
        return message.request_id, Tokenized(tuple(engine.tokenize(message.request)))
    except WarmServeError as exc:
        return message.request_id, Failed(exc.info())
    except Exception as exc:
        log.exception("tokenize %s failed", message.request_id)
        return message.request_id, Failed(BackendError(f"The tokenizer failed: {exc}").info())


def _change_adapter(engine: Generator, message: LoadAdapter | UnloadAdapter) -> AdapterChanged:
    """Load or unload an adapter between steps; a bad adapter is reported, and the worker serves on without it."""
    name = message.adapter.name if isinstance(message, LoadAdapter) else message.name
    try:
        if isinstance(message, LoadAdapter):
            engine.add_adapter(message.adapter)
            log.info("adapter %s loaded from %s", name, message.adapter.path)
        else:
            engine.remove_adapter(name)
            log.info("adapter %s unloaded", name)
        return AdapterChanged(name)
    except WarmServeError as exc:
        log.warning("adapter %s: %s", name, exc.message)
        return AdapterChanged(name, exc.info())
    except Exception as exc:
        log.exception("adapter %s failed", name)
        return AdapterChanged(name, BackendError(f"The adapter '{name}' failed: {exc}").info())


def _add_embedding(engine: Embedder, message: Embed) -> tuple[str, GenerationEvent] | None:
    """Queue an embedding request in the engine, or the Failed event that refuses it."""
    try:
        engine.add_embedding(message.request_id, message.request)
        return None
    except WarmServeError as exc:
        return message.request_id, Failed(exc.info())
    except Exception as exc:
        log.exception("embedding %s failed to start", message.request_id)
        return message.request_id, Failed(BackendError(f"The engine failed: {exc}").info())


def _admit(engine: Generator, waiting: OrderedDict[str, GenerationRequest], running: set[str]) -> Events:
    events: Events = []
    while waiting and engine.running < engine.capacity:
        request_id, request = waiting.popitem(last=False)
        try:
            started = engine.add(request_id, request)
            log.debug("request %s: started, %d prompt tokens", request_id, started.prompt_tokens)
            events.append((request_id, started))
            running.add(request_id)
        except WarmServeError as exc:
            events.append((request_id, Failed(exc.info())))
        except Exception as exc:
            log.exception("request %s failed to start", request_id)
            events.append((request_id, Failed(BackendError(f"The engine failed: {exc}").info())))
    return events


def _step(engine: Generator, running: set[str]) -> Events:
    try:
        return engine.step()
    except Exception as exc:
        # An engine error mid-step fails the requests it was running, not the worker.
        log.exception("engine step failed")
        failed = Failed(BackendError(f"The engine failed: {exc}").info())
        for request_id in running:
            engine.cancel(request_id)
        return [(request_id, failed) for request_id in running]


class _HeldText:
    """Text of non-streaming requests, kept here and sent once with the Finished event.

    A client that waits for the whole answer gains nothing from a message per token, and
    the API process then spends no CPU per token on it (on a small CPU box it shares the
    cores with the engine's threads). The tokens such requests draw (their `Drawn` events,
    for resuming them elsewhere if this worker dies) ride along whenever a message goes out
    anyway, and otherwise at most every `_HELD_PROGRESS_EVERY_S`: a death then costs at most
    that much decoding again. A message per step would wake the API process per token, which on
    a small CPU box measurably slows the engine beside it (README, "When a worker is killed").
    """

    def __init__(self) -> None:
        self._parts: dict[str, list[TextDelta]] = {}
        self._drawn: Events = []  # held requests' Drawn events not yet sent
        self._drawn_since = 0.0

    def hold(self, request_id: str) -> None:
        self._parts[request_id] = []

    def drop(self, request_id: str) -> None:
        self._parts.pop(request_id, None)
        self._drawn = [(rid, event) for rid, event in self._drawn if rid != request_id]

    def filter(self, events: Events) -> Events:
        if not self._parts:
            return events
        kept: Events = []
        for request_id, event in events:
            parts = self._parts.get(request_id)
            if parts is None:
                kept.append((request_id, event))
            elif isinstance(event, TextDelta):
                parts.append(event)
            elif isinstance(event, Drawn):
                if not self._drawn:
                    self._drawn_since = time.monotonic()
                self._drawn.append((request_id, event))
            else:
                if isinstance(event, Finished) and parts:
                    whole = TextDelta("".join(p.text for p in parts), tuple(lp for p in parts for lp in p.logprobs))
                    kept.append((request_id, whole))
                if isinstance(event, Finished | Failed):
                    self.drop(request_id)
                kept.append((request_id, event))
        if self._drawn and (kept or time.monotonic() - self._drawn_since >= _HELD_PROGRESS_EVERY_S):
            kept, self._drawn = [*self._drawn, *kept], []
        return kept
