"""One left-padded KV cache holding every running sequence of a transformers worker.

A sequence is prefilled alone, then its cache joins the batch: both caches are
left-padded to the same length and stacked on the batch axis, and an attention
mask marks the padding. Finished or cancelled rows leave by index selection, and
columns that are padding in every remaining row are trimmed away.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


def _layers(cache: DynamicCache) -> list[DynamicLayer]:
    return cast(list[DynamicLayer], cache.layers)


def _kv(layer: DynamicLayer) -> tuple[torch.Tensor, torch.Tensor]:
    assert layer.keys is not None
    assert layer.values is not None
    return layer.keys, layer.values


def supports_batching(cache: DynamicCache) -> bool:
    """Merging is only defined for plain full-attention layers (no sliding window)."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


class KVBatch:
    def __init__(self) -> None:
        self.cache: DynamicCache | None = None
        self.mask: torch.Tensor | None = None  # [rows, columns], 1 = real token

    @property
    def rows(self) -> int:
        return 0 if self.mask is None else self.mask.shape[0]

    def append(self, cache: DynamicCache, length: int) -> None:
        """Add one prefilled sequence (cache of batch size 1, `length` real tokens) as the last row."""
        mask = torch.ones((1, length), dtype=torch.long, device=_kv(_layers(cache)[0])[0].device)
        if self.cache is None or self.mask is None:
            self.cache, self.mask = cache, mask
            return
        columns = max(self.mask.shape[1], length)
        for mine, theirs in zip(_layers(self.cache), _layers(cache), strict=True):
            (my_keys, my_values), (their_keys, their_values) = _kv(mine), _kv(theirs)
            mine.keys = torch.cat([_pad_seq(my_keys, columns), _pad_seq(their_keys, columns)])
            mine.values = torch.cat([_pad_seq(my_values, columns), _pad_seq(their_values, columns)])
        self.mask = torch.cat([_pad_mask(self.mask, columns), _pad_mask(mask, columns)])

    def grow(self) -> torch.Tensor:
        """The mask for a decode step that adds one real token to every row."""
        assert self.mask is not None
        self.mask = F.pad(self.mask, (0, 1), value=1)
        return self.mask

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order), then drop all-padding columns."""
        if not rows:
            self.cache, self.mask = None, None
            return
        assert self.cache is not None
        assert self.mask is not None
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        self.mask = self.mask[index]
        start = int((self.mask.sum(dim=0) > 0).nonzero()[0])
        for layer in _layers(self.cache):
            keys, values = _kv(layer)
            layer.keys = keys[index, :, start:, :]
            layer.values = values[index, :, start:, :]
        self.mask = self.mask[:, start:]


def _pad_seq(tensor: torch.Tensor, columns: int) -> torch.Tensor:
    return F.pad(tensor, (0, 0, columns - tensor.shape[-2], 0))


def _pad_mask(mask: torch.Tensor, columns: int) -> torch.Tensor:
    return F.pad(mask, (columns - mask.shape[1], 0), value=0)
