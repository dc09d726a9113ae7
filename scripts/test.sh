#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs the whole test suite.
# Pass extra `dotnet test` arguments after it, e.g. --filter "Category!=Slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
dotnet build Reverie.slnx -c Release -nologo -v q
mkdir -p TestResults
# The test host has 90 s to connect by default: too little on a machine whose cores other work keeps busy.
export VSTEST_CONNECTION_TIMEOUT="${VSTEST_CONNECTION_TIMEOUT:-600}"
set +e
dotnet test tests/Reverie.Tests -c Release --no-build -nologo --blame --logger "console;verbosity=normal" "$@" 2>&1 | tee TestResults/dotnet-test.log
status=${PIPESTATUS[0]}
set -e
if [ -f TestResults/onnx-conformance.md ]; then
  echo "ONNX node conformance (Debian libonnx-testdata), pass count per op:"
  cat TestResults/onnx-conformance.md
fi
passed=$(grep -E '^\s+Passed:\s+[0-9]+' TestResults/dotnet-test.log | tail -1 | grep -oE '[0-9]+' || echo 0)
failed=$(grep -E '^\s+Failed:\s+[0-9]+' TestResults/dotnet-test.log | tail -1 | grep -oE '[0-9]+' || echo 0)
if [ "$failed" != 0 ]; then
  # CI shows only the tail of its output: repeat each failure's name, message and the top of its stack here.
  echo "Failed tests (name, message, top of the stack):"
  awk '/^[[:space:]]+Failed [A-Za-z_]/ { n = 40 } n > 0 { print; n-- }' TestResults/dotnet-test.log | cut -c1-400
fi
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
