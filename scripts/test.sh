#!/usr/bin/env bash
# The whole test suite: Rust (every crate, every backend), the web console (component
# tests and end to end in Chromium) and the Python module's pytest suite. This is the
# command the README gives and .ci/run calls.
#
# Postgres: set PROMPT_REGISTRY_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test)
# to run the Postgres backend's tests; without it they are skipped and say so.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${PROMPT_REGISTRY_TEST_POSTGRES_URL:-}" ]; then
  echo "note: PROMPT_REGISTRY_TEST_POSTGRES_URL is not set: Postgres tests will be SKIPPED" >&2
fi

echo "== cargo test --workspace"
cargo test --workspace --all-targets
cargo test --workspace --doc

echo "== console tests"
scripts/test-ui.sh

if [ -x scripts/test-python.sh ]; then
  echo "== python tests"
  scripts/test-python.sh
fi
