"""README's Deploy section: every command in it works against the files as they are.

Build arguments exist in the Dockerfile, images run are images built, published ports stay on
loopback, arguments after the image parse with warmserve's own parser, the image's default
command is the one README names, compose profiles exist, and kustomize paths are the overlays
the other tests render and validate.
"""

from __future__ import annotations

import re
import shlex
from importlib.metadata import metadata

import yaml

from tests.deploy.files import (
    COMPOSE_FILE,
    OVERLAYS,
    ROOT,
    compose_config,
    dockerfile_args,
    image_command,
    image_env,
    warmserve_argv,
)
from warmserve.cli import build_parser


def deploy_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Deploy\n", 1)[1].split("\n## ", 1)[0]


def deploy_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", deploy_section(), flags=re.DOTALL)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if shlex.split(line, comments=True)]


def options(words: list[str], flag: str) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words) if word == flag]


def docker_builds() -> dict[str, dict[str, str]]:
    """Tag -> build arguments of each `docker build` README shows."""
    builds = {}
    for words in deploy_commands():
        if words[:2] == ["docker", "build"]:
            assert words[-1] == "."
            assert (ROOT / "Dockerfile").is_file()
            [tag] = options(words, "-t")
            builds[tag] = dict(arg.split("=", 1) for arg in options(words, "--build-arg"))
    return builds


def test_readme_shows_every_kind_of_deploy_command():
    programs = {tuple(words[:2]) for words in deploy_commands()}
    assert programs == {
        ("docker", "build"),
        ("docker", "run"),
        ("docker", "compose"),
        ("kubectl", "apply"),
        ("helm", "install"),
        (".venv/bin/warmserve", "serve"),
        ("serve", "run"),
    }


def test_docker_builds_use_build_arguments_the_dockerfile_declares():
    declared = dockerfile_args()
    builds = docker_builds()
    assert builds == {
        "warmserve:cpu": {},
        "warmserve:cuda": {"VARIANT": "cuda"},
        "warmserve:ray": {"EXTRAS": "llama,ray"},
    }
    extras = set(metadata("warmserve").get_all("Provides-Extra") or [])
    assert set(builds["warmserve:ray"]["EXTRAS"].split(",")) <= extras
    for arguments in builds.values():
        assert set(arguments) <= set(declared)
    documented = re.findall(r"`([A-Z_]+)=", deploy_section()) + re.findall(r"`([A-Z_]+_IMAGE)`", deploy_section())
    assert set(documented) - {"WARMSERVE_HOST", "WARMSERVE_PORT"} <= set(declared)


def test_the_images_default_command_is_the_one_readme_names():
    assert f"`warmserve {' '.join(warmserve_argv(image_command()))}`" in deploy_section()


def test_docker_runs_publish_on_loopback_and_pass_arguments_warmserve_accepts():
    runs = [words for words in deploy_commands() if words[:2] == ["docker", "run"]]
    assert len(runs) >= 2
    built = docker_builds()
    for words in runs:
        [image] = [w for w in words if w in built]
        for publish in options(words, "-p"):
            assert publish == f"127.0.0.1:{image_env()['WARMSERVE_PORT']}:{image_env()['WARMSERVE_PORT']}"
        for volume in options(words, "-v"):
            assert volume.split(":")[1] == "/models"
        arguments = words[words.index(image) + 1 :]
        if arguments:
            build_parser().parse_args(arguments)  # exits (fails the test) on a flag warmserve lacks


def test_compose_commands_use_its_profiles_and_the_image_readme_builds():
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    profiles = {p for service in services.values() for p in service.get("profiles", [])}
    compose = [words for words in deploy_commands() if words[:2] == ["docker", "compose"]]
    assert compose
    for words in compose:
        assert set(options(words, "--profile")) <= profiles
    assert compose_config()["services"]["warmserve"]["image"] in docker_builds()


def test_kubectl_applies_the_overlays_and_the_rayservice_the_tests_validate():
    applied = [words for words in deploy_commands() if words[:2] == ["kubectl", "apply"]]
    assert sorted(ROOT / path for words in applied for path in options(words, "-k")) == OVERLAYS
    [rayservice] = [ROOT / path for words in applied for path in options(words, "-f")]
    assert rayservice == ROOT / "deploy" / "ray" / "rayservice.yaml"
    [container] = yaml.safe_load(rayservice.read_text())["spec"]["rayClusterConfig"]["headGroupSpec"]["template"][
        "spec"
    ]["containers"]
    assert container["image"] in docker_builds()


def test_ray_commands_use_the_serve_config_and_flags_warmserve_accepts():
    [serve_run] = [words for words in deploy_commands() if words[:2] == ["serve", "run"]]
    assert (ROOT / serve_run[2]).is_file()
    [warmserve] = [words for words in deploy_commands() if words[0].endswith("warmserve")]
    args = build_parser().parse_args(warmserve[1:])
    assert getattr(args, "server.ray_address") == "auto"


def test_helm_values_files_exist():
    values = [options(words, "-f") for words in deploy_commands() if words[0] == "helm"]
    assert values
    for paths in values:
        assert paths
        assert all((ROOT / path).is_file() for path in paths)
