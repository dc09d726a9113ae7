#!/usr/bin/env bash
# Packs the library (Reverie) and the .NET tool (Reverie.Cli, command `reverie`) into a local
# folder, installs the tool from there into a temporary tool path, and runs it as a user would:
# `reverie --version`, a tiny dream with the built-in textures model (no download), a tiny dreamed
# video, and its studio.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
studio=
trap '[ -n "$studio" ] && kill "$studio" 2>/dev/null; rm -rf "$work"' EXIT
dotnet pack Reverie.slnx -c Release -o "$work/packages" -nologo -v q >/dev/null
ls "$work/packages"/Reverie.*.nupkg "$work/packages"/Reverie.Cli.*.nupkg >/dev/null
version=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Directory.Build.props)
dotnet tool install Reverie.Cli --version "$version" --add-source "$work/packages" --tool-path "$work/tools" >/dev/null
"$work/tools/reverie" --version
REVERIE_CACHE="$work/cache" REVERIE_REGISTRY="$work/models.json" \
  "$work/tools/reverie" dream examples/coffee.png -m textures --layer conv6 --octaves 2 --steps 3 --max-size 128 -o "$work/dream.png" 2>/dev/null
test -s "$work/dream.png"
# A tiny video through the installed tool: ffmpeg in and out, and OpenCV's native flow library from the package.
ffmpeg -v error -f lavfi -i testsrc=size=96x64:rate=4 -frames:v 4 -pix_fmt yuv420p "$work/v.mp4"
REVERIE_CACHE="$work/cache" REVERIE_REGISTRY="$work/models.json" \
  "$work/tools/reverie" dream "$work/v.mp4" -m textures --layer conv6 --octaves 1 --steps 2 -o "$work/v-dream.mp4" 2>/dev/null
test -s "$work/v-dream.mp4"
# The studio from the installed tool: its pages and its SQLite queue come along in the package.
REVERIE_CACHE="$work/cache" REVERIE_REGISTRY="$work/models.json" \
  "$work/tools/reverie" studio --port 0 --data "$work/studio" > "$work/studio.log" 2>&1 &
studio=$!
for _ in $(seq 1 100); do grep -q "^Reverie studio: " "$work/studio.log" && break; sleep 0.2; done
url=$(sed -n 's/^Reverie studio: //p' "$work/studio.log")
# Read each page whole before matching: `curl | grep -q` fails under pipefail (curl exit 23) when grep stops early.
page=$(curl -sf "${url}")
grep -q "<title>Reverie studio</title>" <<<"$page"
jobs=$(curl -sf "${url}api/jobs")
test "$jobs" = "[]"
kill "$studio"; wait "$studio" || true; studio=
test -f "$work/studio/studio.db"
echo "pack check: Reverie $version and the reverie tool packed, installed, dreamed a photo and a video, and opened its studio"
