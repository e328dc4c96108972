#!/usr/bin/env bash
# Installs the Debian packages cvision needs to build, test and run its demo.
# Idempotent: installs only what is missing, so it is cheap to call before every build.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libdnnl-dev                      # CPU kernels (oneDNN)
  libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev
  libzip-dev libsqlite3-dev libcurl4-openssl-dev libcjson-dev libssl-dev
  libopenmpi-dev openmpi-bin
  dataset-fashion-mnist            # the embedded default dataset (real data, no network)
  python3-torch python3-torchvision python3-numpy python3-sklearn python3-scipy  # test references only
  chromium                         # renders the HTML report in its test (headless)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
