#!/usr/bin/env bash
# Set up whatever is missing for voicecoach on Debian 12 / Raspberry Pi OS: apt packages, a venv in .venv,
# and the Python packages. Safe to run again: it only installs what is missing.
#   scripts/bootstrap.sh          runtime needs
#   scripts/bootstrap.sh --test   plus what the test suite needs (virtual audio server, a second TTS engine)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_apt=(python3-venv python3-dev espeak-ng libespeak-ng1 libportaudio2 libspeexdsp1)
test_apt=(pulseaudio pulseaudio-utils libasound2-plugins flite sox shellcheck)
extras=""
apt_wanted=("${runtime_apt[@]}")
if [[ ${1:-} == --test ]]; then
  apt_wanted+=("${test_apt[@]}")
  extras="[test,train]"
fi

missing=()
for pkg in "${apt_wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "voicecoach setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  echo "voicecoach setup: creating .venv" >&2
  python3 -m venv .venv
fi
stamp=".venv/.voicecoach-installed$extras"
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
  echo "voicecoach setup: installing Python packages$extras" >&2
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".$extras"
  touch "$stamp"
fi
