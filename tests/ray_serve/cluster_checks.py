"""Checks run on a local 2-node Ray cluster, inside a network namespace with only loopback.

Not collected by the suite (its name has no test_ prefix): test_cluster.py runs it with
`ip netns exec`, because Ray binds every interface unless confined. The cluster is a head
and a worker node of one CPU each; `warmserve serve --ray` deploys the real default model with
two replicas (one CPU each, so one per node) and two slots each, so four concurrent requests
occupy both replicas.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
import ray
import yaml
from ray import serve
from ray._private.state import actors
from ray.cluster_utils import Cluster

from tests.ray_serve.helpers import BASE_URL, PORT, ready, serving, wait_for
from warmserve.config import EMBEDDED_MODEL_NAME, ModelSpec
from warmserve.ray_serve import APP_NAME
from warmserve.ray_serve.app import deployment_name

MODEL = EMBEDDED_MODEL_NAME
DEPLOYMENT = deployment_name(ModelSpec())


def replica_actors() -> list[dict]:
    """The model's live replica actors (Ray's actor table, a debugging API), with their nodes."""
    return [a for a in actors(actor_state_name="ALIVE").values() if DEPLOYMENT in a["Name"]]


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return [int(child) for task in tasks for child in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "zombie" not in status.read_text()
    except FileNotFoundError:
        return False


def replicas_running() -> int:
    status = serve.status().applications.get(APP_NAME)
    if status is None or DEPLOYMENT not in status.deployments:
        return 0
    return sum(n for state, n in status.deployments[DEPLOYMENT].replica_states.items() if state == "RUNNING")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    try:
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    tmp = tmp_path_factory.mktemp("ray-serve")
    config = tmp / "warmserve.yaml"
    model = {"name": MODEL, "workers": 2, "threads": 1, "slots": 2, "n_ctx": 1024}
    settings = {"drain_timeout_s": 10, "data_dir": str(tmp / "data"), "models": [model]}
    config.write_text(yaml.safe_dump(settings))
    command = [sys.executable, "-m", "warmserve", "serve", "--ray", cluster.address, "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(PORT)]
    with serving(command, tmp / "serve.log", signal.SIGTERM) as process:
        yield process


@pytest.fixture
def client(server: subprocess.Popen[bytes]) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="unused", max_retries=0, timeout=120)


def test_models_and_readiness_show_both_replicas(client):
    assert replicas_running() == 2
    assert len({actor["Address"]["NodeID"] for actor in replica_actors()}) == 2  # one on each node
    [model] = client.models.list().data
    assert model.id == MODEL
    assert (model.model_extra["state"], model.model_extra["ready_workers"]) == ("ready", 2)


def test_chat_through_the_openai_client(client):
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three colours of the rainbow."}],
        max_tokens=24,
        temperature=0,
    )
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage.completion_tokens > 0


def test_streamed_chat_through_the_openai_client(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Write a haiku about the sea."}],
            max_tokens=24,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_the_responses_api_streams_and_continues_a_stored_conversation(client):
    first = client.responses.create(model=MODEL, input="Name a colour.", max_output_tokens=8, temperature=0)
    assert first.output_text
    with client.responses.stream(
        model=MODEL, input="And another?", previous_response_id=first.id, max_output_tokens=8, temperature=0
    ) as stream:
        events = list(stream)
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.usage.input_tokens > first.usage.input_tokens  # it saw the first turn
    assert client.responses.retrieve(first.id).output_text == first.output_text


def test_the_messages_api_through_the_anthropic_client(client):
    claude = anthropic.Anthropic(base_url=BASE_URL, api_key="unused", max_retries=0, timeout=120)
    message = claude.messages.create(
        model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "Name a colour."}]
    )
    assert message.content[0].text
    assert message.usage.output_tokens > 0


def test_embeddings_through_the_replicas(client):
    texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly revenue rose by ten percent."]
    answer = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    vectors = [item.embedding for item in answer.data]
    assert [len(v) for v in vectors] == [576] * 3
    cosine = [sum(x * y for x, y in zip(vectors[0], other, strict=True)) for other in vectors]
    assert abs(cosine[0] - 1) < 1e-5
    assert cosine[1] > cosine[2]
    assert answer.usage.prompt_tokens > 3
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model=MODEL, input="a", dimensions=3)
    assert caught.value.body["param"] == "dimensions"


def test_a_replica_killed_under_load_loses_no_request_and_is_replaced(client):
    """Its requests continue on the other replica from the tokens it relayed: every stream ends
    normally, with the text of an undisturbed run (temperature 0)."""
    prompts = [f"Story {index}: once upon a time" for index in range(4)]
    undisturbed = [
        client.completions.create(model=MODEL, prompt=prompt, max_tokens=200, temperature=0).choices[0].text
        for prompt in prompts
    ]
    started = threading.Barrier(5)
    results: list[tuple[str, str]] = [("", "")] * len(prompts)

    def stream_one(index: int) -> None:
        text, outcome = "", "no first chunk"
        try:
            stream = client.completions.create(
                model=MODEL, prompt=prompts[index], max_tokens=200, temperature=0, stream=True
            )
            for chunk in stream:
                if not text:
                    started.wait(60)
                text += chunk.choices[0].text if chunk.choices else ""
                if chunk.choices and chunk.choices[0].finish_reason:
                    outcome = chunk.choices[0].finish_reason
        except openai.APIError as exc:
            outcome = f"error: {exc.code or exc.message}"
        results[index] = (outcome, text)

    threads = [threading.Thread(target=stream_one, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    started.wait(120)  # all four are running: two slots on each replica
    head = ray.get_runtime_context().get_node_id()
    [on_worker_node] = [a for a in replica_actors() if a["Address"]["NodeID"] != head]
    processes = children(on_worker_node["Pid"])  # its model worker (and multiprocessing's resource tracker)
    assert processes
    ray.kill(ray.get_actor(on_worker_node["Name"], namespace="serve"), no_restart=True)
    for thread in threads:
        thread.join(180)

    assert [outcome for outcome, _ in results] == ["length"] * len(prompts), results
    assert [text for _, text in results] == undisturbed
    wait_for(lambda: not any(alive(pid) for pid in processes), 30, "the dead replica's processes gone")
    wait_for(lambda: replicas_running() == 2, 180, "replaced")
    wait_for(ready, 30, "ready again")
    answer = client.completions.create(model=MODEL, prompt="Roses are red,", max_tokens=8, temperature=0)
    assert answer.choices[0].text
