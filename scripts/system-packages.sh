#!/usr/bin/env bash
# Debian packages discern needs, installed only when missing (idempotent, fast when present).
set -euo pipefail
need=()
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
command -v git >/dev/null 2>&1 || need+=(git)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)  # text-to-speech for Electric's n-best lists
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # headless browser tests of the web applications
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO=sudo
if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
# `apt-get download` (used by the data registry for Debian-packaged datasets) needs package lists
if ! apt-cache show dataset-fashion-mnist >/dev/null 2>&1; then
  $SUDO apt-get update -qq || echo "warning: apt-get update failed; Debian-packaged datasets may be unavailable"
fi
