"""Old llama.cpp files (GGML, GGMF, GGJT) read, refused with the reason, and converted to GGUF once."""

from __future__ import annotations

import multiprocessing
import os
import struct
from pathlib import Path

import gguf
import pytest
from gguf import GGMLQuantizationType as T

from tests.ggml_model import TinyLlama, gguf_tensor_name, write_ggjt, write_gguf
from warmserve.backends.llama.ggml import loadable_gguf
from warmserve.backends.llama.ggml.cache import converted, servable_gguf
from warmserve.backends.llama.ggml.convert import ConversionOptions, gguf_name, llama_shape, sentencepiece_vocab
from warmserve.backends.llama.ggml.read import read_ggml
from warmserve.config import ModelSpec
from warmserve.errors import ModelFileError

DEFAULTS = ConversionOptions()
# What only a converter knows (its own name, where it came from); everything else must be equal.
INFORMATIONAL = {"GGUF.kv_count", "general.name", "general.description", "general.quantization_version"}


@pytest.fixture(scope="module")
def model() -> TinyLlama:
    return TinyLlama()


@pytest.fixture
def ggjt(model: TinyLlama, tmp_path: Path) -> Path:
    return write_ggjt(model, tmp_path / "tiny.ggmlv3.q8_0.bin")


def test_the_header_vocabulary_and_tensor_index_are_read(ggjt: Path, model: TinyLlama):
    read = read_ggml(ggjt)
    assert (read.container, read.version, read.format_name) == ("GGJT", 3, "GGJT v3")
    hp = read.hparams
    assert (hp.n_vocab, hp.n_embd, hp.n_mult, hp.n_head, hp.n_layer, hp.n_rot, hp.ftype) == (301, 64, 32, 4, 2, 16, 7)
    assert len(read.vocab) == model.n_vocab
    assert read.vocab[3 + 10].text == b"\n"
    assert read.vocab[260].text == b" a"
    assert read.vocab[260].score == -1.0
    assert [t.name for t in read.tensors] == list(model.tensors)
    data = ggjt.read_bytes()
    for tensor in read.tensors:
        kind, dims, raw = model.tensors[tensor.name]
        assert (tensor.type_id, tensor.dims) == (int(kind), dims)
        assert tensor.offset % 32 == 0
        assert data[tensor.offset : tensor.offset + tensor.size] == raw


def test_old_tensor_names_map_to_gguf_names():
    assert gguf_name("tok_embeddings.weight") == "token_embd.weight"
    assert gguf_name("norm.weight") == "output_norm.weight"
    assert gguf_name("output.weight") == "output.weight"
    assert gguf_name("layers.11.attention.wq.weight") == "blk.11.attn_q.weight"
    assert gguf_name("layers.0.attention.wo.weight") == "blk.0.attn_output.weight"
    assert gguf_name("layers.3.feed_forward.w1.weight") == "blk.3.ffn_gate.weight"
    assert gguf_name("layers.3.feed_forward.w2.weight") == "blk.3.ffn_down.weight"
    assert gguf_name("layers.3.feed_forward.w3.weight") == "blk.3.ffn_up.weight"
    assert gguf_name("layers.3.attention_norm.weight") == "blk.3.attn_norm.weight"
    assert gguf_name("layers.3.ffn_norm.weight") == "blk.3.ffn_norm.weight"
    assert gguf_name("transformer.wte.weight") is None
    assert gguf_name("layers.1.attention.wq.bias") is None


def test_the_vocabulary_gets_sentencepiece_spelling_back(ggjt: Path, model: TinyLlama):
    texts, scores, types = sentencepiece_vocab(read_ggml(ggjt))
    want_texts, want_scores, want_types = model.sentencepiece_vocab()
    assert [t.decode() for t in texts] == want_texts
    assert (scores, types) == (want_scores, want_types)
    assert texts[:3] == [b"<unk>", b"<s>", b"</s>"]
    assert texts[3 + 0x0A] == b"<0x0A>"
    assert texts[259] == "▁the".encode()


def test_feed_forward_size_and_key_value_heads_come_from_the_tensors(ggjt: Path, model: TinyLlama):
    shape = llama_shape(read_ggml(ggjt), DEFAULTS)
    assert (shape.n_ff, shape.n_head_kv) == (model.n_ff, 2)
    assert (shape.context_length, shape.rms_norm_eps) == (2048, 5e-6)


