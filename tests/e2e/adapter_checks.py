"""What the adapter tests of both engines check through a real server, the `openai` client and /admin.

Each engine's module starts one server: the base model "smol" with the trained adapter "warmy"
(tests/lora.py) from its config file, one worker with four slots, so base and adapter requests
share a worker's batches.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import httpx
import openai
import pytest

from tests.lora import QUESTION
from warmserve.testing import ServerProcess

BASE = "smol"
ADAPTER = "warmy"
OTHER_QUESTION = "Name three colours of the rainbow."


def ask(client: openai.OpenAI, model: str, question: str = QUESTION, max_tokens: int = 12) -> str:
    messages = [{"role": "user", "content": question}]
    answer = client.chat.completions.create(model=model, messages=messages, temperature=0, max_tokens=max_tokens)
    assert answer.model == model
    return answer.choices[0].message.content or ""


def check_listed_with_its_parent(client: openai.OpenAI) -> None:
    cards = {card.id: card.model_extra or {} for card in client.models.list().data}
    assert list(cards) == [BASE, ADAPTER]
    assert cards[ADAPTER]["parent"] == BASE
    assert cards[ADAPTER]["state"] == "ready"
    assert cards[ADAPTER]["capabilities"] == {**cards[BASE]["capabilities"], "embeddings": False}


def check_in_flight_together(client: openai.OpenAI) -> None:
    """Base and adapter requests at once, on one worker's batches: each gets the answer it gets alone."""
    alone = {
        (model, question): ask(client, model, question)
        for model in (BASE, ADAPTER)
        for question in (QUESTION, OTHER_QUESTION)
    }
    cases = list(alone) * 2
    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        together = list(pool.map(lambda case: ask(client, *case), cases))
    assert together == [alone[case] for case in cases]


def check_added_at_run_time_then_removed(server: ServerProcess, client: openai.OpenAI, path: Path) -> None:
    """The same files under another id: 201 once loaded, answers as the adapter does, then gone."""
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        added = http.post(f"/admin/models/{BASE}/adapters", json={"name": "warmy-again", "path": str(path)})
        assert added.status_code == 201, added.text
        assert added.json()["state"] == "ready"
        assert ask(client, "warmy-again") == ask(client, ADAPTER)
        assert "warmy-again" in {card.id for card in client.models.list().data}
        removed = http.delete(f"/admin/models/{BASE}/adapters/warmy-again")
        assert removed.status_code == 200, removed.text
    assert "warmy-again" not in {card.id for card in client.models.list().data}
    with pytest.raises(openai.NotFoundError):
        ask(client, "warmy-again")


def check_bad_adapters_are_400s_naming_them(server: ServerProcess, client: openai.OpenAI, bad: dict[str, Path]) -> None:
    """Missing files, another model's adapter, ranks that disagree: a 400 naming it; the rest serves on."""
    before = ask(client, BASE), ask(client, ADAPTER)
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for name, path in bad.items():
            refused = http.post(f"/admin/models/{BASE}/adapters", json={"name": name, "path": str(path)})
            assert refused.status_code == 400, (name, refused.text)
            assert f"'{name}'" in refused.json()["error"]["message"]
        listed = http.get(f"/admin/models/{BASE}/adapters").json()["data"]
        assert [adapter["id"] for adapter in listed] == [ADAPTER]
    assert (ask(client, BASE), ask(client, ADAPTER)) == before
