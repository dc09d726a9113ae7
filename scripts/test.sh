#!/usr/bin/env bash
# The test command: installs what the tests need, builds, and runs the whole test suite.
# Pass extra `dotnet test` arguments after it, e.g. --filter "Category!=Slow".
#
# The suite can run as several `dotnet test` processes over disjoint sets of test classes
# (REVERIE_TEST_PROCESSES=N; two by default on two cores or more, see below), balanced by the measured times in
# tests/timings.tsv; a class not named there runs in the last process. Each process runs its tests
# one at a time (TorchSharp's temporary-Scalar race is inside one process: Infrastructure/Serial.cs)
# with the machine's cores shared out among the processes (libtorch's threads, OMP_NUM_THREADS).
# At the end: the failures, the ten slowest tests, any test over the per-test budget
# (REVERIE_TEST_BUDGET, 120 s), each process's time, and the closing line. The measured times of
# this run are in TestResults/timings.tsv: copy it over tests/timings.tsv to rebalance.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
dotnet build Reverie.slnx -c Release -nologo -v q
rm -rf TestResults
mkdir -p TestResults
# The test host has 90 s to connect by default: too little on a machine whose cores other work keeps busy.
export VSTEST_CONNECTION_TIMEOUT="${VSTEST_CONNECTION_TIMEOUT:-600}"

cores=$(nproc)
# Two processes by default on two cores or more (measured in docs/testing.md); each test process
# gives its memory back between tests (tests/Reverie.Tests/Infrastructure/Memory.cs), which the
# two-process runs needed: without it one process reached 15.5 GB and the kernel's reclaim slowed both.
default_processes=1; [ "$cores" -ge 2 ] && default_processes=2
processes="${REVERIE_TEST_PROCESSES:-$default_processes}"
budget="${REVERIE_TEST_BUDGET:-120}"
threads=$(( cores / processes )); [ "$threads" -lt 1 ] && threads=1
# libtorch's threads in the test processes (Infrastructure/Threads.cs) and in the CLI processes they start.
export REVERIE_TEST_THREADS="$threads" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads"
# Each test's resident memory, and the release above REVERIE_TEST_RSS_MB (Infrastructure/Memory.cs).
export REVERIE_TEST_MEMORY_LOG="$PWD/TestResults"

# A --filter among the arguments is combined with each process's own.
user_filter=""
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--filter" ] && [ $# -ge 2 ]; then user_filter="$2"; shift 2; else args+=("$1"); shift; fi
done
mapfile -t filters < <(python3 scripts/test-shards.py split "$processes" tests/timings.tsv)

start=$(date +%s)
pids=()
for k in $(seq 1 "$processes"); do
  filter="${filters[$((k - 1))]}"
  [ -n "$user_filter" ] && filter="($user_filter)&($filter)"
  (
    set +e
    dotnet test tests/Reverie.Tests -c Release --no-build -nologo --blame \
      --results-directory "TestResults/process-$k" \
      --logger "trx;LogFileName=tests.trx" --logger "console;verbosity=normal" \
      --filter "$filter" "${args[@]}" > "TestResults/process-$k.log" 2>&1
    echo $? > "TestResults/process-$k.status"
  ) &
  pids+=($!)
  # Each line as it comes, marked with its process.
  tail -n +1 --pid=$! -F "TestResults/process-$k.log" 2>/dev/null | sed -u "s/^/[$k] /" &
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
wait  # the tails, which end with their processes
wall=$(( $(date +%s) - start ))

status=0
for k in $(seq 1 "$processes"); do
  s=$(cat "TestResults/process-$k.status" 2>/dev/null || echo 1)
  if [ "$s" != 0 ]; then
    status=1
    echo "test process $k exited with $s"
    # A crashed test host names the test it was running in its blame sequence file.
    find "TestResults/process-$k" -name 'Sequence_*.xml' -exec sh -c 'echo "last tests started in $1:"; tail -c 600 "$1"; echo' _ {} \; 2>/dev/null || true
  fi
done
if [ -f TestResults/onnx-conformance.md ]; then
  echo "ONNX node conformance (Debian libonnx-testdata), pass count per op:"
  cat TestResults/onnx-conformance.md
fi
if grep -qE '^[[:space:]]+Failed [A-Za-z_]' TestResults/process-*.log; then
  # CI shows only the tail of its output: repeat each failure's name, message and the top of its stack here.
  echo "Failed tests (name, message, top of the stack):"
  for k in $(seq 1 "$processes"); do
    awk -v k="$k" '/^[[:space:]]+Failed [A-Za-z_]/ { n = 40 } n > 0 { print "[" k "] " $0; n-- }' "TestResults/process-$k.log" | cut -c1-400
  done
fi
# Each test process's peak resident memory, and the tests after which it held the most.
for f in TestResults/memory-*.tsv; do
  [ -f "$f" ] || continue
  echo "test process ${f#TestResults/memory-}: peak $(cut -f5 "$f" | sort -n | tail -1) MB resident; most held after a test (MB after it, after the release):"
  sort -t$'\t' -k3 -nr "$f" | head -3 | awk -F'\t' '{ printf "  %6d %6d  %s\n", $3, $4, $1 }'
done
mapfile -t trx < <(find TestResults -name 'tests.trx' | sort)
python3 scripts/test-shards.py report "$wall" "$budget" TestResults/timings.tsv "${trx[@]}" | tee TestResults/summary.txt
failed=$(tail -1 TestResults/summary.txt | sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p')
[ "${failed:-1}" != 0 ] && status=1
exit "$status"
