"""Embeddings from a Hugging Face model: the last hidden states, pooled as its sentence-transformers folder says.

1_Pooling names mean, cls or last-token pooling (mean when the folder says nothing);
sentence_bert_config.json may cap the input length. The vectors are scaled to unit
length by the shared batching (backends/embedding.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from warmserve.backends.embedding import EmbeddingJobs, EmbedPiece, Vector

_POOLING_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_lasttoken": "lasttoken"}


class HFEmbedder:
    def __init__(
        self, model: Any, pad_token: int | None, device: torch.device, directory: Path, n_ctx: int, budget: int
    ) -> None:
        self._model = model
        self._pad = pad_token if pad_token is not None else 0
        self._device = device
        self._pooling, max_seq_length = _sentence_transformers_settings(directory)
        self.limit = min(n_ctx, max_seq_length or n_ctx)  # longest input, in tokens
        self._budget = budget
        self.size = int(model.config.hidden_size)

    def jobs(self) -> EmbeddingJobs:
        return EmbeddingJobs(budget=self._budget, max_pieces=64, split=False, padded=True)

    @torch.inference_mode()
    def pieces(self, pieces: list[EmbedPiece]) -> list[Vector]:
        lengths = torch.tensor([len(piece.tokens) for piece in pieces])
        input_ids = torch.full((len(pieces), int(lengths.max())), self._pad, dtype=torch.long)
        for row, piece in enumerate(pieces):
            input_ids[row, : len(piece.tokens)] = torch.tensor(piece.tokens)
        mask = (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long()
        out = self._model.base_model(input_ids=input_ids.to(self._device), attention_mask=mask.to(self._device))
        hidden = out.last_hidden_state.float().cpu()
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        elif self._pooling == "lasttoken":
            pooled = hidden[torch.arange(len(pieces)), lengths - 1]
        else:
            pooled = (hidden * mask[:, :, None]).sum(dim=1) / lengths[:, None]
        return list(pooled.numpy())


def _sentence_transformers_settings(directory: Path) -> tuple[str, int | None]:
    """Pooling mode and longest input from a sentence-transformers folder; mean and None without one."""
    pooling, max_seq_length = "mean", None
    try:
        modules = json.loads((directory / "modules.json").read_text())
        for module in modules:
            if str(module.get("type", "")).endswith("Pooling"):
                config = json.loads((directory / module.get("path", "") / "config.json").read_text())
                pooling = next((mode for key, mode in _POOLING_MODES.items() if config.get(key)), "mean")
        max_seq_length = json.loads((directory / "sentence_bert_config.json").read_text()).get("max_seq_length")
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    return pooling, max_seq_length if isinstance(max_seq_length, int) and max_seq_length > 0 else None
