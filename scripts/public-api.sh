#!/usr/bin/env bash
# Adds every public symbol the build reports as undeclared (RS0016) to
# src/Reverie/PublicAPI.Unshipped.txt, from the analyzer's own API names in a SARIF log.
# Run it when the library's public surface changes on purpose, then review the diff; when a
# version is released, move the Unshipped lines into PublicAPI.Shipped.txt. A removed or changed
# symbol (RS0017) has its old line deleted by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
api=src/Reverie/PublicAPI.Unshipped.txt
log=$(mktemp --suffix=.sarif)
trap 'rm -f "$log"' EXIT
for round in 1 2 3; do
  dotnet build src/Reverie -c Debug -nologo -v q "-p:ErrorLog=${log}%2Cversion=2.1" >/dev/null 2>&1 || true
  added=$(python3 - "$log" "$api" <<'PY'
import json, sys
log, api = sys.argv[1], sys.argv[2]
names = {r["properties"]["customProperties"]["APIName"]
         for run in json.load(open(log))["runs"] for r in run.get("results", [])
         if r["ruleId"] == "RS0016" and "APIName" in r.get("properties", {}).get("customProperties", {})}
lines = [l.rstrip("\n") for l in open(api)]
head = [l for l in lines if l.startswith("#")]
body = sorted(set(l for l in lines if l and not l.startswith("#")) | names, key=lambda s: s.lstrip("~").split(" ", 1)[-1] if False else s)
open(api, "w").write("\n".join(head + body) + "\n")
print(len(names))
PY
)
  echo "round $round: $added symbols added"
  [ "$added" = "0" ] && break
done
grep -cv '^#' "$api" | xargs echo "declared public API lines:"
