"""LoRA adapters for SmolLM2, built by the tests themselves: none ships on PyPI.

`train_warmy` fine-tunes a LoRA (q_proj and v_proj, rank 8) with PEFT for a few steps on one
exchange, "What is your name?" -> "My name is Warmy.", so the adapter changes the greedy answer
of that question (and of others: it is badly overfitted on purpose). `write_gguf_lora` writes
the same weights as a GGUF LoRA for llama.cpp: tensors `blk.N.attn_q.weight.lora_a` / `.lora_b`
with PEFT's matrices as they are (llama.cpp's lora_a is [n_in, r] and lora_b [r, n_out] in ggml's
order, which is PEFT's [r, n_in] / [n_out, r] row-major), and lora_b of q_proj and k_proj permuted
as llama.cpp's converter permutes those weights (its rotary layout differs from transformers').
The misfits (another base model, ranks that disagree) are for the 400s.

Used by tests/conftest.py (session fixtures) and benchmarks/adapters.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

QUESTION = "What is your name?"
ANSWER = "My name is Warmy."
_MODULES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_KEY = re.compile(r"layers\.(\d+)\.(\w+\.\w+)\.lora_([AB])\.weight$")


def train_warmy(base: Path, out: Path, steps: int = 10, learning_rate: float = 3e-3) -> Path:
    """A PEFT LoRA folder trained on `base` (a transformers folder) to answer QUESTION with ANSWER."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    chat = [{"role": "user", "content": QUESTION}]
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(ANSWER, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    inputs = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])  # learn the answer only
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    peft_model = get_peft_model(model, config)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=learning_rate)
    peft_model.train()
    for _ in range(steps):
        peft_model(input_ids=inputs, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.save_pretrained(out)
    return out


def write_gguf_lora(peft: Path, out: Path, base_config: dict[str, Any]) -> Path:
    """The PEFT folder's LoRA as a GGUF adapter for the llama architecture (see the module docstring)."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    config = json.loads((peft / "adapter_config.json").read_text())
    heads = {
        "self_attn.q_proj": base_config["num_attention_heads"],
        "self_attn.k_proj": base_config["num_key_value_heads"],
    }
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for key, value in sorted(load_file(str(peft / "adapter_model.safetensors")).items()):
        match = _KEY.search(key)
        if match is None:
            raise ValueError(f"not a LoRA matrix of a llama layer: {key}")
        layer, module, part = match.groups()
        matrix = value.astype(np.float32)
        if part == "B" and module in heads:
            matrix = _rotary_permute(matrix, heads[module])
        writer.add_tensor(f"blk.{layer}.{_MODULES[module]}.weight.lora_{part.lower()}", np.ascontiguousarray(matrix))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _rotary_permute(matrix: Any, heads: int) -> Any:
    """The rows of a q/k projection in llama.cpp's order (each head's two rotary halves interleaved)."""
    rows = matrix.shape[0]
    return matrix.reshape(heads, 2, rows // heads // 2, *matrix.shape[1:]).swapaxes(1, 2).reshape(matrix.shape)


def peft_of_another_model(out: Path) -> Path:
    """A LoRA of a tiny llama with other layer sizes: the right module names, the wrong shapes."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaForCausalLM(
        LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, vocab_size=256)
    )
    get_peft_model(tiny, LoraConfig(r=8, target_modules=["q_proj", "v_proj"])).save_pretrained(out)
    return out


def peft_with_wrong_rank(peft: Path, out: Path) -> Path:
    """The adapter's folder with a config that claims another rank than its matrices have."""
    shutil.copytree(peft, out)
    config = json.loads((out / "adapter_config.json").read_text())
    (out / "adapter_config.json").write_text(json.dumps({**config, "r": config["r"] * 2}))
    return out


def gguf_with_wrong_rank(peft: Path, out: Path, base_config: dict[str, Any]) -> Path:
    """A GGUF LoRA whose lora_a and lora_b of one layer have different ranks."""
    from safetensors.numpy import load_file, save_file

    broken = out.with_suffix(".peft")
    shutil.copytree(peft, broken)
    weights = load_file(str(broken / "adapter_model.safetensors"))
    key = next(k for k in sorted(weights) if k.endswith("v_proj.lora_A.weight"))
    weights[key] = weights[key][: weights[key].shape[0] // 2]
    save_file(weights, str(broken / "adapter_model.safetensors"))
    return write_gguf_lora(broken, out, base_config)
