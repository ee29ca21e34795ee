"""README's `serve run deploy/ray/serve.yaml`, on a one-node Ray cluster inside the namespace.

Run by test_cluster.py after cluster_checks.py. The node has 4 logical CPUs: the config's two
replicas reserve 2 each.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml
from ray.cluster_utils import Cluster

from tests.ray_serve.helpers import BASE_URL, serving

SERVE_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "ray" / "serve.yaml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 4, "include_dashboard": False})
    try:
        yield cluster
    finally:
        cluster.shutdown()


def test_serve_run_with_the_config_file_serves_chat(cluster, tmp_path):
    [application] = yaml.safe_load(SERVE_CONFIG.read_text())["applications"]
    [model] = application["args"]["models"]
    command = [str(Path(sys.executable).with_name("serve")), "run", "--address", cluster.address, str(SERVE_CONFIG)]
    with serving(command, tmp_path / "serve-run.log", signal.SIGINT):
        client = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="unused", max_retries=0, timeout=120)
        [card] = client.models.list().data
        assert (card.id, card.model_extra["ready_workers"]) == (model["name"], model["workers"])
        answer = client.chat.completions.create(
            model=model["name"], messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
        )
        assert answer.choices[0].message.content
