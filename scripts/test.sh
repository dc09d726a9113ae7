#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs the whole test suite.
# Pass extra `dotnet test` arguments after it, e.g. --filter "Category!=Slow".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
dotnet build Reverie.slnx -c Release -nologo -v q
dotnet test tests/Reverie.Tests -c Release --no-build -nologo --logger "console;verbosity=normal" "$@"
if [ -f TestResults/onnx-conformance.md ]; then
  echo "ONNX node conformance (Debian libonnx-testdata), pass count per op:"
  cat TestResults/onnx-conformance.md
fi
