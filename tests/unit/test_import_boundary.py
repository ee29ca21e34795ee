"""The API process never imports an engine: only worker processes load torch, llama.cpp or numpy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# The engines, and our own modules that only a worker process needs.
ENGINE_MODULES = ("torch", "llama_cpp", "transformers", "numpy", "warmserve.backends", "warmserve.pool.worker")

# Builds the app with a llama.cpp model and a transformers model, renders its OpenAPI schema
# (which walks every route and wire model) and lists which engine modules got imported. (Under
# Ray Serve the ingress runs inside Ray, which imports numpy itself: that is Ray's process.)
PROBE = textwrap.dedent(
    """
    import json, sys
    from warmserve.api import create_app
    from warmserve.config import ModelSpec, ServerSettings

    settings = ServerSettings(models=[
        ModelSpec(name="gguf", backend="llama_cpp"),
        ModelSpec(name="hf", backend="transformers", path="/nonexistent/model"),
    ])
    app = create_app(settings)
    app.openapi()
    print(json.dumps(sorted(m for m in {modules} if m in sys.modules)))
    """
)


def _engines_imported(probe: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", probe.format(modules=ENGINE_MODULES)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


def test_building_the_app_imports_no_engine_module():
    assert _engines_imported(PROBE) == []


def test_the_probe_sees_a_stray_import():
    """The check itself works: an engine module imported anywhere in the process is reported."""
    stray = PROBE.replace("import json, sys", "import json, sys\nimport numpy")
    assert _engines_imported(stray) == ["numpy"]


# The same after the app has started its workers (the fake engine): spawning them loads nothing here.
RUNNING = textwrap.dedent(
    """
    import asyncio, json, sys
    from warmserve.api import create_app
    from warmserve.config import ModelSpec, ServerSettings

    async def main():
        app = create_app(ServerSettings(models=[ModelSpec(name="fake", backend="fake", workers=1)]))
        async with app.router.lifespan_context(app):
            pools = app.state.pools
            assert await pools.get("fake").wait_for(("ready",), 60) == "ready"
        print(json.dumps(sorted(m for m in {modules} if m in sys.modules)))

    asyncio.run(main())
    """
)


def test_a_running_app_with_a_loaded_worker_has_imported_no_engine_module():
    assert _engines_imported(RUNNING) == []
