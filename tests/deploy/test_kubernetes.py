"""deploy/kubernetes: overlays rendered by kustomize (kubectl's own) and validated strictly.

Beyond the schemas: probes on the right endpoints, a grace period that outlasts preStop plus the
drain the pods' own settings give, an HPA on a metric the server exports and the adapter serves,
selectors that match the pods, and threads that fit the CPU the pods get.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from tests.conftest import fake_settings
from tests.deploy.files import (
    KUSTOMIZE,
    OVERLAYS,
    dockerfile_stages,
    image_env,
    one,
    render_overlay,
    run_tool,
    server_settings,
    venv_tool,
    warmserve_argv,
)
from warmserve.api.serving import exit_bound_s
from warmserve.config import ServerSettings
from warmserve.metrics import Metrics
from warmserve.pool import PoolManager

overlays = pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [server] = one(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    return server


def pod_settings(documents: list[dict[str, Any]], monkeypatch, tmp_path: Path) -> ServerSettings:
    """The settings the server container builds from its args, environment and mounted ConfigMap."""
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]
    server = container(documents)
    config_maps = {d["metadata"]["name"]: d["data"] for d in documents if d["kind"] == "ConfigMap"}
    files = {}
    for mount in server["volumeMounts"]:
        [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        if "configMap" in volume:
            for key, text in config_maps[volume["configMap"]["name"]].items():
                files[f"{mount['mountPath']}/{key}"] = text
    env = {**image_env(), **{e["name"]: e["value"] for e in server.get("env", [])}}
    assert server.get("command") is None  # the image's entrypoint runs warmserve
    return server_settings(warmserve_argv(["warmserve", *server["args"]]), env, files, monkeypatch, tmp_path)


def test_there_are_cpu_and_gpu_overlays():
    assert [p.name for p in OVERLAYS] == ["cpu", "gpu"]


@overlays
@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_rendered_overlay_passes_kubernetes_validate_strict(overlay, version, tmp_path):
    documents = render_overlay(overlay)
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
    ]
    rendered = tmp_path / f"{overlay.name}.yaml"
    rendered.write_text(yaml.safe_dump_all(documents))
    result = run_tool(venv_tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, rendered)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path):
    documents = render_overlay(OVERLAYS[0])
    container(documents)["readinesProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
    rendered = tmp_path / "typo.yaml"
    rendered.write_text(yaml.safe_dump_all(documents))
    result = run_tool(venv_tool("kubernetes-validate"), "--strict", "--quiet", rendered)
    assert result.returncode != 0
    assert "readinesProbe" in result.stdout + result.stderr


@overlays
def test_probes_ask_readiness_and_liveness_on_the_servers_port(overlay, monkeypatch, tmp_path):
    documents = render_overlay(overlay)
    server = container(documents)
    [port] = server["ports"]
    assert port["containerPort"] == pod_settings(documents, monkeypatch, tmp_path).port
    assert server["readinessProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    assert server["livenessProbe"]["httpGet"] == {"path": "/health", "port": port["name"]}
    service = one(documents, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]


@overlays
def test_grace_period_outlasts_prestop_plus_the_drain_the_pods_settings_give(overlay, monkeypatch, tmp_path):
    documents = render_overlay(overlay)
    settings = pod_settings(documents, monkeypatch, tmp_path)
    assert settings.drain_timeout_s == 30
    command = container(documents)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    grace_s = one(documents, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert pre_stop_s >= 5  # time for the endpoint to leave the Service before SIGTERM
    assert grace_s > pre_stop_s + exit_bound_s(settings)


@overlays
def test_hpa_scales_the_deployment_on_a_queue_metric_the_server_exports(overlay):
    documents = render_overlay(overlay)
    hpa = one(documents, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "warmserve"}
    [metric] = hpa["metrics"]
    assert metric["type"] == "Pods"
    name = metric["pods"]["metric"]["name"]
    assert name == "warmserve_requests_waiting"

    metrics = Metrics()
    PoolManager(fake_settings(), metrics)  # starts no worker: registers the gauges read at scrape time
    exported = generate_latest(metrics.registry).decode()
    assert f'{name}{{model="fake"}} 0.0' in exported

    adapter = yaml.safe_load((KUSTOMIZE / "prometheus-adapter" / "values.yaml").read_text())
    [rule] = [r for r in adapter["rules"]["custom"] if r["name"]["as"] == name]
    assert rule["seriesQuery"].startswith(f"{name}{{")
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


@overlays
def test_selectors_match_the_pods_and_the_pdb_leaves_some_serving(overlay):
    documents = render_overlay(overlay)
    deployment = one(documents, "Deployment")["spec"]
    labels = deployment["template"]["metadata"]["labels"]
    for selector in (
        deployment["selector"]["matchLabels"],
        one(documents, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(documents, "Service")["spec"]["selector"],
    ):
        assert selector.items() <= labels.items()
    pdb = one(documents, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] < one(documents, "HorizontalPodAutoscaler")["spec"]["minReplicas"]


@overlays
def test_models_volume_is_the_pvc_mounted_read_only(overlay):
    documents = render_overlay(overlay)
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]
    [mount] = [m for m in container(documents)["volumeMounts"] if m["mountPath"] == "/models"]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == one(documents, "PersistentVolumeClaim")["metadata"]["name"]
    assert mount["readOnly"] is True
    assert "ReadWriteMany" in one(documents, "PersistentVolumeClaim")["spec"]["accessModes"]


@overlays
def test_stored_responses_go_to_a_writable_volume_on_the_read_only_root(overlay, monkeypatch, tmp_path):
    documents = render_overlay(overlay)
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]
    assert container(documents)["securityContext"]["readOnlyRootFilesystem"] is True
    data_dir = str(pod_settings(documents, monkeypatch, tmp_path).data_dir)
    [mount] = [m for m in container(documents)["volumeMounts"] if m["mountPath"] == data_dir]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "emptyDir" in volume
    assert not mount.get("readOnly")


@overlays
def test_pods_run_as_the_images_non_root_user_with_cpu_for_every_thread(overlay, monkeypatch, tmp_path):
    documents = render_overlay(overlay)
    pod = one(documents, "Deployment")["spec"]["template"]["spec"]
    [user] = [i.value for i in dockerfile_stages()[-1] if i.keyword == "USER"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    resources = container(documents)["resources"]
    threads = sum(m.workers * m.effective_threads() for m in pod_settings(documents, monkeypatch, tmp_path).models)
    assert threads <= float(resources["requests"]["cpu"])  # a pod sees the node's cores, not its share
    assert resources["limits"]["memory"]


def test_gpu_overlay_runs_the_cuda_image_with_a_gpu_and_every_layer_on_it(monkeypatch, tmp_path):
    images = {p.name: container(render_overlay(p))["image"] for p in OVERLAYS}
    assert images == {"cpu": "warmserve:cpu", "gpu": "warmserve:cuda"}
    gpu = render_overlay(KUSTOMIZE / "overlays" / "gpu")
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    models = pod_settings(gpu, monkeypatch, tmp_path).models
    assert models
    assert all(m.n_gpu_layers == -1 for m in models if m.backend == "llama_cpp")
