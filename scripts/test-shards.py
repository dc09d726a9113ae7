#!/usr/bin/env python3
"""Splits the test suite over processes, and reports what the suite cost.

  test-shards.py split P TIMINGS
    Prints P test filters, one a line, for P `dotnet test` processes: the test classes named in
    TIMINGS (seconds, class, tests; one a line) dealt longest first to the process with the least
    time so far. The last filter is "every class the others do not name", so a class missing from
    TIMINGS (a new one) still runs, once.
  test-shards.py report WALL_SECONDS BUDGET_SECONDS TIMINGS_OUT TRX [TRX ...]
    Reads the processes' TRX files. Prints the counts, the wall time, the ten slowest tests, every test over the per-test budget and
each process's share; writes TIMINGS_OUT, one line per test class: its summed seconds, its name
and its test count (scripts/test.sh balances its processes by such a file, tests/timings.tsv).
Its last line is the closing line 'tests: N passed, N failed, N skipped'.
"""
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def seconds(duration):
    """A TRX duration 'hh:mm:ss.fffffff' in seconds."""
    h, m, s = duration.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def split(processes, timings):
    classes = []
    with open(timings) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[1] and parts[1] != "?":
                classes.append((float(parts[0]), parts[1]))
    bins = [[0.0, []] for _ in range(processes)]
    for s, cls in sorted(classes, reverse=True):
        b = min(bins, key=lambda b: b[0])
        b[0] += s
        b[1].append(cls)
    # A trailing dot: the class itself, not another whose name starts the same.
    named = [c for b in bins[:-1] for c in b[1]]
    for b in bins[:-1]:
        print("|".join(f"FullyQualifiedName~{c}." for c in b[1]) or "FullyQualifiedName=none")
    print("&".join(f"FullyQualifiedName!~{c}." for c in named) or "FullyQualifiedName!=none")


def report(args):
    wall, budget, timings_out, trx_files = float(args[0]), float(args[1]), args[2], args[3:]
    tests = []  # (seconds, class, name, outcome, process)
    for k, path in enumerate(trx_files):
        try:
            root = ET.parse(path).getroot()
        except (OSError, ET.ParseError) as e:
            print(f"test report: {path} could not be read ({e}); that process's tests are not counted")
            continue
        classes = {}
        for d in root.iterfind(".//t:UnitTest", NS):
            m = d.find("t:TestMethod", NS)
            classes[d.get("id")] = m.get("className") if m is not None else "?"
        for r in root.iterfind(".//t:UnitTestResult", NS):
            cls = classes.get(r.get("testId"), "?")
            tests.append((seconds(r.get("duration", "0:0:0")), cls, r.get("testName"), r.get("outcome"), k + 1))

    passed = sum(1 for t in tests if t[3] == "Passed")
    failed = sum(1 for t in tests if t[3] not in ("Passed", "NotExecuted"))
    skipped = sum(1 for t in tests if t[3] == "NotExecuted")
    busy = sum(t[0] for t in tests)
    print(f"Test time: {wall:.0f} s wall, {busy:.0f} s of tests in {len(trx_files)} processes")
    for k in range(1, len(trx_files) + 1):
        mine = [t for t in tests if t[4] == k]
        print(f"  process {k}: {len(mine)} tests, {sum(t[0] for t in mine):.0f} s")

    print("The ten slowest tests:")
    for t in sorted(tests, reverse=True)[:10]:
        print(f"  {t[0]:7.1f} s  {t[2]}")
    over = [t for t in tests if t[0] > budget]
    if over:
        print(f"Over the per-test budget of {budget:.0f} s:")
        for t in sorted(over, reverse=True):
            print(f"  {t[0]:7.1f} s  {t[2]}")
    else:
        print(f"No test over the per-test budget of {budget:.0f} s.")

    per_class = defaultdict(lambda: [0.0, 0])
    for t in tests:
        per_class[t[1]][0] += t[0]
        per_class[t[1]][1] += 1
    with open(timings_out, "w") as f:
        for cls, (s, n) in sorted(per_class.items(), key=lambda kv: -kv[1][0]):
            f.write(f"{s:.1f}\t{cls}\t{n}\n")
    print(f"tests: {passed} passed, {failed} failed, {skipped} skipped")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "split":
        split(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) >= 5 and sys.argv[1] == "report":
        report(sys.argv[2:])
    else:
        sys.exit(__doc__)
