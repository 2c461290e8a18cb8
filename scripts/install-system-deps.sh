#!/usr/bin/env bash
# Install the Debian packages OpenPERS needs, if they are missing:
#   mosquitto  the embedded default MQTT broker that `pers` starts and supervises
#   chromium   the headless browser the console tests drive (never downloaded by Playwright)
#   postgresql the scale-out store; the tests run the cloud on it as well as on SQLite
# Usage: scripts/install-system-deps.sh mosquitto [chromium ...]
set -euo pipefail

declare -A binary=( [mosquitto]=/usr/sbin/mosquitto [chromium]=/usr/bin/chromium [postgresql]=/usr/lib/postgresql/15/bin/initdb )
missing=()
for pkg in "$@"; do
  bin="${binary[$pkg]:-}"
  if [[ -n "$bin" && -x "$bin" ]] || dpkg -s "$pkg" >/dev/null 2>&1; then continue; fi
  missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing system packages: ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
  echo "need root (or sudo) to apt-get install: ${missing[*]}" >&2; exit 1; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
