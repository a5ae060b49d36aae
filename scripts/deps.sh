#!/usr/bin/env bash
# Install what sedx needs to build, test and run its demo on Debian (apt-get),
# only where something is missing; arguments name extra packages (bench.sh: sqlite3).
set -euo pipefail
pkgs=(openssh-server openssh-client libxml2-dev libxml2-utils libssl-dev pkg-config python3 gcc make chromium chromium-driver fonts-wqy-microhei openssl postgresql "$@")
need=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "deps.sh: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps.sh: cargo not found; install Rust (rustup) first" >&2; exit 1; }
