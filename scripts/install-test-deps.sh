#!/usr/bin/env bash
# Installs, idempotently, the Debian packages the tests need: the ONNX node conformance data,
# Debian's PyTorch, torchvision and onnx (the peers used as oracles), DejaVu fonts for the
# labels of plots, ffmpeg (video in and out), Fashion-MNIST (dataset-fashion-mnist, for training and its tests), and Debian's chromium with
# chromium-driver (the studio's end-to-end test drives a real browser through Selenium). Safe to run again.
set -euo pipefail
pkgs=(libonnx-testdata python3-torch python3-torchvision python3-onnx time fonts-dejavu-core ffmpeg dataset-fashion-mnist chromium chromium-driver curl slurm-wlm munge nodejs)
missing=()
for p in "${pkgs[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"install ok installed"* ]] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Kubernetes Job validator (kubernetes-models: the Kubernetes OpenAPI schemas, offline), pinned by its lock file.
k8s="$(cd "$(dirname "$0")/.." && pwd)/tests/scripts/k8s"
if [ ! -d "$k8s/node_modules/kubernetes-models" ]; then
  (cd "$k8s" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