def test_a_llama_2_file_name_means_4096_tokens_of_context_and_options_win(model: TinyLlama, tmp_path: Path):
    path = write_ggjt(model, tmp_path / "llama-2-7b-chat.ggmlv3.q4_K_S.bin")
    assert llama_shape(read_ggml(path), DEFAULTS).context_length == 4096
    shape = llama_shape(read_ggml(path), ConversionOptions(context_length=1024, rms_norm_eps=1e-5))
    assert (shape.context_length, shape.rms_norm_eps) == (1024, 1e-5)


def test_the_conversion_equals_the_gguf_a_direct_writer_makes(ggjt: Path, model: TinyLlama, tmp_path: Path):
    ours = gguf.GGUFReader(converted(ggjt, tmp_path / "cache", DEFAULTS))
    direct = gguf.GGUFReader(write_gguf(model, tmp_path / "direct.gguf", context_length=2048))
    ours_fields = {k: v.contents() for k, v in ours.fields.items() if k not in INFORMATIONAL}
    assert ours_fields == {k: v.contents() for k, v in direct.fields.items() if k not in INFORMATIONAL}
    assert ours.fields["general.quantization_version"].contents() == 2
    assert [(t.name, t.tensor_type, list(t.shape)) for t in ours.tensors] == [
        (t.name, t.tensor_type, list(t.shape)) for t in direct.tensors
    ]
    for mine, theirs in zip(ours.tensors, direct.tensors, strict=True):
        assert mine.data.tobytes() == theirs.data.tobytes(), mine.name


def test_quantized_blocks_are_copied_byte_for_byte(ggjt: Path, model: TinyLlama, tmp_path: Path):
    ours = gguf.GGUFReader(converted(ggjt, tmp_path / "cache", DEFAULTS))
    kind, _, raw = model.tensors["layers.1.attention.wk.weight"]
    assert kind == T.Q8_0
    tensor = next(t for t in ours.tensors if t.name == gguf_tensor_name("layers.1.attention.wk.weight"))
    assert tensor.tensor_type == T.Q8_0
    assert tensor.data.tobytes() == raw


def test_older_containers_convert_when_their_tensors_are_unquantized(tmp_path: Path):
    f16 = TinyLlama(quantized=T.F16)
    for container, version in (("GGMF", 1), ("GGJT", 1), ("GGJT", 2)):
        path = write_ggjt(f16, tmp_path / f"{container}{version}.bin", version=version, container=container)
        reader = gguf.GGUFReader(converted(path, tmp_path / "cache", DEFAULTS))
        assert len(reader.tensors) == len(f16.tensors)
        assert reader.fields["general.description"].contents() == f"converted by warmserve from {container} v{version}"


def test_ggjt_v2_q5_blocks_are_todays_and_convert(tmp_path: Path):
    path = write_ggjt(TinyLlama(quantized=T.Q5_0), tmp_path / "q5.bin", version=2)
    assert converted(path, tmp_path / "cache", DEFAULTS).is_file()


@pytest.mark.parametrize(
    ("version", "container", "quantized", "says"),
    [
        (2, "GGJT", T.Q8_0, "Q8_0 in the block layout used before GGJT v3"),
        (2, "GGJT", T.Q4_0, "Q4_0 in the block layout used before GGJT v3"),
        (1, "GGJT", T.Q5_0, "Q5_0 in the block layout used before GGJT v2"),
        (1, "GGMF", T.Q4_1, "GGMF v1 file and its tensor 'output.weight' is Q4_1"),
    ],
)
def test_quantized_blocks_of_an_older_layout_are_refused_naming_the_tensor(
    version, container, quantized, says, tmp_path
):
    path = write_ggjt(TinyLlama(quantized=quantized), tmp_path / "old.bin", version=version, container=container)
    with pytest.raises(ModelFileError, match=says) as raised:
        servable_gguf(path, tmp_path / "cache", DEFAULTS)
    assert str(path) in raised.value.message
    assert "Get a GGUF" in raised.value.message
    assert raised.value.permanent
    assert not list((tmp_path / "cache" / "converted").glob("*.gguf"))


def test_unversioned_ggml_has_no_scores_and_is_refused(tmp_path: Path):
    path = write_ggjt(TinyLlama(quantized=T.F16), tmp_path / "ggml.bin", container="GGML")
    with pytest.raises(ModelFileError, match="stores no token scores"):
        read_ggml(path)


