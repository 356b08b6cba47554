#!/usr/bin/env bash
# The workspace test command (`npm test`).
#
#   bash tools/test/run-all.sh [FILTER...]
#
# 1. Builds first when node_modules is missing or stale or the native / TypeScript build is
#    missing (tools/setup.sh --no-main --no-apt-if-present), so a fresh clone works; then
#    always runs the incremental `tsc -b` so the tests never run stale JavaScript.
# 2. Runs the module-boundary lint (tools/lint/boundaries.mjs).
# 3. Runs every test file (tools/test/discover.mjs: dist/**/*.test.js of each workspace
#    package, tools/**/*.test.mjs), or only those whose path contains a FILTER, with node's
#    test runner: spec output, at most 2 files at a time, a timeout per file.
# 4. Ends with one line, `N passed, N failed, N skipped` (tools/test/summary-reporter.mjs).
# Exits non-zero when a test, the lint, the build or the setup failed, or when no test ran.
#
# Environment: BERTH_TEST_TIMEOUT_MS (per file, default 300000), BERTH_TEST_CONCURRENCY (default 2).

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

TIMEOUT_MS=${BERTH_TEST_TIMEOUT_MS:-300000}
CONCURRENCY=${BERTH_TEST_CONCURRENCY:-2}
problems=()
summary=$(mktemp "${TMPDIR:-/tmp}/berth-test-summary.XXXXXX")
trap 'rm -f "$summary"' EXIT

finish() {
  # $1: the summary line. Notes first, the summary line last.
  local line=$1 code=0
  for p in "${problems[@]}"; do echo "✖ $p"; code=1; done
  read -r passed _ failed _ _ <<<"${line//,/}"
  if [[ ${failed:-0} != 0 ]]; then code=1; fi
  if [[ ${passed:-0} == 0 && ${failed:-0} == 0 && -z ${counts_unknown:-} ]]; then
    echo "✖ no test ran"
    code=1
  fi
  echo "$line"
  exit "$code"
}

# 1. build
setup_ran=0
drift=$(node tools/test/build-state.mjs lock-drift)
if [[ -n $drift ]]; then
  echo "warning: package-lock.json does not match (run npm install and commit package-lock.json):"
  sed 's/^/  /' <<<"$drift"
fi
reasons=$(node tools/test/build-state.mjs needs-setup)
case $? in
  0) ;;
  10)
    echo "build needed:"
    sed 's/^/  /' <<<"$reasons"
    setup_ran=1
    if ! bash tools/setup.sh --no-main --no-apt-if-present; then
      problems+=("tools/setup.sh failed (see above); running what can run")
    fi
    ;;
  *) problems+=("tools/test/build-state.mjs failed") ;;
esac

# setup's own TypeScript step already ran tsc -b (and showed its errors)
if [[ $setup_ran -eq 0 ]]; then
  if [[ -x node_modules/.bin/tsc ]]; then
    if ! node_modules/.bin/tsc -b; then
      problems+=("TypeScript build failed (tsc -b, see above); the tests ran on what it emitted")
    fi
    # the CLI bundles (bin/berth and bin/berth-runtime run dist/src when one is missing or stale)
    if ! node tools/bundle/bundle.mjs apps/berth apps/berth-runtime; then
      problems+=("CLI bundle failed (node tools/bundle/bundle.mjs apps/berth apps/berth-runtime, see above)")
    fi
  else
    problems+=("node_modules/.bin/tsc is missing: the TypeScript build did not run")
  fi
fi
native=$(node tools/test/build-state.mjs native)
case $native in
  stale*) echo "note: the native build is older than ${native#stale: }; run npm run build:native to rebuild it" ;;
  unbuildable*) echo "note: libs/native is not buildable yet (${native#unbuildable: } missing); tests that need it will fail or skip" ;;
esac

# 2. lint
if ! node tools/lint/boundaries.mjs; then
  problems+=("module-boundary lint failed (see above)")
fi

# 3. tests
mapfile -t files < <(node tools/test/discover.mjs "$@")
if [[ ${#files[@]} -eq 0 ]]; then
  echo "no test files${*:+ match: $*}"
  finish "0 passed, 0 failed, 0 skipped"
fi
echo "running ${#files[@]} test files (concurrency $CONCURRENCY, timeout ${TIMEOUT_MS} ms per file)"

# The tests must not think they run under another test runner.
unset NODE_TEST_CONTEXT
node --test \
  --test-concurrency="$CONCURRENCY" \
  --test-timeout="$TIMEOUT_MS" \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=./tools/test/summary-reporter.mjs --test-reporter-destination="$summary" \
  "${files[@]}"
rc=$?

line=$(tail -n 1 "$summary")
if [[ ! $line =~ ^[0-9]+\ passed,\ [0-9]+\ failed,\ [0-9]+\ skipped$ ]]; then
  problems+=("node --test exited with status $rc before the summary reporter finished; counts unknown")
  counts_unknown=1
  finish "0 passed, 0 failed, 0 skipped"
fi
if [[ $rc -ne 0 ]]; then
  read -r _ _ failed_count _ <<<"${line//,/}"
  if [[ $failed_count == 0 ]]; then problems+=("node --test exited with status $rc"); fi
fi
finish "$line"
