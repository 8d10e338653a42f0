#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages (as root), the virtualenv and the
# project's Python dependencies. `make demo` and `make test` both start here.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v git >/dev/null 2>&1 || need_apt+=(git)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "setup: please install: ${need_apt[*]}" >&2
        exit 1
    fi
fi
if ! command -v kubectl >/dev/null 2>&1; then
    echo "setup: kubectl is not on PATH; the end-to-end tests and the demo's instructions use it" >&2
fi

stamp=.venv/.installed
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[dev]'
    touch "$stamp"
fi

# Compile once: this environment may set PYTHONDONTWRITEBYTECODE, and without bytecode
# `recon serve` takes ~2.3 s to start instead of ~0.6 s (docs/benchmarks.md).
.venv/bin/python -m compileall -q reconciler >/dev/null
