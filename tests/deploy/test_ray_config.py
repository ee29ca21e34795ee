"""deploy/ray: Serve's config file and the KubeRay RayService, checked without a cluster.

kubernetes-validate passes a RayService silently (an unknown kind to it), so the manifest is
validated with check-jsonschema against KubeRay's CRD schema (tests/deploy/schemas). The Serve
config goes through Ray's own schema and through our app builder; the cluster test in
tests/ray_serve runs the same builder for real.
"""

from __future__ import annotations

from typing import Any

import yaml
from ray.serve.schema import ServeDeploySchema

from tests.deploy.files import ROOT, run_tool, venv_tool
from warmserve.config import ServerSettings
from warmserve.ray_serve import app_builder
from warmserve.ray_serve.app import INGRESS, deployment_name

SERVE_CONFIG = ROOT / "deploy" / "ray" / "serve.yaml"
RAYSERVICE = ROOT / "deploy" / "ray" / "rayservice.yaml"
RAYSERVICE_SCHEMA = ROOT / "tests" / "deploy" / "schemas" / "kuberay-rayservice-v1.schema.json"


def check_jsonschema(path) -> Any:
    return run_tool(venv_tool("check-jsonschema"), "--schemafile", RAYSERVICE_SCHEMA, path)


def test_rayservice_matches_kuberays_schema():
    result = check_jsonschema(RAYSERVICE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kuberays_schema_rejects_a_misplaced_field(tmp_path):
    manifest = yaml.safe_load(RAYSERVICE.read_text())
    manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replica"] = 2
    broken = tmp_path / "rayservice.yaml"
    broken.write_text(yaml.safe_dump(manifest))
    assert check_jsonschema(broken).returncode != 0


def test_rayservice_runs_the_serve_config_file():
    manifest = yaml.safe_load(RAYSERVICE.read_text())
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"]) == yaml.safe_load(SERVE_CONFIG.read_text())


def test_serve_config_passes_rays_schema_and_names_our_builder():
    config = ServeDeploySchema.model_validate(yaml.safe_load(SERVE_CONFIG.read_text()))
    [application] = config.applications
    assert application.import_path == "warmserve.ray_serve:app_builder"
    assert application.route_prefix == "/"


def test_builder_makes_each_models_workers_replicas_with_its_limits():
    [application] = yaml.safe_load(SERVE_CONFIG.read_text())["applications"]
    settings = ServerSettings(**application["args"])
    ingress = app_builder(application["args"])._bound_deployment  # Serve has no public introspection
    assert ingress.name == INGRESS
    assert ingress.ray_actor_options["num_cpus"] == 0
    _, models, names = ingress.init_args
    for spec in settings.models:
        deployment = models[spec.name]._bound_deployment
        assert deployment.name == names[spec.name] == deployment_name(spec)
        assert deployment.num_replicas == spec.workers
        assert deployment.max_ongoing_requests == spec.slots
        assert deployment.max_queued_requests == spec.max_waiting
        assert deployment.ray_actor_options["num_cpus"] == spec.threads
        replica_spec, _ = deployment.init_args
        assert (replica_spec["workers"], replica_spec["threads"]) == (1, spec.threads)
        assert "cache_dir" not in replica_spec  # a default of the machine the replica runs on
        assert deployment._deployment_config.graceful_shutdown_timeout_s == settings.drain_timeout_s
