"""End to end: a PEFT LoRA adapter on the real SmolLM2 under transformers (adapter_checks.py says what)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import LoraFiles, start_server, write_config
from tests.e2e import adapter_checks as checks
from tests.lora import ANSWER, QUESTION
from warmserve.testing import ServerProcess

pytestmark = pytest.mark.e2e
Reference = Callable[[bool, str], str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lora_files: LoraFiles, hf_cache_dir) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("adapters-hf")
    model = {
        "name": checks.BASE,
        "backend": "transformers",
        "workers": 1,
        "threads": 1,
        "slots": 4,
        "n_ctx": 512,
        "cache_dir": str(hf_cache_dir),
        "adapters": [{"name": checks.ADAPTER, "path": str(lora_files.peft)}],
    }
    server = start_server(["--config", str(write_config(tmp / "warmserve.yaml", {"models": [model]}))], tmp)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def in_process(lora_files: LoraFiles) -> Reference:
    """PEFT in this process: the base model with the adapter applied (or disabled), greedy `generate`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lora_files.base)
    base = AutoModelForCausalLM.from_pretrained(lora_files.base, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(lora_files.peft)).eval()

    def answer(with_adapter: bool, question: str) -> str:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad(), contextlib.nullcontext() if with_adapter else model.disable_adapter():
            out = model.generate(input_ids=ids, max_new_tokens=12, do_sample=False)
        return str(tokenizer.decode(out[0][ids.shape[1] :], skip_special_tokens=True))

    return answer


def test_the_adapter_changes_the_answer_as_peft_in_process_does(client, in_process: Reference):
    adapter, base = checks.ask(client, checks.ADAPTER), checks.ask(client, checks.BASE)
    assert adapter.startswith(ANSWER.removesuffix("."))
    assert adapter != base
    assert adapter == in_process(True, QUESTION)
    assert base == in_process(False, QUESTION)
    assert checks.ask(client, checks.ADAPTER, checks.OTHER_QUESTION) == in_process(True, checks.OTHER_QUESTION)


def test_the_adapter_is_a_model_id_whose_parent_is_the_base(client):
    checks.check_listed_with_its_parent(client)


def test_base_and_adapter_requests_in_flight_at_once_each_get_their_own_answer(client):
    checks.check_in_flight_together(client)


def test_an_adapter_added_at_run_time_is_201_usable_then_removed(server, client, lora_files):
    checks.check_added_at_run_time_then_removed(server, client, lora_files.peft)


def test_a_bad_adapter_is_a_400_naming_it_and_the_model_serves_on(server, client, lora_files, tmp_path):
    bad = {
        "missing": tmp_path / "missing",
        "other-model": lora_files.peft_other_model,
        "wrong-rank": lora_files.peft_wrong_rank,
        "a-gguf": lora_files.gguf,  # llama.cpp's form, not a PEFT folder
    }
    checks.check_bad_adapters_are_400s_naming_them(server, client, bad)


def test_the_base_models_embeddings_are_its_own_with_adapters_loaded(lora_files, hf_cache_dir):
    """PEFT puts the LoRA layers into the model itself; embeddings, which call its body directly, must not see them."""
    import numpy as np

    from warmserve.adapters import AdapterSpec
    from warmserve.backends.hf.engine import TransformersEngine
    from warmserve.config import ModelSpec
    from warmserve.embedding import EmbedRequest, unpack_vector

    engine = TransformersEngine(ModelSpec(backend="transformers", threads=1, cache_dir=str(hf_cache_dir)), 0)
    try:
        request = EmbedRequest((QUESTION,))
        before = unpack_vector(engine.embed(request).vectors[0])
        engine.add_adapter(AdapterSpec(name=checks.ADAPTER, path=str(lora_files.peft)))
        after = unpack_vector(engine.embed(request).vectors[0])
        assert np.allclose(before, after, atol=1e-6)
    finally:
        engine.close()
