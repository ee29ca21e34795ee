"""`warmserve bench` flags come from BenchSettings, like `serve`'s come from the server settings."""

import pytest
from pydantic import ValidationError

from warmserve.bench.settings import BenchSettings
from warmserve.cli import build_parser, main


def test_list_and_on_off_flags_parse_into_the_settings():
    args = vars(build_parser().parse_args(["bench", "--concurrency", "8,1,2", "--no-stream", "--endpoint", "chat"]))
    settings = BenchSettings(**{k.removeprefix("bench."): v for k, v in args.items() if k.startswith("bench.")})
    assert settings.concurrency == [1, 2, 8]
    assert settings.stream is False
    assert settings.endpoint == "chat"


def test_the_api_key_can_come_from_the_environment_and_stays_out_of_dumps(monkeypatch):
    monkeypatch.setenv("WARMSERVE_BENCH_API_KEY", "sk-secret")
    settings = BenchSettings()
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "sk-secret"
    assert "sk-secret" not in repr(settings)


def test_out_of_bounds_values_are_refused():
    with pytest.raises(ValidationError, match="concurrency"):
        BenchSettings(concurrency=[0])
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "--requests", "0"])
    assert exit_info.value.code == 2
