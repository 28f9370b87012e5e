#!/usr/bin/env bash
# Installs everything the test suite needs into ./.venv (PyTorch CPU 2.13.0, archdsl with its
# test extras, the graphviz `dot` binary when this machine can install it) and runs the tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 hatchling editables
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[test]'
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing graphviz (for 'archdsl render' tests) ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
      || echo "warning: could not install graphviz; render tests that need 'dot' will be skipped"
  else
    echo "warning: graphviz 'dot' not found; install it (apt-get install graphviz) to run the render tests"
  fi
fi
exec .venv/bin/python -m pytest -n 2 -q "$@"
