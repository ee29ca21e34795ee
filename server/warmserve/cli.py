"""`warmserve serve | models | pull | bench | convert`: argument parsing only.

Flags are generated from the settings models (ServerSettings and ModelSpec; BenchSettings
for `bench`; GgmlOptions for `convert`), so each flag has the same description, type and
bounds as its config-file key and `WARMSERVE_*` variable. Model flags describe one model and
replace the file's list. `pull` takes the model's path and revision under the same names
(`--model` is its argument).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic.fields import FieldInfo

from warmserve import __version__
from warmserve.bench.settings import BenchSettings
from warmserve.config import ModelSpec, ServerSettings, load_settings
from warmserve.errors import WarmServeError
from warmserve.model_options import GgmlOptions

# Flags whose names users know from other servers rather than from our field names.
_FLAG_NAMES = {
    "path": "--model",
    "name": "--served-model-name",
    "api_keys": "--api-key",
    "admin_api_keys": "--admin-api-key",
    "cors_origins": "--cors-origin",
    "ray_address": "--ray",
    "adapters": "--adapter",
}
_NOT_FLAGS = {"models", "fake", "reasoning"}


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def _flag_type(annotation: Any) -> tuple[Any, list[Any] | None]:
    """argparse `type` and `choices` for a simple field annotation."""
    annotation = _without_none(annotation)
    if typing.get_origin(annotation) is Literal:
        choices = list(typing.get_args(annotation))
        return type(choices[0]), choices
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):  # a nested block, as JSON
        return _json_object, None
    if typing.get_origin(annotation) is list:
        [item] = typing.get_args(annotation)
        item_type = typing.get_args(item)[0] if typing.get_origin(item) is typing.Annotated else item
        if typing.get_origin(item_type) is Literal:  # pydantic checks the values
            item_type = type(typing.get_args(item_type)[0])
        if isinstance(item_type, type) and issubclass(item_type, BaseModel):  # its own short form (NAME=PATH)
            item_type = str
        return _comma_list(item_type), None
    return annotation, None


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(text)
    return value


_json_object.__name__ = "JSON object"  # argparse names it in errors


def _comma_list(item_type: Any) -> Any:
    def parse(text: str) -> list[Any]:
        return [item_type(part) for part in text.split(",") if part.strip()]

    parse.__name__ = f"comma-separated {item_type.__name__}"  # argparse names it in errors
    return parse


def _add_flags(parser: argparse._ActionsContainer, model: type[BaseModel], dest_prefix: str) -> None:
    for name, field in model.model_fields.items():
        if name in _NOT_FLAGS:
            continue
        flags = [_FLAG_NAMES.get(name, _flag(name)), *_old_flags(name, field)]
        common: dict[str, Any] = {
            "dest": dest_prefix + name,
            "default": argparse.SUPPRESS,
            "help": _help(field),
        }
        flag_type, choices = _flag_type(field.annotation)
        if flag_type is bool:
            parser.add_argument(*flags, action=argparse.BooleanOptionalAction, **common)
            continue
        if typing.get_origin(_without_none(field.annotation)) is list:  # comma-separated, and the flag may repeat
            common["help"] += " Comma-separated; the flag may repeat."
            parser.add_argument(*flags, type=flag_type, action="extend", metavar=name.upper(), **common)
            continue
        metavar = "JSON" if flag_type is _json_object else None if choices else name.upper()
        parser.add_argument(*flags, type=flag_type, choices=choices, metavar=metavar, **common)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _old_flags(name: str, field: FieldInfo) -> list[str]:
    """A field's other accepted names (`AliasChoices`), as flags too: old names keep working everywhere."""
    alias = field.validation_alias
    choices = alias.choices if isinstance(alias, AliasChoices) else []
    return [_flag(choice) for choice in choices if isinstance(choice, str) and choice != name]


def _help(field: FieldInfo) -> str:
    default = field.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = ",".join(str(item) for item in default)
    if isinstance(default, BaseModel):  # a block of unset options
        default = None
    suffix = f" (default: {default})" if default not in (None, "") else ""
    return (field.description or "") + suffix


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warmserve", description="OpenAI-compatible server that keeps models warm in worker processes."
    )
    parser.add_argument("--version", action="version", version=f"warmserve {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command, help_text in (
        ("serve", "Start the OpenAI-compatible server."),
        ("models", "Show the models the settings would serve, and exit."),
    ):
        sub = commands.add_parser(command, help=help_text, description=help_text, allow_abbrev=False)
        sub.add_argument("--config", type=Path, help="YAML settings file (keys as below, models as a list).")
        server = sub.add_argument_group("server")
        _add_flags(server, ServerSettings, "server.")
        model = sub.add_argument_group("model (one model; replaces the config file's list)")
        _add_flags(model, ModelSpec, "model.")
    pull_help = "Download a model from the Hugging Face hub into its local cache, print its path, and exit."
    pull = commands.add_parser("pull", help=pull_help, description=pull_help)
    pull.add_argument("model", metavar="MODEL", help="owner/repo:QUANT, owner/repo/file.gguf or owner/repo.")
    pull.add_argument("--revision", help="Branch, tag or commit (default: main).")
    pull.add_argument(
        "--backend",
        choices=["llama_cpp", "transformers"],
        default="llama_cpp",
        help="llama_cpp: a GGUF model (default); transformers: owner/repo is the whole repo's folder.",
    )
    bench_help = "Measure an OpenAI-compatible server under rising concurrency (exit 1 if a request failed)."
    bench = commands.add_parser("bench", help=bench_help, description=bench_help)
    _add_flags(bench, BenchSettings, "bench.")
    convert_help = (
        "Convert an old llama.cpp model file (GGML, GGMF, GGJT) to GGUF without serving it: into --cache-dir, "
        "where `serve` finds it, or to --output."
    )
    convert = commands.add_parser("convert", help=convert_help, description=convert_help)
    convert.add_argument("model", type=Path, help="The old model file, e.g. llama-2-7b-chat.ggmlv3.q4_K_S.bin.")
    convert.add_argument("--output", "-o", type=Path, help="Write the GGUF file here instead of into the cache.")
    convert.add_argument("--cache-dir", type=Path, default=None, help=_help(ModelSpec.model_fields["cache_dir"]))
    _add_flags(convert, GgmlOptions, "ggml.")
    return parser


