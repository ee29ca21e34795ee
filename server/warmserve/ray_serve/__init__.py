"""Scale-out on Ray Serve: the same app, with each model's workers as Ray Serve replicas.

    HTTP -> Serve proxy -> ingress replica: create_app(settings), one RayPool per model
                              | DeploymentHandle (token streams as generators)
                              v
                           ModelReplica x N per model, anywhere in the cluster:
                           a one-worker ModelPool, the worker process holding the model warm

Only the pool behind the routes changes (`RayPool` instead of `ModelPool`), so every route,
error, limit and metric of the single-machine server is served unchanged. Backpressure is
Ray Serve's: a replica takes `max_ongoing_requests` (its engine's capacity) at a time and each
ingress queues up to `max_queued_requests` (the model's `max_waiting`), then answers 429.
Needs the `ray` extra (`pip install 'warmserve[ray]'`); nothing here is imported otherwise.
"""

from warmserve.ray_serve.app import APP_NAME, app_builder, build_app, run_on_ray

__all__ = ["APP_NAME", "app_builder", "build_app", "run_on_ray"]
