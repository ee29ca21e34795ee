"""Ray Serve on local clusters serving the real default model: cluster_checks.py (two nodes,
`warmserve serve --ray`, a replica killed under load) and config_checks.py (`serve run` with
deploy/ray/serve.yaml).

Ray binds every interface it finds, so the cluster runs in a network namespace of its own that
has only loopback (`ip netns`, which needs root, as CI has). Its processes are ended by pid
through that namespace, never by name, and its files live in a temporary RAY_TMPDIR.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CHECKS = [Path(__file__).with_name(name) for name in ("cluster_checks.py", "config_checks.py")]


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.mark.timeout(480)
def test_ray_serve_serves_chat_and_streams_and_replaces_a_killed_replica(tmp_path):
    namespace = f"warmserve-ray-{os.getpid()}"
    # Short: Ray's unix socket paths under it must fit in 107 bytes.
    ray_tmp = Path(tempfile.mkdtemp(prefix="wsray-", dir="/tmp"))
    ip("netns", "add", namespace)
    try:
        ip("netns", "exec", namespace, "ip", "link", "set", "lo", "up")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
        command += ["--basetemp", str(tmp_path / "checks"), *map(str, CHECKS)]
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, *command],
            env={**os.environ, "RAY_TMPDIR": str(ray_tmp)},
            capture_output=True,
            text=True,
            timeout=420,
        )
        assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-4000:]
        assert "8 passed" in result.stdout
    finally:
        for pid in ip("netns", "pids", namespace).stdout.split():  # whatever the checks left behind
            os.kill(int(pid), signal.SIGKILL)
        ip("netns", "delete", namespace)
        shutil.rmtree(ray_tmp, ignore_errors=True)
