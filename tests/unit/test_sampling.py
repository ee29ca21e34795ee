import pytest
import torch

from warmserve.backends.hf.sampling import TorchSampler
from warmserve.errors import UnsupportedParameter
from warmserve.generation import SamplingParams

LOGITS = torch.tensor([1.0, 3.0, 2.0, 0.5])


def test_temperature_zero_is_greedy():
    sampler = TorchSampler(SamplingParams(temperature=0))
    assert [sampler.sample(LOGITS) for _ in range(3)] == [1, 1, 1]


def test_the_same_seed_draws_the_same_tokens():
    def draws(seed: int) -> list[int]:
        sampler = TorchSampler(SamplingParams(temperature=2.0, seed=seed))
        return [sampler.sample(LOGITS) for _ in range(30)]

    assert draws(5) == draws(5)
    assert len(set(draws(5))) > 1


def test_a_tiny_top_p_keeps_only_the_most_likely_token():
    sampler = TorchSampler(SamplingParams(temperature=1.0, top_p=0.01, seed=1))
    assert {sampler.sample(LOGITS) for _ in range(30)} == {1}


def test_a_frequency_penalty_stops_greedy_repetition():
    sampler = TorchSampler(SamplingParams(temperature=0, frequency_penalty=2.0))
    # 3 -> 1 after one use, so 2 wins; then 1 and 0 tie at 1.0 and argmax takes the first
    assert [sampler.sample(LOGITS) for _ in range(3)] == [1, 2, 0]


def draws(params: SamplingParams, count: int = 30, prompt: tuple[int, ...] = ()) -> set[int]:
    sampler = TorchSampler(params, prompt=prompt)
    return {sampler.sample(LOGITS) for _ in range(count)}


def test_top_k_and_min_p_narrow_a_hot_distribution():
    assert draws(SamplingParams(temperature=2.0, seed=1)) == {0, 1, 2, 3}
    assert draws(SamplingParams(temperature=2.0, seed=1, top_k=1)) == {1}
    assert draws(SamplingParams(temperature=2.0, seed=1, top_k=2)) == {1, 2}
    assert draws(SamplingParams(temperature=2.0, seed=1, min_p=1.0)) == {1}
    # at temperature 1, token 2 has e^-1 = 0.37 of token 1's probability, token 0 e^-2 = 0.14
    assert draws(SamplingParams(temperature=1.0, seed=1, min_p=0.3)) == {1, 2}


def test_typical_p_keeps_the_tokens_whose_surprise_is_nearest_the_entropy():
    probs = torch.softmax(LOGITS, dim=-1)
    entropy = -(probs * probs.log()).sum()
    typical = int(torch.argmin((-probs.log() - entropy).abs()))
    assert typical != 1  # not simply the likeliest token
    assert draws(SamplingParams(temperature=1.0, seed=1, typical_p=0.01)) == {typical}


def test_repetition_penalty_covers_the_prompt_within_repeat_last_n():
    greedy = SamplingParams(temperature=0, repetition_penalty=3.0)
    assert TorchSampler(greedy, prompt=(1, 0)).sample(LOGITS) == 2  # 3 / 3 = 1 < 2
    window = SamplingParams(temperature=0, repetition_penalty=3.0, repeat_last_n=1)
    assert TorchSampler(window, prompt=(1, 0)).sample(LOGITS) == 1  # only the last token, 0, is penalised
    negative = torch.tensor([-1.0, -1.5, -4.0])
    assert TorchSampler(SamplingParams(temperature=0, repetition_penalty=2.0), prompt=(0,)).sample(negative) == 1


def test_repetition_penalty_follows_the_output_as_it_grows():
    sampler = TorchSampler(SamplingParams(temperature=0, repetition_penalty=4.0, repeat_last_n=2))
    # 1 (3.0), then 2 (1 is 0.75), then 0 (1 and 2 are penalised), then 1 again (it left the window)
    assert [sampler.sample(LOGITS) for _ in range(4)] == [1, 2, 0, 1]


@pytest.mark.parametrize(("param", "value"), [("dry_multiplier", 0.8), ("xtc_probability", 0.5), ("mirostat", 2)])
def test_llama_cpp_only_samplers_are_refused_naming_them(param, value):
    with pytest.raises(UnsupportedParameter) as info:
        TorchSampler(SamplingParams(**{param: value}))
    assert info.value.param == param
    TorchSampler(SamplingParams(**{param: 0}))  # off is fine
