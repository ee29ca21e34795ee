"""A GGUF model written as a split model (`-0000k-of-0000n.gguf`), as llama.cpp's gguf-split would.

The gguf package writes splits itself (`GGUFWriter(split_max_tensors=...)`): the first part holds the
metadata, every part its share of the tensors and the `split.*` keys llama.cpp reads to find the rest.
The tensors' bytes are copied as they are, so the split model computes exactly what the original does.
"""

from __future__ import annotations

from pathlib import Path

import gguf


def write_split(source: Path, target: Path, parts: int) -> list[Path]:
    """`source` as `parts` files named after `target` (its stem gets `-0000k-of-0000n`); their paths in order."""
    reader = gguf.GGUFReader(source)
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch, split_max_tensors=-(-len(reader.tensors) // parts))
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # written by the writer itself
        kind = field.types[0]
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), kind, sub_type=sub_type)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    names = writer.format_shard_names(target)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    return names
