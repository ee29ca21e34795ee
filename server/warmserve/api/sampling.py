"""A request's sampling settings: its own values, else its model's defaults, else neutral (off).

Every generating route (chat, completions, Responses, Messages) builds its SamplingParams'
sampling fields here, so a model's `sampling` defaults (ModelSpec.sampling, as its card
recommends) and the checks that need the model apply alike everywhere:

- Mirostat replaces top_k, top_p, min_p, typical_p and XTC. A request that sets both is a 400
  naming the other one; a request that chooses one family drops the model's defaults of the other.
- A sampler the model's backend lacks (DRY, XTC and Mirostat on transformers) is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.model_options import SamplingDefaults, sampler_lacking
from warmserve.protocol.sampling import MIROSTAT_REPLACES, is_on, mirostat_conflict

_NAMES = tuple(SamplingDefaults.model_fields)
_MIROSTAT = ("mirostat", "mirostat_tau", "mirostat_eta")


def sampling_fields(body: BaseModel, spec: ModelSpec) -> dict[str, Any]:
    """SamplingParams keyword arguments from `body`'s sampling fields and `spec`'s defaults.

    Only what the request or the model sets is returned, so SamplingParams' own defaults (OpenAI's,
    and "off" for the extensions) fill in the rest.
    """
    sent = {name: getattr(body, name, None) for name in _NAMES}
    conflict = mirostat_conflict(sent)
    if conflict is not None:
        raise InvalidRequest(
            f"'{conflict}' has no effect with 'mirostat', which replaces top_k, top_p, min_p, typical_p and "
            "XTC; send one or the other.",
            param=conflict,
        )
    defaults = spec.sampling.model_dump()
    if is_on(sent, "mirostat"):
        defaults.update(dict.fromkeys(MIROSTAT_REPLACES))
    elif any(is_on(sent, name) for name in MIROSTAT_REPLACES):
        defaults.update(dict.fromkeys(_MIROSTAT))
    values = {name: defaults[name] if sent[name] is None else sent[name] for name in _NAMES}
    lacking = sampler_lacking(spec.backend, values)
    if lacking is not None:
        raise UnsupportedParameter(
            f"The parameter '{lacking}' is not supported by model '{spec.name}': its {spec.backend} backend has "
            "no DRY, XTC or Mirostat sampler (llama.cpp models have them).",
            param=lacking,
        )
    fields = {name: value for name, value in values.items() if value is not None}
    if fields.get("top_k") == -1:  # vLLM's "off"
        fields["top_k"] = 0
    if "dry_sequence_breakers" in fields:
        fields["dry_sequence_breakers"] = tuple(fields["dry_sequence_breakers"])
    return fields
