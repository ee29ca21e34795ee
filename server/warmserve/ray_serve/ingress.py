"""The ingress side: a Pool whose workers are the replicas of a model's Ray Serve deployment.

`RayPool` sends each request through the deployment's handle as a stream and feeds the
events into the same RequestStream the routes read from a local pool. Ray's own failures
become our typed errors here: a full queue (BackPressureError) is 429 `overloaded`. A replica
that dies mid-request (its actor gone) does not end the request: the replica relayed every
token it drew, so the request continues on another replica from there (pool/progress.py),
unless each of two replicas running it died (422 `poison_request`) or no replica takes it
(503 `worker_died`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.exceptions import RayActorError
from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError, ReplicaUnavailableError
from ray.serve.handle import DeploymentHandle, DeploymentResponseGenerator

from warmserve.adapters import AdapterSpec
from warmserve.api.app import create_app
from warmserve.config import ModelSpec, ServerSettings
from warmserve.embedding import Embedded, EmbedRequest
from warmserve.errors import (
    BackendError,
    NotSupported,
    Overloaded,
    PoisonRequest,
    WarmServeError,
    WorkerDied,
    error_from_info,
)
from warmserve.generation import (
    Detokenized,
    Failed,
    Finished,
    GenerationEvent,
    GenerationRequest,
    ModelFacts,
    Started,
    Tokenized,
)
from warmserve.hub import DownloadStatus
from warmserve.metrics import Metrics
from warmserve.pool import Pool, RequestStream, WorkerStatus
from warmserve.pool.events import Publish
from warmserve.pool.lifecycle import Lifecycle
from warmserve.pool.tracker import RequestTracker, Tracked

log = logging.getLogger(__name__)

_STATUS_EVERY_S = 1.0
_REPLICA_GONE = (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError)
# A resumed request sent to a replica that turns out gone before it answers anything: tries, and the pause
# between them (Serve's router learns of a dead replica within moments).
_UNANSWERED_TRIES = 10
_UNANSWERED_PAUSE_S = 0.5


class RayPool(Tracked):
    """One model served by the replicas of its deployment (see the module docstring)."""

    def __init__(
        self,
        spec: ModelSpec,
        handle: DeploymentHandle[Any],
        app_name: str,
        deployment: str,
        metrics: Metrics,
        publish: Publish,
    ) -> None:
        self.spec = spec
        self._handle = handle
        self._app_name = app_name
        self._deployment = deployment
        self._lifecycle = Lifecycle(spec.name, publish)
        self._tracker = RequestTracker(spec.name, self._lifecycle, metrics, spec.request_timeout_s, self._cancel)
        self._pumps: dict[str, tuple[asyncio.Task[None], DeploymentResponseGenerator[Any]]] = {}
        self._replicas_running = 0
        self._watch: asyncio.Task[None] | None = None
        self._facts: ModelFacts | None = None

    # --- state: from Serve's view of the deployment --------------------------------------

    @property
    def workers(self) -> list[WorkerStatus]:
        return []  # replicas are Ray's processes, on other machines; Serve's dashboard shows them

    @property
    def ready_workers(self) -> int:
        return self._replicas_running

    @property
    def facts(self) -> ModelFacts | None:
        return self._facts

    @property
    def download(self) -> DownloadStatus | None:
        return None  # each replica reads its own machine's hub cache

    async def start(self) -> None:
        self._lifecycle.move("loading")
        self._watch = asyncio.get_running_loop().create_task(self._watch_status())

    async def stop(self) -> None:
        if not self._begin_stop(self.spec.name):
            return
        if self._watch is not None:
            self._watch.cancel()
        for task, response in list(self._pumps.values()):
            response.cancel()
            task.cancel()
        await asyncio.gather(*(task for task, _ in self._pumps.values()), return_exceptions=True)
        self._lifecycle.move("unloaded")

    async def _watch_status(self) -> None:
        """Serve's controller pushes nothing to a caller, so its status is read here and turned into events."""
        while True:
            try:
                await self._refresh_status()
            except Exception:  # the controller restarting is no reason to stop watching
                log.warning("could not read the status of %s", self._deployment, exc_info=True)
            await asyncio.sleep(_STATUS_EVERY_S)

    async def _refresh_status(self) -> None:
        status = await asyncio.to_thread(serve.status)
        application = status.applications.get(self._app_name)
        deployment = application.deployments.get(self._deployment) if application else None
        if deployment is None:
            self._replicas_running, deployment_status = 0, "UPDATING"
        else:
            running = sum(n for state, n in deployment.replica_states.items() if state == "RUNNING")
            self._replicas_running = running
            deployment_status = str(getattr(deployment.status, "value", deployment.status))
        if self._lifecycle.state not in ("stopping", "unloaded"):
            if self._replicas_running and deployment_status == "HEALTHY":
                self._lifecycle.move("ready")
            elif self._replicas_running:
                self._lifecycle.move("degraded")
            elif deployment_status in ("UNHEALTHY", "DEPLOY_FAILED"):
                self._lifecycle.move("unhealthy", "its replicas fail to start")
            else:
                self._lifecycle.move("loading")
        if self._facts is None and self._replicas_running:  # after the state: it may queue behind requests
            self._facts = await self._handle.facts.remote()

    # --- requests ----------------------------------------------------------------------

    async def submit(self, request: GenerationRequest) -> RequestStream:
        self._tracker.check_admissible()
        stream = self._tracker.open(request.response_id, request=request)
        response = self._generate(request)
        task = asyncio.get_running_loop().create_task(self._pump(stream, response))
        self._pumps[stream.request_id] = (task, response)
        return stream

    def _generate(self, request: GenerationRequest) -> DeploymentResponseGenerator[Any]:
        response = self._handle.options(stream=True).generate.remote(request)
        assert isinstance(response, DeploymentResponseGenerator)
        return response

    async def tokenize(self, request: GenerationRequest) -> list[int]:
        answer = await self._ask("tokenize", request)
        assert isinstance(answer, Tokenized)
        return list(answer.tokens)

    async def detokenize(self, tokens: list[int]) -> str:
        answer = await self._ask("detokenize", tokens)
        assert isinstance(answer, Detokenized)
        return answer.text

    async def embed(self, request: EmbedRequest) -> Embedded:
        answer = await self._ask("embed", request)
        assert isinstance(answer, Embedded)
        self._tracker.count(answer)
        return answer

    async def add_adapter(self, adapter: AdapterSpec) -> None:
        raise NotSupported("Adapters are added at run time only without --ray: list them in the model's spec.")

    async def remove_adapter(self, name: str) -> None:
        raise NotSupported("Adapters are removed at run time only without --ray: change the model's spec.")

    async def _ask(self, method: str, argument: object) -> object:
        """A quick question to a replica, outside the generation stream; `Failed` is raised as its error."""
        self._tracker.check_admissible()
        try:
            answer = await getattr(self._handle, method).remote(argument)
        except Exception as exc:
            raise _as_warmserve_error(exc, self.spec.name) from exc
        if isinstance(answer, Failed):
            raise error_from_info(answer.error)
        return answer

    async def _pump(self, stream: RequestStream, response: DeploymentResponseGenerator[Any]) -> None:
        request_id = stream.request_id
        last: GenerationEvent | None = None
        unanswered = 0
        try:
            while True:
                answered = False
                try:
                    async for event in response:
                        answered = True
                        if isinstance(event, Started):
                            self._tracker.run(request_id)
                        last = event
                        stream.push(event)
                    return
                except _REPLICA_GONE as exc:
                    unanswered = 0 if answered else unanswered + 1
                    response = await self._resume(stream, answered, unanswered, exc)
                    self._pumps[request_id] = (self._pumps[request_id][0], response)
        except Exception as exc:
            error = _as_warmserve_error(exc, self.spec.name)
            if isinstance(error, Overloaded):
                self._tracker.rejected("overloaded")
            stream.push(Failed(error.info()))
        finally:
            self._pumps.pop(request_id, None)
            self._tracker.done(request_id, last if isinstance(last, Finished) else None)

    async def _resume(
        self, stream: RequestStream, answered: bool, unanswered: int, exc: Exception
    ) -> DeploymentResponseGenerator[Any]:
        """The replica running the request died: the same request, continued, on another (or raise why not)."""
        progress = stream.progress
        assert progress is not None
        if self._lifecycle.state in ("stopping", "unloaded") or unanswered > _UNANSWERED_TRIES:
            raise exc
        poisoned = progress.died()
        self._tracker.resume(stream.request_id, poisoned)
        if poisoned:
            raise PoisonRequest(
                f"The request was running on {progress.deaths} replicas of model '{self.spec.name}' that died "
                "while serving it, so it is not tried again: it may be what crashes them."
            )
        log.warning("%s: the replica holding %s died; resuming it", self.spec.name, stream.request_id)
        if not answered:  # sent to a replica already gone: give Serve's router a moment to learn it
            await asyncio.sleep(_UNANSWERED_PAUSE_S)
        return self._generate(progress.continuation())

    def _cancel(self, request_id: str) -> bool:
        pump = self._pumps.pop(request_id, None)
        if pump is None:
            return False
        task, response = pump
        response.cancel()  # reaches the replica, whose stream close cancels the worker's request
        task.cancel()
        return True


