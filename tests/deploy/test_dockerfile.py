"""The Dockerfile: hadolint-clean, multi-stage, non-root, healthy on /ready, SIGTERM to the server."""

from __future__ import annotations

import fnmatch
import re

from tests.deploy.files import (
    DOCKERFILE,
    ROOT,
    dockerfile_args,
    dockerfile_instructions,
    dockerfile_stages,
    image_command,
    image_env,
    run_tool,
    server_settings,
    venv_tool,
    warmserve_argv,
)
from warmserve.config import EMBEDDED_MODEL_NAME


def hadolint(*args: str, stdin: str | None = None):
    return run_tool(venv_tool("hadolint"), "--no-color", "--failure-threshold", "warning", *args, stdin=stdin)


def test_hadolint_finds_no_warning_in_the_dockerfile():
    result = hadolint(str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_on_a_warning():
    result = hadolint("-", stdin="FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y curl\n")
    assert result.returncode != 0
    assert "DL3008" in result.stdout  # unpinned apt package: a warning, not an error


def test_cpu_is_the_default_and_cuda_a_build_argument_over_a_configurable_base():
    args = dockerfile_args()
    assert args["VARIANT"] == "cpu"
    assert "BASE_IMAGE" in args
    names = [i.value.split(" AS ")[-1] for i in dockerfile_instructions() if i.keyword == "FROM"]
    for variant in ("cpu", "cuda"):
        assert {f"build-{variant}", f"runtime-{variant}"} <= set(names)
    assert dockerfile_stages()[-1][0].value == "runtime-${VARIANT} AS runtime"
    cuda_build = next(s for s in dockerfile_stages() if s[0].value.endswith(" AS build-cuda"))
    assert any("-DGGML_CUDA=ON" in i.value for i in cuda_build)


def test_runtime_stage_gets_the_environment_from_the_build_stage_and_no_compilers():
    runtime = dockerfile_stages()[-1]
    copies = [i.value for i in runtime if i.keyword == "COPY" and "--from=" in i.value]
    assert copies == ["--from=build /opt/warmserve /opt/warmserve"]
    installs = " ".join(i.value for i in runtime if i.keyword == "RUN")
    for tool in ("build-essential", "cmake", "python3-dev", "gcc"):
        assert tool not in installs
    assert "rm -rf /var/lib/apt/lists/*" in installs


def test_runs_as_a_non_root_user():
    runtime = dockerfile_stages()[-1]
    [user] = [i.value for i in runtime if i.keyword == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert any(f"--uid {uid}" in i.value for i in runtime if i.keyword == "RUN")


def test_entrypoint_is_exec_form_under_tini_so_sigterm_reaches_the_server():
    runtime = dockerfile_stages()[-1]
    [entrypoint] = [i for i in runtime if i.keyword == "ENTRYPOINT"]
    assert entrypoint.value.startswith("[")  # exec form: no shell between tini and the signal
    command = image_command()
    assert command[:3] == ["/usr/bin/tini", "--", "warmserve"]  # no -g: workers must not get SIGTERM too
    assert [i.value for i in runtime if i.keyword == "STOPSIGNAL"] == ["SIGTERM"]


def test_default_command_serves_the_embedded_model_on_all_interfaces(monkeypatch, tmp_path):
    argv = warmserve_argv(image_command())
    settings = server_settings(argv, image_env(), {}, monkeypatch, tmp_path)
    assert (settings.host, settings.port) == ("0.0.0.0", 8000)
    assert [m.name for m in settings.models] == [EMBEDDED_MODEL_NAME]
    assert [i.value for i in dockerfile_stages()[-1] if i.keyword == "EXPOSE"] == [str(settings.port)]


def test_healthcheck_asks_readiness_on_the_servers_port():
    [healthcheck] = [i for i in dockerfile_stages()[-1] if i.keyword == "HEALTHCHECK"]
    probe = " ".join(healthcheck.exec_form())
    assert "/ready" in probe
    assert "WARMSERVE_PORT" in probe  # the variable the image sets and the server reads
    assert re.search(r"--start-period=\d+s", healthcheck.value)


def test_models_are_baked_from_a_build_argument_or_mounted_on_models():
    args = dockerfile_args()
    assert (ROOT / args["MODELS_DIR"]).is_dir()
    copies = [i.value for i in dockerfile_stages()[-1] if i.keyword == "COPY"]
    assert "--chown=10001:10001 ${MODELS_DIR}/ /models/" in copies
    assert args["EMBED_DEFAULT_MODEL"] == "1"


def test_dockerignore_keeps_what_the_build_copies_and_drops_the_rest():
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in ("", "#")
    ]
    assert not [p for p in patterns if p.startswith("!")]  # plain exclusions: the matching below is exact

    def excluded(path: str) -> bool:
        return any(fnmatch.fnmatch(path, p) or path.startswith(p.rstrip("/") + "/") for p in patterns)

    sources = []
    for instruction in dockerfile_instructions():
        if instruction.keyword == "COPY" and "--from=" not in instruction.value:
            words = [w for w in instruction.value.split() if not w.startswith("--")]
            sources += [w.replace("${MODELS_DIR}", dockerfile_args()["MODELS_DIR"]).rstrip("/") for w in words[:-1]]
    assert sources
    assert not [s for s in sources if excluded(s)]
    for path in sources:
        assert (ROOT / path).exists(), path
    assert excluded(".venv")
    assert excluded(".git")
    assert excluded("tests/e2e/test_real_model.py")
