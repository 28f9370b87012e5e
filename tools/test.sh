#!/usr/bin/env bash
# Installs everything the test suite needs into ./.venv (PyTorch CPU 2.13.0, archdsl with its
# test extras, Graphviz and Chromium when this machine can install them) and runs the tests.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0 hatchling editables
.venv/bin/python -m pip install -q --disable-pip-version-check --no-build-isolation -e '.[test,onnx]'
# System packages: Graphviz's `dot` (render tests) and Debian's Chromium + ChromeDriver (the HTML
# viewer's headless-browser test). Tests that need a missing one are skipped with a message saying so.
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (for the render and browser tests) ..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null) \
      || echo "warning: could not install ${need[*]}; the tests that need them will be skipped"
  else
    echo "warning: ${need[*]} not installed (apt-get install ${need[*]}); the tests that need them will be skipped"
  fi
fi
exec .venv/bin/python -m pytest -n 2 -q "$@"
