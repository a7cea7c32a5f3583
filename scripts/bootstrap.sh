#!/usr/bin/env bash
# Set up whatever is missing for voicecoach on Debian 12 / Raspberry Pi OS: apt packages, a venv in .venv,
# and the Python packages. Safe to run again: it only installs what is missing.
#   scripts/bootstrap.sh          runtime needs
#   scripts/bootstrap.sh --test   plus what the test suite and training need (virtual audio server, the other
#                                 TTS engines and voices; the Pico and RHVoice voices are in Debian's non-free
#                                 component, which this enables on Debian when no source offers them)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_apt=(python3-venv python3-dev espeak-ng libespeak-ng1 libportaudio2 libspeexdsp1)
test_apt=(pulseaudio pulseaudio-utils libasound2-plugins flite sox shellcheck
          festival festvox-kdlpc16k festvox-us-slt-hts festvox-kallpc16k festvox-rablpc16k festvox-don)
nonfree_apt=(libttspico-utils rhvoice rhvoice-english)
extras=""
apt_wanted=("${runtime_apt[@]}")
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
if [[ ${1:-} == --test ]]; then
  apt_wanted+=("${test_apt[@]}" "${nonfree_apt[@]}")
  extras="[test,train]"
  # Debian ships only "main" by default; Raspberry Pi OS already lists non-free.
  if ! apt-cache policy libttspico-utils 2>/dev/null | grep -q "Candidate: [0-9]" \
      && [[ -f /etc/apt/sources.list.d/debian.sources ]] && ! dpkg-query -W libttspico-utils >/dev/null 2>&1; then
    codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
    echo "voicecoach setup: enabling Debian's contrib and non-free components (Pico and RHVoice voices)" >&2
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: %s\n' \
      "$codename" /usr/share/keyrings/debian-archive-keyring.gpg |
      "${sudo_cmd[@]}" tee /etc/apt/sources.list.d/voicecoach-non-free.sources >/dev/null
  fi
fi

missing=()
for pkg in "${apt_wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "voicecoach setup: installing ${missing[*]}" >&2
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
