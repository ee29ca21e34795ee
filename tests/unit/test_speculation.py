"""Prompt lookup's drafter and policy, and a request's `speculative` resolved against its model."""

from __future__ import annotations

import pytest

from warmserve.api.speculative import OFF, speculation
from warmserve.backends.llama.speculation import NgramDrafter, SequenceSpeculation, settings_for
from warmserve.config import ModelSpec
from warmserve.errors import InvalidRequest, UnsupportedParameter
from warmserve.generation import Speculation
from warmserve.model_options import SpeculativeOptions
from warmserve.protocol.speculative import SpeculativeParam


def test_the_drafter_proposes_what_followed_the_latest_occurrence_of_the_longest_matching_ngram():
    drafter = NgramDrafter([1, 2, 3, 4, 5, 9, 2, 3, 7, 8], ngram_min=1, ngram_max=3)
    assert drafter.draft(4) == []  # the history ends in 8, which never occurred before
    drafter.extend([2])
    assert drafter.draft(4) == [3, 7, 8, 2]  # after the latest "2" (a 1-gram: "8 2" is new)
    drafter.extend([1, 2, 3])
    assert drafter.draft(3) == [4, 5, 9]  # "1 2 3" (3-gram) beats the later "2 3" (2-gram)
    drafter.push(6)
    assert drafter.draft(3) == []  # "3 6", "6" never occurred before


def test_the_drafter_prefers_the_latest_occurrence_and_stops_at_the_history_end():
    drafter = NgramDrafter([5, 6, 1, 5, 6, 2, 5, 6], ngram_min=2, ngram_max=2)
    assert drafter.draft(5) == [2, 5, 6]  # after the second "5 6", up to the end of what is known
    assert drafter.draft(0) == []


def test_a_sequence_drafts_in_small_steps_only_and_pauses_while_its_drafts_miss():
    options = SpeculativeOptions(max_batch=2, min_acceptance=0.5)
    history = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]
    sequence = SequenceSpeculation(Speculation(8, 1, 2), options, history)
    assert sequence.draft(limit=8, decoding=3) == []  # three sequences decode: drafting would cost more
    assert sequence.draft(limit=8, decoding=2) == [3, 4, 5, 6]  # the first draft is short
    sequence.verified(4, 4)
    assert sequence.draft(limit=8, decoding=1) == [3, 4, 5, 6, 7, 8, 9, 10]  # a whole landing doubles it
    assert sequence.draft(limit=3, decoding=1) == [3, 4, 5]  # within the engine's limit
    sequence.verified(8, 1)  # acceptance 1 -> 0.74: still drafting, but short
    assert sequence.draft(limit=8, decoding=1) == [3, 4]
    sequence.verified(2, 0)
    sequence.verified(2, 0)  # 0.74 -> 0.52 -> 0.36: below the bar
    assert [sequence.draft(limit=8, decoding=1) for _ in range(4)] == [[]] * 4  # a pause of four steps
    assert sequence.draft(limit=8, decoding=1) == [3, 4]
    assert (sequence.drafted, sequence.accepted) == (16, 5)


def test_a_request_without_settings_gets_its_models_and_off_means_no_drafts():
    assert settings_for(None, SpeculativeOptions(draft_tokens=6)) == Speculation(6, 6, 12)
    assert settings_for(None, SpeculativeOptions(type="off")) is None
    assert settings_for(Speculation(0), SpeculativeOptions()) is None
    assert settings_for(Speculation(3, 1, 1), SpeculativeOptions(type="off")) == Speculation(3, 1, 1)


def test_a_request_sets_what_it_names_and_its_model_the_rest():
    model = ModelSpec(speculative={"draft_tokens": 12, "ngram_min": 3, "ngram_max": 5})
    assert speculation(None, model) is None
    assert speculation(False, model) == OFF
    assert speculation(SpeculativeParam(type="off", draft_tokens=3), model) == OFF
    assert speculation(True, model) == Speculation(12, 3, 5)
    assert speculation(SpeculativeParam(draft_tokens=4, ngram_max=8), model) == Speculation(4, 3, 8)


def test_a_model_that_cannot_speculate_exactly_refuses_a_request_that_asks(tmp_path):
    model = tmp_path / "tiny"
    model.mkdir()
    hf = ModelSpec(backend="transformers", path=str(model), name="hf")
    with pytest.raises(UnsupportedParameter) as unsupported:
        speculation(True, hf)
    assert unsupported.value.param == "speculative"
    assert speculation(False, hf) == OFF  # asking for none is fine anywhere
    with pytest.raises(InvalidRequest, match="flash_attn") as slow:
        speculation(True, ModelSpec(flash_attn="off"))
    assert slow.value.param == "speculative"
    with pytest.raises(InvalidRequest, match="ngram_min") as order:
        speculation(SpeculativeParam(ngram_min=13), ModelSpec())  # above the model's ngram_max (12)
    assert order.value.param == "speculative"


def test_a_model_spec_bounds_its_speculative_options():
    with pytest.raises(ValueError, match="ngram_min"):
        SpeculativeOptions(ngram_min=5, ngram_max=3)
    with pytest.raises(ValueError, match="less than or equal to 62"):
        SpeculativeOptions(draft_tokens=63)  # the next token and the draft stay on the per-row kernel
