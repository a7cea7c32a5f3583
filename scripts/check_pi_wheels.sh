#!/usr/bin/env bash
# Check that every runtime dependency installs on a Raspberry Pi (Raspberry Pi OS 12, aarch64, Python 3.11,
# glibc 2.36) from a binary wheel, or is pure Python. Downloads into a temporary folder; prints one line a package.
set -euo pipefail
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
platforms=(manylinux_2_36_aarch64 manylinux_2_35_aarch64 manylinux_2_34_aarch64 manylinux_2_31_aarch64
           manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64 linux_aarch64 any)
args=(--quiet --no-deps --only-binary=:all: --dest "$dest" --python-version 3.11 --implementation cp --abi cp311)
for p in "${platforms[@]}"; do args+=(--platform "$p"); done
# The runtime dependencies of pyproject.toml and theirs (vosk: cffi, requests, tqdm, websockets, srt).
packages=("pyyaml>=6.0" "numpy>=1.24" "pyttsx3>=2.99" "sounddevice>=0.4.6" "vosk>=0.3.45" "pocketsphinx>=5.0.3"
          "soxr>=0.3" "pyopen-wakeword>=1.1,<2" cffi pycparser requests tqdm websockets)
status=0
for package in "${packages[@]}"; do
  if pip download "${args[@]}" "$package" >/dev/null 2>&1; then
    echo "wheel  $package"
  else
    echo "NONE   $package"; status=1
  fi
done
pip download --quiet --no-deps --dest "$dest" srt >/dev/null 2>&1 && echo "pure   srt (sdist, pure Python)"
ls "$dest"
exit $status