def _prefixed(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in vars(args).items() if k.startswith(prefix)}


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    server = _prefixed(args, "server.")
    model = _prefixed(args, "model.")
    if model:
        server["models"] = [ModelSpec(**model)]
    return load_settings(args.config, **server)


def _print_models(settings: ServerSettings) -> None:
    header = ("NAME", "BACKEND", "WORKERS", "THREADS", "N_CTX", "GPU_LAYERS", "PATH", "ADAPTERS")
    rows = [
        (
            m.name,
            m.backend,
            str(m.workers),
            str(m.effective_threads()),
            str(m.n_ctx),
            str(m.n_gpu_layers),
            m.path or "(embedded SmolLM2-135M-Instruct)",
            ",".join(a.name for a in m.adapters),
        )
        for m in settings.models
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _serve(settings: ServerSettings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("warmserve").info(
        "serving %s on http://%s:%d/v1",
        ", ".join(m.name for m in settings.models),
        settings.host,
        settings.port,
    )
    if settings.ray_address:
        from warmserve.ray_serve import run_on_ray

        run_on_ray(settings)
        return 0
    from warmserve.api.serving import run

    return run(settings)


def _bench(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from warmserve.bench.runner import run_bench

    try:
        settings = BenchSettings(**_prefixed(args, "bench."))
    except ValidationError as exc:
        parser.exit(2, f"warmserve bench: invalid settings:\n{exc}\n")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("warmserve").setLevel(logging.INFO)  # progress per level, not httpx per request
    return run_bench(settings)


def _pull(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from warmserve import hub

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("warmserve").setLevel(logging.INFO)
    try:
        spec = ModelSpec(backend=args.backend, path=args.model, revision=args.revision)
    except ValidationError as exc:
        parser.exit(2, f"warmserve pull: invalid model:\n{exc}\n")
    reference = spec.hub_reference()
    try:
        if reference is not None:
            path = hub.fetch(reference, args.revision)
        elif args.backend == "transformers" and hub.looks_like_repo_id(args.model):
            path = hub.snapshot(args.model, args.revision)
        else:
            parser.exit(2, f"warmserve pull: {args.model} is no hub model (owner/repo:QUANT, owner/repo/file.gguf).\n")
    except WarmServeError as exc:
        parser.exit(1, f"warmserve pull: {exc.message}\n")
    print(path)
    return 0


def _check_hub_models(parser: argparse.ArgumentParser, settings: ServerSettings) -> None:
    """Before serving: a hub model the hub lacks (or, offline, the cache) ends the start with one line."""
    from warmserve import hub

    for spec in settings.models:
        reference = spec.hub_reference()
        if reference is None:
            continue
        try:
            hub.check(reference, spec.revision)
        except WarmServeError as exc:
            parser.exit(1, f"warmserve: model {spec.name}: {exc.message}\n")


def _convert(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Exit 1 with the reason on one line when the file cannot be converted."""
    from warmserve.backends.llama.ggml import convert_file
    from warmserve.errors import ModelFileError

    try:
        options = GgmlOptions(**_prefixed(args, "ggml."))
    except ValidationError as exc:
        parser.exit(2, f"warmserve convert: invalid options:\n{exc}\n")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cache_dir = args.cache_dir or Path(ModelSpec.model_fields["cache_dir"].default)
    try:
        converted = convert_file(args.model, cache_dir.expanduser(), options, args.output)
    except (ModelFileError, OSError) as exc:
        print(f"warmserve convert: {exc}", file=sys.stderr)
        return 1
    print(converted or f"{args.model} is a GGUF file already; nothing to convert.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "bench":
        return _bench(parser, args)
    if args.command == "pull":
        return _pull(parser, args)
    if args.command == "convert":
        return _convert(parser, args)
    try:
        settings = settings_from_args(args)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        parser.exit(2, f"warmserve: invalid settings:\n{exc}\n")
    if args.command == "models":
        _print_models(settings)
        return 0
    _check_hub_models(parser, settings)
    return _serve(settings)


if __name__ == "__main__":
    sys.exit(main())
