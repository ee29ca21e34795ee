#!/bin/sh
# `pip install` into the image's virtual environment, for the Dockerfile's build stage (the runtime
# stage copies /opt/warmserve alone).
#   pip-install ARGS...                             pip install ARGS
#   pip-install --dependencies-of PYPROJECT EXTRAS  every dependency of the project and of the
#                                                   comma-separated extras, without the project
# With the build argument BUILD_CA_CERT set (a build behind a proxy that intercepts TLS;
# run-container-check.sh passes the host's CAs), pip trusts those PEM certificates besides its own.
set -eu
python=/opt/warmserve/bin/python
if [ -n "${BUILD_CA_CERT:-}" ]; then
    ca=/tmp/build-ca.pem
    if [ ! -f "$ca" ]; then
        "$python" -c 'import pip._vendor.certifi as c; print(open(c.where()).read())' >"$ca"
        printf '%s\n' "$BUILD_CA_CERT" >>"$ca"
    fi
    export PIP_CERT="$ca"
fi
if [ "${1:-}" = "--dependencies-of" ]; then
    "$python" - "$2" "$3" >/tmp/requirements.txt <<'PY'
import sys

try:
    import tomllib
except ImportError:  # Python 3.10: pip's own copy
    from pip._vendor import tomli as tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = [name for name in sys.argv[2].split(",") if name]
print("\n".join(project["dependencies"] + [d for name in extras for d in project["optional-dependencies"][name]]))
PY
    shift 3
    set -- -r /tmp/requirements.txt "$@"
fi
exec "$python" -m pip install "$@"
