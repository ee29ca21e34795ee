"""docker-compose.yml: valid for Compose v2, local by default, healthy on /ready, stopped after the drain."""

from __future__ import annotations

import yaml

from tests.deploy.files import (
    COMPOSE_FILE,
    ROOT,
    compose_binary,
    compose_config,
    go_duration_s,
    image_command,
    image_env,
    run_tool,
    server_settings,
    warmserve_argv,
)
from warmserve.api.serving import exit_bound_s
from warmserve.config import EMBEDDED_MODEL_NAME


def test_compose_config_is_valid_with_and_without_the_monitoring_profile(tmp_path):
    for options in ([], ["--profile", "monitoring"]):
        result = run_tool(compose_binary(), "-f", COMPOSE_FILE, *options, "config", "-q")
        assert result.returncode == 0, result.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("stop_grace_period: 60s", "stop_grace_period: soon"))
    assert run_tool(compose_binary(), "-f", broken, "config", "-q").returncode != 0


def test_the_server_is_built_from_this_dockerfile_and_runs_the_images_command():
    server = compose_config()["services"]["warmserve"]
    assert server["build"]["context"] == str(ROOT)
    assert server["build"]["dockerfile"] == "Dockerfile"
    assert server.get("entrypoint") is None
    assert server.get("command") is None


def test_published_on_loopback_only_by_default():
    [port] = compose_config()["services"]["warmserve"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "8000", 8000)
    prometheus = compose_config("monitoring")["services"]["prometheus"]
    assert {p["host_ip"] for p in prometheus["ports"]} == {"127.0.0.1"}


def test_models_and_stored_responses_live_on_volumes(monkeypatch, tmp_path):
    server = compose_config()["services"]["warmserve"]
    settings = server_settings(
        warmserve_argv(image_command()), {**image_env(), **server["environment"]}, {}, monkeypatch, tmp_path
    )
    volumes = sorted((v["type"], v["source"], v["target"]) for v in server["volumes"])
    assert volumes == [("volume", "data", str(settings.data_dir)), ("volume", "models", "/models")]


def test_healthcheck_asks_readiness():
    test = compose_config()["services"]["warmserve"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://127.0.0.1:8000/ready" in " ".join(test)


def test_stop_grace_period_outlasts_the_servers_drain_and_shutdown(monkeypatch, tmp_path):
    server = compose_config()["services"]["warmserve"]
    env = {**image_env(), **server["environment"]}
    settings = server_settings(warmserve_argv(image_command()), env, {}, monkeypatch, tmp_path)
    assert settings.drain_timeout_s == 30
    assert [m.name for m in settings.models] == [EMBEDDED_MODEL_NAME]
    assert go_duration_s(server["stop_grace_period"]) > exit_bound_s(settings)


def test_prometheus_is_optional_and_scrapes_the_servers_metrics():
    assert "prometheus" not in compose_config()["services"]
    prometheus = compose_config("monitoring")["services"]["prometheus"]
    [config] = [v for v in prometheus["volumes"] if v["target"] == "/etc/prometheus/prometheus.yml"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["source"] == str(ROOT / "deploy" / "prometheus.yml")
    [job] = scrape["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"] == [{"targets": [f"warmserve:{image_env()['WARMSERVE_PORT']}"]}]