def _as_warmserve_error(exc: Exception, model: str) -> WarmServeError:
    if isinstance(exc, WarmServeError):
        return exc
    if isinstance(exc, BackPressureError):
        return Overloaded(f"Model '{model}' is at capacity: its replicas' queue is full. Retry after a moment.")
    if isinstance(exc, _REPLICA_GONE):
        return WorkerDied(f"The replica of '{model}' running this request died; retry it.")
    log.error("request to %s failed", model, exc_info=exc)
    return BackendError(f"The request to '{model}' failed in Ray Serve: {type(exc).__name__}")


class Ingress:
    """The ingress deployment: builds warmserve's app, with RayPools, inside its replica."""

    def __init__(
        self, settings: dict[str, Any], models: dict[str, DeploymentHandle[Any]], deployments: dict[str, str]
    ) -> None:
        self._settings = ServerSettings.model_validate(settings)
        self._models = models
        self._deployments = deployments

    def __serve_build_asgi_app__(self) -> FastAPI:
        app_name = serve.get_replica_context().app_name

        def make_pool(spec: ModelSpec, metrics: Metrics, publish: Publish) -> Pool:
            handle = self._models[spec.name]
            return RayPool(spec, handle, app_name, self._deployments[spec.name], metrics, publish)

        return create_app(self._settings, make_pool, manageable=False)
