#!/usr/bin/env bash
# Installs the Debian 12 packages hidream.c builds and tests with, then the test-only Python
# clients from PyPI into build-venv/ (the official `openai` client and the AUTOMATIC1111 client
# `webuiapi`, used by tests/serve_clients.py, and `gguf`, whose reference block (de)quantizer
# tests/quant_parity.py compares with; never a runtime dependency) when called with --test
# (test.sh does; run.sh does not, so building and running needs no PyPI). Idempotent; the apt
# part needs root (or sudo).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libjansson-dev libpcre2-dev libutf8proc-dev libpng-dev libjpeg-dev libwebp-dev
      libmicrohttpd-dev libcurl4-openssl-dev chromium chromium-driver python3-selenium
      python3 python3-pil python3-numpy python3-venv)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

[ "${1:-}" = "--test" ] || exit 0
# Test-only Python packages (PyPI), pinned, in a virtualenv at the source root that every build
# directory's ctest uses (build/, build-asan/, ...).
venv="$root/build-venv"
py_pins=(openai==3.63.0 webuiapi==0.9.17 gguf==0.19.0)
have_pins() {
  [ -x "$venv/bin/python" ] || return 1
  local frozen
  frozen="$("$venv/bin/python" -m pip freeze 2>/dev/null)" || return 1
  for pin in "${py_pins[@]}"; do
    grep -qix "$pin" <<<"$frozen" || return 1
  done
}
if ! have_pins; then
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${py_pins[@]}"
fi
