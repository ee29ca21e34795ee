"""End to end: a GGUF LoRA adapter on the real SmolLM2 under llama.cpp (adapter_checks.py says what)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import llama_cpp
import pytest

from tests.conftest import LoraFiles, start_server, write_config
from tests.e2e import adapter_checks as checks
from tests.lora import ANSWER, QUESTION
from warmserve.config import ModelSpec, embedded_model_path
from warmserve.testing import ServerProcess

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lora_files: LoraFiles) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("adapters-llama")
    model = {
        "name": checks.BASE,
        "workers": 1,
        "threads": 1,
        "slots": 4,
        "n_ctx": 512,
        "adapters": [{"name": checks.ADAPTER, "path": str(lora_files.gguf)}],
    }
    server = start_server(["--config", str(write_config(tmp / "warmserve.yaml", {"models": [model]}))], tmp)
    yield server
    server.stop()


def in_process(lora_path: str | None, question: str) -> str:
    """llama-cpp-python with the adapter applied (`lora_path`), flash attention on as the server has it."""
    llama = llama_cpp.Llama(
        model_path=str(embedded_model_path()),
        lora_path=lora_path,
        n_ctx=512,
        n_threads=1,
        flash_attn=True,
        verbose=False,
    )
    answer = llama.create_chat_completion([{"role": "user", "content": question}], temperature=0, max_tokens=12)
    return answer["choices"][0]["message"]["content"] or ""


def test_the_adapter_changes_the_answer_as_llama_cpp_python_with_lora_path_does(client, lora_files):
    adapter, base = checks.ask(client, checks.ADAPTER), checks.ask(client, checks.BASE)
    assert adapter.startswith(ANSWER.removesuffix("."))
    assert adapter != base
    assert adapter == in_process(str(lora_files.gguf), QUESTION)
    assert base == in_process(None, QUESTION)
    other = checks.ask(client, checks.ADAPTER, checks.OTHER_QUESTION)
    assert other == in_process(str(lora_files.gguf), checks.OTHER_QUESTION)


def test_the_adapter_is_a_model_id_whose_parent_is_the_base(client):
    checks.check_listed_with_its_parent(client)


def test_base_and_adapter_requests_in_flight_at_once_each_get_their_own_answer(client):
    checks.check_in_flight_together(client)


def test_an_adapter_added_at_run_time_is_201_usable_then_removed(server, client, lora_files):
    checks.check_added_at_run_time_then_removed(server, client, lora_files.gguf)


def test_a_bad_adapter_is_a_400_naming_it_and_the_model_serves_on(server, client, lora_files, tmp_path):
    bad = {
        "missing": tmp_path / "missing.gguf",
        "other-model": lora_files.gguf_other_model,
        "wrong-rank": lora_files.gguf_wrong_rank,
        "not-a-lora": embedded_model_path(),  # a model, not an adapter
    }
    checks.check_bad_adapters_are_400s_naming_them(server, client, bad)


def test_the_400_says_what_llama_cpp_found_wrong(server, lora_files):
    body = {"name": "other-model", "path": str(lora_files.gguf_other_model)}
    refused = httpx.post(f"{server.base_url}/admin/models/{checks.BASE}/adapters", json=body, timeout=60).json()
    assert "incorrect shape" in refused["error"]["message"]


def test_each_adapters_sequences_keep_consecutive_ids_so_each_batch_is_one_pass(lora_files):
    """Requests on two adapters arriving in turn get slots 0, 1 and 2, 3 (a batch of ids 0 and 2 costs two passes)."""
    from warmserve.adapters import AdapterSpec
    from warmserve.backends.llama.engine import LlamaCppEngine
    from warmserve.generation import GenerationRequest, SamplingParams

    engine = LlamaCppEngine(ModelSpec(threads=1, n_ctx=256, slots=4))
    try:
        for name in ("a", "b"):
            engine.add_adapter(AdapterSpec(name=name, path=str(lora_files.gguf)))
        for index, adapter in enumerate(["a", "b", "a", "b"]):
            request = GenerationRequest(
                prompt=f"{index}. Hello", sampling=SamplingParams(max_tokens=2), adapter=adapter
            )
            engine.add(f"r{index}", request)
        layout = [slot.adapter for slot in engine._slots]
        assert layout in (["a", "a", "b", "b"], ["b", "b", "a", "a"])
        while engine.running:
            engine.step()
    finally:
        engine.close()
