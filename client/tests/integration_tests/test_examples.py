"""The LangChain examples in the repository's examples/ run against the session's server.

They find it through WARMSERVE_BASE_URL, as a user's shell would, and print one answer per model.
"""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[3] / "examples"


@pytest.mark.parametrize(
    ("script", "labels"),
    [
        ("langchain_flower_qa.py", ["WarmServeLLM", "ChatWarmServe"]),
        ("langchain_bouquet_description.py", ["WarmServeLLM [12支", "WarmServeLLM [Six", "ChatWarmServe"]),
        ("langchain_customer_service.py", ["ChatWarmServe", "WarmServeLLM"]),
    ],
)
def test_example_runs_against_the_default_model(script, labels, warmserve_url):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / script)], capture_output=True, text=True, timeout=300, check=True
    )
    answers = {}
    for line in done.stdout.splitlines():
        for label in labels:
            if line.startswith(label):
                answers[label] = line[len(label) :].partition(": ")[2].strip()
    assert all(answers.get(label) for label in labels), done.stdout