def _with_tensor_renamed(path: Path, old: str, new: str) -> Path:
    assert len(old) == len(new)
    path.write_bytes(path.read_bytes().replace(old.encode(), new.encode()))
    return path


def test_a_model_that_is_not_llama_is_refused_with_what_to_do(ggjt: Path, tmp_path: Path):
    _with_tensor_renamed(ggjt, "tok_embeddings.weight", "transformer.wte.embed")
    with pytest.raises(ModelFileError, match="not a complete LLaMA model") as raised:
        servable_gguf(ggjt, tmp_path / "cache", DEFAULTS)
    assert "convert_hf_to_gguf.py" in raised.value.message


def test_a_header_that_is_not_llamas_is_refused(tmp_path: Path):
    # GPT-2's GGML header: n_vocab, n_ctx, n_embd, n_head, n_layer, ftype, then its vocabulary's count.
    path = tmp_path / "gpt2.bin"
    path.write_bytes(b"lmgg" + struct.pack("<7i", 50257, 1024, 768, 12, 12, 1, 50257) + bytes(64))
    with pytest.raises(ModelFileError, match="not of a LLaMA-family model"):
        read_ggml(path)


def test_a_truncated_file_says_so(ggjt: Path):
    ggjt.write_bytes(ggjt.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated"):
        read_ggml(ggjt)


def test_a_removed_quantization_is_refused(ggjt: Path, model: TinyLlama):
    data = bytearray(ggjt.read_bytes())
    name = b"layers.0.attention.wq.weight"
    at = data.index(name) - 8 - 12  # n_dims, name length, type, then two dims
    struct.pack_into("<i", data, at + 8, 4)
    ggjt.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="Q4_2, a quantization ggml dropped"):
        read_ggml(ggjt)


def test_gguf_files_are_served_as_they_are_and_others_are_refused(model: TinyLlama, tmp_path: Path):
    direct = write_gguf(model, tmp_path / "m.gguf", context_length=2048)
    assert servable_gguf(direct, tmp_path / "cache", DEFAULTS) == direct
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelFileError, match=r"is not a GGUF file \(it begins with b'hell'\)"):
        servable_gguf(text, tmp_path / "cache", DEFAULTS)
    with pytest.raises(ModelFileError, match=r"is a folder; .* needs --backend transformers"):
        servable_gguf(tmp_path, tmp_path / "cache", DEFAULTS)
    adapter = tmp_path / "lora.bin"
    adapter.write_bytes(b"algg" + bytes(16))
    with pytest.raises(ModelFileError, match="LoRA adapter"):
        servable_gguf(adapter, tmp_path / "cache", DEFAULTS)


def test_a_missing_file_is_a_permanent_error_naming_it(tmp_path: Path):
    spec = ModelSpec(path=str(tmp_path / "nowhere.bin"), workers=1, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ModelFileError, match=r"Model file not found: .*nowhere\.bin\. Check the model's path"):
        loadable_gguf(spec)


def test_a_conversion_is_made_once_and_kept_by_identity_and_options(ggjt: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    first = converted(ggjt, cache, DEFAULTS)
    inode = first.stat().st_ino
    assert converted(ggjt, cache, DEFAULTS) == first
    assert first.stat().st_ino == inode
    other = converted(ggjt, cache, ConversionOptions(context_length=4096))
    assert other != first
    os.utime(ggjt, ns=(1, 1))  # a changed file converts again
    assert converted(ggjt, cache, DEFAULTS) not in (first, other)


def test_a_leftover_from_a_killed_conversion_is_cleared(ggjt: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    target_name = converted(ggjt, cache, DEFAULTS).name
    (cache / "converted" / target_name).unlink()
    leftover = cache / "converted" / f".{target_name}.abc123.tmp"
    leftover.write_bytes(b"half")
    converted(ggjt, cache, DEFAULTS)
    assert not leftover.exists()


def _convert_and_report_inode(path: str, cache: str) -> int:
    return converted(Path(path), Path(cache), DEFAULTS).stat().st_ino


def test_workers_starting_together_convert_once(ggjt: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        inodes = pool.starmap(_convert_and_report_inode, [(str(ggjt), str(cache))] * 3)
    assert len(set(inodes)) == 1  # a second conversion would have replaced the file
    files = sorted(p.name for p in (cache / "converted").iterdir() if not p.name.endswith(".lock"))
    assert len(files) == 1
    assert files[0].endswith(".gguf")
