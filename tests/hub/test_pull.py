"""`warmserve pull` against the fake hub: download, verify, resume, authenticate, work offline, fail clearly."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.hub.conftest import SMOL, SMOL_FILE, SPLIT, SPLIT_FILES, pull
from tests.hub.fake_hub import FakeHub
from warmserve.config import embedded_model_path

SMOL_SHA256 = hashlib.sha256(embedded_model_path().read_bytes()).hexdigest()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def downloaded(result_stdout: str) -> Path:
    return Path(result_stdout.strip().splitlines()[-1])


def test_pull_downloads_the_quant_into_the_hub_cache_once(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull(f"{SMOL}:q4_1", env=hub_env)
    assert result.returncode == 0, result.stderr
    path = downloaded(result.stdout)
    assert path.is_relative_to(hub_env["HF_HUB_CACHE"])
    assert path.name == SMOL_FILE
    assert sha256(path) == SMOL_SHA256
    assert [r.path for r in fake_hub.seen("GET", "/resolve/")] == [f"/{SMOL}/resolve/main/{SMOL_FILE}"]

    again = pull(f"{SMOL}:Q4_1", env=hub_env)
    assert again.returncode == 0, again.stderr
    assert downloaded(again.stdout) == path
    assert len(fake_hub.seen("GET", "/resolve/")) == 1  # found in the cache: not downloaded twice


def test_a_connection_cut_halfway_is_resumed_with_a_range_request(fake_hub: FakeHub, hub_env: dict[str, str]):
    fake_hub.cut_once = {SMOL_FILE}
    result = pull(f"{SMOL}:Q4_1", env=hub_env)
    assert result.returncode == 0, result.stderr
    first, second = fake_hub.seen("GET", SMOL_FILE)
    assert "range" not in first.headers
    resumed_at = int(second.headers["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= embedded_model_path().stat().st_size // 2
    assert sha256(downloaded(result.stdout)) == SMOL_SHA256


def test_hf_token_goes_to_the_hub_as_a_bearer_token(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull(f"{SMOL}:Q4_1", env={**hub_env, "HF_TOKEN": "hf_secret"})
    assert result.returncode == 0, result.stderr
    ours = [r for r in fake_hub.requests if r.path.startswith(("/api/models/", f"/{SMOL}/"))]
    assert {r.method for r in ours} == {"GET", "HEAD"}
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in ours)


def test_without_a_token_none_is_sent(fake_hub: FakeHub, hub_env: dict[str, str]):
    assert pull(f"{SMOL}:Q4_1", env=hub_env).returncode == 0
    assert not any("authorization" in r.headers for r in fake_hub.requests)


def test_a_wrong_quant_fails_listing_the_quants_the_repo_has(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull(f"{SMOL}:Q5_K_M", env=hub_env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"warmserve pull: {SMOL} has no GGUF model of quant Q5_K_M; its quants: Q4_1, Q8_0. Name one, e.g. {SMOL}:Q4_1."
    ]
    assert not fake_hub.seen("GET", "/resolve/")


def test_an_unknown_repo_fails_saying_so(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull("owner/absent-GGUF:Q4_1", env=hub_env)
    assert result.returncode == 1
    assert "has no repo owner/absent-GGUF" in result.stderr


def test_offline_with_nothing_cached_says_what_to_run(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull(f"{SMOL}:Q4_1", env={**hub_env, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert f"{SMOL}:Q4_1 is not in the local Hugging Face cache" in line
    assert f"run `warmserve pull {SMOL}:Q4_1`" in line
    assert not [r for r in fake_hub.requests if SMOL in r.path]


def test_a_cached_model_is_found_with_the_hub_stopped_or_offline(fake_hub: FakeHub, hub_env: dict[str, str]):
    path = downloaded(pull(f"{SMOL}:Q4_1", env=hub_env).stdout)
    fake_hub.stop()
    unreachable = pull(f"{SMOL}:Q4_1", env=hub_env)
    assert unreachable.returncode == 0, unreachable.stderr
    assert downloaded(unreachable.stdout) == path
    assert "cannot be reached" in unreachable.stderr
    offline = pull(f"{SMOL}:Q4_1", env={**hub_env, "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 0, offline.stderr
    assert downloaded(offline.stdout) == path


def test_offline_a_quant_not_cached_lists_the_cached_ones(fake_hub: FakeHub, hub_env: dict[str, str]):
    assert pull(f"{SMOL}:Q4_1", env=hub_env).returncode == 0
    result = pull(f"{SMOL}:Q8_0", env={**hub_env, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 1
    assert "in the local cache has no GGUF model of quant Q8_0; its quants: Q4_1" in result.stderr
    assert f"run `warmserve pull {SMOL}:Q8_0`" in result.stderr


def test_a_file_that_does_not_match_the_listed_sha256_leaves_the_cache(fake_hub: FakeHub, hub_env: dict[str, str]):
    fake_hub.wrong_sha256 = {SMOL_FILE}
    result = pull(f"{SMOL}:Q4_1", env=hub_env)
    assert result.returncode == 1
    assert f"{SMOL_FILE} from {SMOL} did not verify (sha256 {SMOL_SHA256} where the hub lists {'0' * 64})" in (
        result.stderr
    )
    cache = Path(hub_env["HF_HUB_CACHE"])
    assert not [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > 1_000_000]


def test_a_split_model_downloads_every_part_beside_the_first(fake_hub: FakeHub, hub_env: dict[str, str]):
    result = pull(f"{SPLIT}:Q4_1", env=hub_env)
    assert result.returncode == 0, result.stderr
    first = downloaded(result.stdout)
    assert first.as_posix().endswith(SPLIT_FILES[0])
    assert [p.name for p in sorted(first.parent.iterdir())] == [Path(name).name for name in SPLIT_FILES]
    assert len(fake_hub.seen("GET", "/resolve/")) == 3
