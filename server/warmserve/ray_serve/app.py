"""Build the Ray Serve application from warmserve's settings, and run it on a cluster.

Three ways in, one builder:
- `warmserve serve --ray ADDRESS ...`: the usual flags, env and config file, deployed to a cluster;
- `serve run deploy/ray/serve.yaml` (or `serve deploy`, or a KubeRay RayService): Serve's config
  file names `warmserve.ray_serve:app_builder`, its `args` are warmserve.yaml's keys;
- `build_app(settings)` from Python, e.g. `serve.run(build_app(settings))`.
Each model becomes a deployment with `workers` replicas (override `num_replicas` or
`autoscaling_config` per deployment in Serve's config file); each replica reserves `threads` CPUs.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from typing import Any

import ray
from ray import serve
from ray.serve import Application

from warmserve.config import ModelSpec, ServerSettings
from warmserve.ray_serve.ingress import Ingress
from warmserve.ray_serve.replica import ModelReplica

log = logging.getLogger(__name__)

APP_NAME = "warmserve"
INGRESS = "ingress"


def deployment_name(spec: ModelSpec) -> str:
    return "model-" + re.sub(r"[^A-Za-z0-9_.-]", "-", spec.name)


def engine_capacity(spec: ModelSpec) -> int:
    """Requests one worker runs at once: what its engine decodes together, or max_running if lower."""
    capacity = spec.slots
    return min(capacity, spec.max_running) if spec.max_running else capacity


def _uses_gpu(spec: ModelSpec) -> bool:
    if spec.backend == "llama_cpp":
        return spec.n_gpu_layers != 0
    return spec.backend == "transformers" and spec.device.startswith("cuda")


def _model_deployment(spec: ModelSpec, log_level: str, drain_timeout_s: float) -> Application:
    cpus = spec.threads or 1
    # Only what was set: defaults that depend on the machine (cache_dir under $HOME) are the replica's own.
    replica_spec = {
        **spec.model_dump(mode="json", exclude_unset=True),
        "name": spec.name,
        "workers": 1,
        "threads": cpus,
    }
    deployment = serve.deployment(
        name=deployment_name(spec),
        num_replicas=spec.workers,
        max_ongoing_requests=engine_capacity(spec),
        max_queued_requests=spec.max_waiting,
        graceful_shutdown_timeout_s=drain_timeout_s,
        health_check_period_s=5,
        ray_actor_options={"num_cpus": cpus, "num_gpus": 1 if _uses_gpu(spec) else 0},
    )(ModelReplica)
    application: Application = deployment.bind(replica_spec, log_level)
    return application


def build_app(settings: ServerSettings) -> Application:
    """The Serve application: the ingress (warmserve's app) bound to one deployment per model."""
    lazy = [spec.name for spec in settings.models if spec.lazy or spec.idle_unload_s is not None]
    if lazy:
        raise ValueError(f"lazy and idle_unload_s are not supported with Ray Serve (models: {', '.join(lazy)})")
    names = {spec.name: deployment_name(spec) for spec in settings.models}
    if len(set(names.values())) < len(names):
        raise ValueError(f"model names must stay distinct as deployment names: {sorted(names.values())}")
    models = {
        spec.name: _model_deployment(spec, settings.log_level, settings.drain_timeout_s) for spec in settings.models
    }
    ongoing = sum(spec.workers * engine_capacity(spec) + spec.max_waiting for spec in settings.models)
    ingress = serve.deployment(
        name=INGRESS,
        max_ongoing_requests=max(100, ongoing),
        graceful_shutdown_timeout_s=settings.drain_timeout_s,
        # HTTP, JSON and SSE only: it reserves no CPU, so the models' replicas can have them all.
        ray_actor_options={"num_cpus": 0},
    )(serve.ingress()(Ingress))
    application: Application = ingress.bind(settings.model_dump(mode="json"), models, names)
    return application


def app_builder(args: dict[str, Any]) -> Application:
    """Entry point for Serve's config file (`import_path: warmserve.ray_serve:app_builder`).

    `args` holds warmserve.yaml's keys; WARMSERVE_* variables of the process that builds the
    application apply beneath them, as they do for `warmserve serve`.
    """
    return build_app(ServerSettings(**args))


def run_on_ray(settings: ServerSettings) -> None:
    """`warmserve serve --ray ADDRESS`: deploy to the cluster, serve until SIGINT/SIGTERM, then remove the app."""
    ray.init(address=settings.ray_address, log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs its own
        signal.signal(sig, lambda *_: stop.set())
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/", blocking=False)
    log.info("serving on Ray Serve at http://%s:%d/v1", settings.host, settings.port)
    stop.wait()
    log.info("removing the application; replicas finish their requests first (up to %.0f s)", settings.drain_timeout_s)
    serve.delete(APP_NAME)
