"""An old GGJT v3 LLaMA file, converted, computes in llama.cpp exactly what the same weights written
directly as GGUF compute; `warmserve convert` converts it alone, and `warmserve serve` serves it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gguf
import httpx
import numpy as np
import pytest

from tests.conftest import start_server
from tests.ggml_model import TinyLlama, write_ggjt, write_gguf
from warmserve.backends.llama import native
from warmserve.backends.llama.ggml.cache import converted
from warmserve.backends.llama.ggml.convert import ConversionOptions
from warmserve.errors import ModelFileError
from warmserve.testing import ServerProcess, free_port, server_environment

pytestmark = pytest.mark.e2e

PROMPT = "Q: Tell me about the rose flower? A:"
LLAMA_2_CHAT = Path(__file__).parents[2] / "examples" / "llama-2-chat.jinja"
STEPS = 16


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The stand-in GGJT v3 file and the GGUF a direct writer makes of the same weights."""
    folder = tmp_path_factory.mktemp("ggml")
    model = TinyLlama(seed=7)
    return write_ggjt(model, folder / "tiny.ggmlv3.q8_0.bin"), write_gguf(model, folder / "direct.gguf", 2048)


def greedy(path: Path, prompt: str = PROMPT, steps: int = STEPS) -> tuple[list[int], np.ndarray, str]:
    """Greedy tokens from llama.cpp, the logits of every step, and the text they spell."""
    model = native.load(path, n_ctx=256, n_batch=64, sequences=1, threads=1, gpu_layers=0, flash_attn="off")
    batch = native.Batch(64)
    try:
        tokens = model.vocab.tokenize(prompt, True)
        for position, token in enumerate(tokens):
            row = batch.add(token, position, 0, logits=position == len(tokens) - 1)
        drawn: list[int] = []
        logits = []
        for position in range(len(tokens), len(tokens) + steps):
            model.decode(batch)
            logits.append(model.logits(row).copy())
            drawn.append(int(np.argmax(logits[-1])))
            batch.clear()
            row = batch.add(drawn[-1], position, 0, logits=True)
        text = b"".join(model.vocab.piece(token) for token in drawn).decode("utf-8", errors="replace")
        return drawn, np.array(logits), text
    finally:
        batch.free()
        model.close()


def test_the_converted_file_computes_what_the_direct_gguf_computes(files, tmp_path):
    ggjt, direct = files
    ours = converted(ggjt, tmp_path / "cache", ConversionOptions())
    our_tokens, our_logits, _ = greedy(ours)
    their_tokens, their_logits, _ = greedy(direct)
    assert our_tokens == their_tokens
    assert np.array_equal(our_logits, their_logits)
    assert len(set(our_tokens)) > 1  # the stand-in says something, not one token again and again


def _convert(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmserve", "convert", *args], capture_output=True, text=True, timeout=120
    )


def test_warmserve_convert_converts_into_the_cache_once_or_to_a_chosen_file(files, tmp_path):
    ggjt, direct = files
    cache = tmp_path / "cache"
    first = _convert(str(ggjt), "--cache-dir", str(cache))
    assert first.returncode == 0, first.stderr
    made = Path(first.stdout.strip())
    assert made.parent == cache / "converted"
    assert "converting" in first.stderr
    again = _convert(str(ggjt), "--cache-dir", str(cache))
    assert (again.returncode, again.stdout.strip(), "converting" in again.stderr) == (0, str(made), False)
    chosen = _convert(str(ggjt), "--output", str(tmp_path / "tiny.gguf"), "--context-length", "2048")
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "tiny.gguf").read_bytes() == made.read_bytes()
    assert greedy(tmp_path / "tiny.gguf")[0] == greedy(direct)[0]


def test_warmserve_convert_says_in_one_line_why_a_file_cannot_be_converted(files, tmp_path):
    old = write_ggjt(TinyLlama(), tmp_path / "old.ggmlv2.bin", version=2)
    done = _convert(str(old), "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "Q8_0 in the block layout used before GGJT v3" in lines[0]
    assert "Traceback" not in done.stderr
    already = _convert(str(files[1]))
    assert (already.returncode, "nothing to convert" in already.stdout) == (0, True)


@pytest.fixture(scope="module")
def server(files, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`warmserve serve --model tiny.ggmlv3.q8_0.bin`, two workers converting it at the same moment."""
    tmp = tmp_path_factory.mktemp("ggml-server")
    args = [
        "--model",
        str(files[0]),
        "--served-model-name",
        "tiny",
        "--cache-dir",
        str(tmp / "cache"),
        "--workers",
        "2",
        "--threads",
        "1",
    ]
    server = start_server([*args, "--n-ctx", "256", "--flash-attn", "off", "--chat-template", str(LLAMA_2_CHAT)], tmp)
    yield server
    server.stop()


def test_serve_answers_from_the_old_file_as_from_the_direct_gguf(files, server):
    completion = server.openai_client().completions.create(model="tiny", prompt=PROMPT, max_tokens=STEPS, temperature=0)
    assert completion.choices[0].text == greedy(files[1])[2]
    assert completion.usage.completion_tokens == STEPS
    log = server.log_path.read_text()
    assert log.count("converting ") == 1  # two workers, one conversion


def test_a_chat_uses_the_llama_2_template_given_beside_the_old_file(server):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about the rose"}]
    chat = httpx.post(f"{server.openai_base_url}/tokenize", json={"model": "tiny", "messages": messages}).json()
    prompt = "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nTell me about the rose [/INST]"
    plain = httpx.post(f"{server.openai_base_url}/tokenize", json={"model": "tiny", "prompt": prompt}).json()
    assert chat["tokens"] == plain["tokens"]
    assert chat["tokens"][0] == 1  # one <s>, from the template
    answer = server.openai_client().chat.completions.create(model="tiny", messages=messages, max_tokens=4)
    assert answer.usage.prompt_tokens == chat["count"]


def test_serving_only_a_file_that_cannot_be_converted_exits_1_at_once_with_one_line(tmp_path):
    old = write_ggjt(TinyLlama(), tmp_path / "old.ggmlv2.bin", version=2)
    args = ["--model", str(old), "--workers", "2", "--threads", "1", "--port", str(free_port())]
    done = subprocess.run(
        [sys.executable, "-m", "warmserve", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=server_environment({"XDG_DATA_HOME": str(tmp_path)}),
    )
    assert done.returncode == 1
    log = done.stdout + done.stderr
    reason = [line for line in log.splitlines() if "block layout used before GGJT v3" in line]
    assert len(reason) == 1, log  # two workers, one report
    assert "ERROR" in reason[0]
    assert str(old) in reason[0]
    assert "Get a GGUF" in reason[0]
    assert "Traceback" not in log
    assert "restarting" not in log
    assert "no model can be served" in log


def test_llama_cpp_refusing_a_gguf_is_a_permanent_error_saying_why(files, tmp_path):
    writer = gguf.GGUFWriter(str(tmp_path / "other.gguf"), "no-such-architecture")
    writer.add_tensor("x", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelFileError, match=r"unknown model architecture: 'no-such-architecture'.*upgrade"):
        native.load(
            tmp_path / "other.gguf", n_ctx=64, n_batch=8, sequences=1, threads=1, gpu_layers=0, flash_attn="off"
        )
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(files[1].read_bytes()[:-4096])
    with pytest.raises(ModelFileError, match=r"not within the file bounds.*download it again"):
        native.load(truncated, n_ctx=64, n_batch=8, sequences=1, threads=1, gpu_layers=0, flash_attn="off")
