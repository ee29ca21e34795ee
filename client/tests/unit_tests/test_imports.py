import subprocess
import sys
from importlib import metadata

import langchain_warmserve

EXPECTED = [
    "ChatWarmServe",
    "TokenizationUnsupportedError",
    "WarmServeLLM",
    "WarmServeStreamError",
    "__version__",
]
SERVER_SIDE = ("warmserve", "torch", "llama_cpp", "transformers", "fastapi", "uvicorn")


def test_public_names():
    assert sorted(langchain_warmserve.__all__) == sorted(EXPECTED)
    assert langchain_warmserve.__version__ == metadata.version("langchain-warmserve")


def test_the_distribution_depends_on_no_server_code_or_engines():
    requirements = [r for r in metadata.requires("langchain-warmserve") or [] if "extra ==" not in r]
    assert not [r for r in requirements if r.lower().startswith(SERVER_SIDE)]


def test_importing_the_package_loads_no_server_code_or_engines():
    code = (
        "import sys, langchain_warmserve;"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_SIDE!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
