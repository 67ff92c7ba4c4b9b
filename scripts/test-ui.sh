#!/usr/bin/env bash
# The console's tests: the typed client against the committed OpenAPI document, lint,
# type check, component tests (Vitest), the committed production bundle against a fresh
# build of the sources, the bundle-size budget, then the end-to-end flow in Chromium
# against a real `prompt-registry serve` (prompt-ui/e2e/run.mjs).
#
# Chromium: Debian's /usr/bin/chromium (or CHROMIUM_PATH). Without it the browser tests
# say SKIPPED, unless PROMPT_REGISTRY_REQUIRE_BROWSER=1 (as in CI), which makes it fatal.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null 2>&1; then
  echo "FATAL: npm (Node.js >= 20.19) is needed for the console's tests" >&2
  exit 1
fi

cd prompt-ui
echo "== console: npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== console: typed client matches src/api/openapi.json"
npm run -s check:api
echo "== console: lint and type check"
npm run -s lint
npm run -s typecheck
echo "== console: component tests"
npm test --silent

echo "== console: the committed dist/ is the build of these sources"
rebuilt="$(mktemp -d)"
trap 'rm -rf "$rebuilt"' EXIT
npx vite build --outDir "$rebuilt" --emptyOutDir --logLevel error
if ! diff -r dist "$rebuilt" >/dev/null; then
  diff -r dist "$rebuilt" | head -20 >&2
  echo "FATAL: prompt-ui/dist is not the build of prompt-ui/src: run \`npm run build\` in prompt-ui and commit dist/" >&2
  exit 1
fi
echo "== console: bundle budget"
npm run -s check:bundle

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  if [ "${PROMPT_REGISTRY_REQUIRE_BROWSER:-0}" = "1" ]; then
    echo "FATAL: no Chromium at $chromium (apt-get install chromium)" >&2
    exit 1
  fi
  echo "note: no Chromium at $chromium: the console's browser tests are SKIPPED (apt-get install chromium)" >&2
  exit 0
fi
echo "== console: end to end in Chromium"
(cd .. && cargo build -q --bin prompt-registry)
npm run -s e2e
