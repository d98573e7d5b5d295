#!/usr/bin/env bash
# The array API standard's own conformance suite (../shared/array-api-tests, data-apis/array-api-tests)
# against the `tracejit` namespace with 32-bit dtypes (jax's x64 mode off). Tests that cannot pass
# are listed, each under its reason, in tests/conformance/array_api_xfails.txt; any other failure
# fails this script. ARRAY_API_TESTS_X64=1 adds a second run with every dtype (JAX_ENABLE_X64=1);
# it does not pass yet (the default dtypes under x64 disagree with the namespace info), so CI
# leaves it out.
#
#   usage (from the project root, venv active, `pip install -e ".[conformance]"`):
#     bash tests/conformance/run.sh [extra pytest args...]
#   env: ARRAY_API_TESTS_DIR (default ../shared/array-api-tests), MAX_EXAMPLES (default 20)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
suite=${ARRAY_API_TESTS_DIR:-$root/../shared/array-api-tests}
xfails=$root/tests/conformance/array_api_xfails.txt
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
export MAX_EXAMPLES=${MAX_EXAMPLES:-20}
export ARRAY_API_TESTS_MODULE=tracejit
status=0
echo "array-api-tests: 32-bit dtypes (x64 off), $MAX_EXAMPLES examples"
ARRAY_API_TESTS_SKIP_DTYPES=int64,uint64,float64,complex128 JAX_ENABLE_X64=0 \
  bash "$suite/run.sh" --xfails-file "$xfails" "$@" || status=1
if [ "${ARRAY_API_TESTS_X64:-0}" = 1 ]; then
  echo "array-api-tests: all dtypes (JAX_ENABLE_X64=1), $MAX_EXAMPLES examples"
  JAX_ENABLE_X64=1 bash "$suite/run.sh" --xfails-file "$xfails" "$@" || status=1
fi
exit $status
