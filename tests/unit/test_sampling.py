import torch

from warmserve.backends.hf.sampling import TorchSampler
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
