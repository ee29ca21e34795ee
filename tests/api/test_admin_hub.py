"""POST /admin/models with a hub model the server cannot get: answered before anything loads."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import pytest

from tests.api.conftest import serve_in_process
from tests.conftest import fake_settings

COMMIT = "c" * 40


@pytest.fixture
def offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """huggingface_hub offline, with a cache holding owner/cached-GGUF's Q4_0 file only."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--owner--cached-GGUF"
    (repo / "snapshots" / COMMIT).mkdir(parents=True)
    (repo / "snapshots" / COMMIT / "cached-Q4_0.gguf").write_bytes(b"GGUF")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return tmp_path


async def test_offline_a_hub_model_not_in_the_cache_is_a_503_saying_what_to_run(offline_cache: Path):
    async with serve_in_process(fake_settings()) as http:
        response = await http.post("/admin/models", json={"name": "m", "path": "owner/absent-GGUF:Q4_0"})
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "model_not_cached"
        assert error["param"] == "path"
        assert "run `warmserve pull owner/absent-GGUF:Q4_0`" in error["message"]
        assert [m["id"] for m in (await http.get("/admin/models")).json()["data"]] == ["fake"]


async def test_offline_a_quant_the_cache_lacks_lists_the_cached_quants(offline_cache: Path):
    async with serve_in_process(fake_settings()) as http:
        response = await http.post("/admin/models", json={"name": "m", "path": "owner/cached-GGUF:Q8_0"})
        assert response.status_code == 503, response.text
        assert (
            "owner/cached-GGUF in the local cache has no GGUF model of quant Q8_0; its quants: Q4_0"
            in (response.json()["error"]["message"])
        )
