#!/usr/bin/env bash
# The Python module's tests: build prompt_registry into ./.venv (created on first use)
# with maturin, then run pytest, mypy --strict on the typed example, and the examples.
# First it checks that the generated Registry is current (scripts/unasync.py --check).
#
# Incremental: the venv and the tool pins are reused, and `maturin develop` builds in the
# workspace's target/ directory, so a second run only recompiles what changed.
#
# Postgres: set PROMPT_REGISTRY_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test);
# each test session creates a throwaway database on that server and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV=.venv
PINS="maturin==1.16.0 pytest==9.2.0 pytest-asyncio==1.5.0 mypy==2.4.1"

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Reinstall the tools only when the pins change.
STAMP="$VENV/.prompt-registry-pins"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$PINS" ]; then
  echo "== installing $PINS"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PINS
  echo "$PINS" > "$STAMP"
fi

export VIRTUAL_ENV="$PWD/$VENV"
export PATH="$VIRTUAL_ENV/bin:$PATH"

# Registry (_registry.py) is generated from AsyncRegistry; fail fast when it is stale.
echo "== scripts/unasync.py --check (Registry generated from AsyncRegistry)"
python scripts/unasync.py --check

echo "== maturin develop (prompt-py)"
maturin develop --quiet --manifest-path prompt-py/Cargo.toml

# The remote-mode tests start a real server.
echo "== cargo build --bin prompt-registry (for the remote-mode tests)"
cargo build --quiet --bin prompt-registry
export PROMPT_REGISTRY_BIN="$PWD/target/debug/prompt-registry"

if [ -z "${PROMPT_REGISTRY_TEST_POSTGRES_URL:-}" ]; then
  echo "note: PROMPT_REGISTRY_TEST_POSTGRES_URL is not set: Python Postgres tests will be SKIPPED" >&2
fi

echo "== mypy --strict (stubs and typed example)"
python -m mypy --strict prompt-py/python/prompt_registry prompt-py/tests/typed_example.py examples/python/quickstart.py examples/python/remote.py scripts/unasync.py

echo "== examples/python/quickstart.py"
python examples/python/quickstart.py

# examples/python/remote.py needs a server: tests/test_remote.py starts one and runs it.

# Official client packages (openai, langfuse) against a real `prompt-registry serve` with
# the mock vendor upstream (tests/interop): pinned, installed into the same venv.
INTEROP_PINS="$(grep -v '^#' tests/interop/requirements.txt | xargs)"
INTEROP_STAMP="$VENV/.prompt-registry-interop-pins"
if [ "$(cat "$INTEROP_STAMP" 2>/dev/null || true)" != "$INTEROP_PINS" ]; then
  echo "== installing $INTEROP_PINS"
  python -m pip install --quiet --disable-pip-version-check $INTEROP_PINS
  echo "$INTEROP_PINS" > "$INTEROP_STAMP"
fi
echo "== cargo build (prompt-registry, mock-llm-server) for tests/interop"
cargo build --quiet -p prompt-http --bin prompt-registry \
  -p prompt-providers --features prompt-providers/mock-server --bin mock-llm-server
echo "== pytest tests/interop (openai, langfuse clients)"
python -m pytest -q -p no:cacheprovider tests/interop

# pytest last, so its summary line closes the run.
echo "== pytest"
python -m pytest -q prompt-py/tests
