#!/usr/bin/env bash
# Install voicecoach from this checkout as a systemd user service, on Raspberry Pi OS 12 (bookworm, PipeWire) or
# Debian 12. Run it as the user who will do the stretches (not as root); it uses sudo for apt only.
#
#   scripts/install-pi.sh                 apt packages, the venv, the service (enabled, started, runs at boot)
#   scripts/install-pi.sh --echo-cancel   the same, plus PipeWire's WebRTC echo canceller for voicecoach
#   scripts/install-pi.sh --uninstall     remove the service, the echo-canceller config and the venv
#
# The service gets its own virtual environment, ~/.local/share/voicecoach/venv, with a normal (non-editable) install
# of this checkout: the service keeps working while the checkout is edited, tested, or its .venv rebuilt. Run this
# script again to install a newer checkout; it is idempotent and restarts the service only when something changed.
# History, models and config.toml are kept by --uninstall.
set -euo pipefail

checkout="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly checkout
readonly venv="$HOME/.local/share/voicecoach/venv" # the path ExecStart names in scripts/voicecoach.service
readonly config_home="${XDG_CONFIG_HOME:-$HOME/.config}"
readonly unit_name="voicecoach.service"
readonly unit_file="$config_home/systemd/user/$unit_name"
readonly unit_dropin_dir="$config_home/systemd/user/$unit_name.d"
readonly unit_echo_dropin="$unit_dropin_dir/echo-cancel.conf"
readonly pipewire_dropin="$config_home/pipewire/pipewire.conf.d/voicecoach-echo-cancel.conf"
user="$(id -un)"
readonly user
readonly ec_source="voicecoach-ec-source"
readonly ec_sink="voicecoach-ec-sink"
readonly apt_runtime=(python3-venv espeak-ng libespeak-ng1 libportaudio2 libspeexdsp1)
readonly apt_echo_cancel=(pipewire pipewire-pulse wireplumber libspa-0.2-modules libasound2-plugins)

changed=0 # set to 1 by put_file when a file was written

say() { printf 'voicecoach install: %s\n' "$*" >&2; }
warn() { printf 'voicecoach install: warning: %s\n' "$*" >&2; }
die() {
  printf 'voicecoach install: error: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# put_file DEST: write standard input to DEST unless it already has exactly that content; sets changed=1 if written.
put_file() {
  local dest=$1 tmp
  mkdir -p "$(dirname "$dest")"
  tmp="$(mktemp "$dest.XXXXXX")"
  cat >"$tmp"
  if [[ -f $dest ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
    say "unchanged: $dest"
  else
    chmod 0644 "$tmp"
    mv -f "$tmp" "$dest"
    changed=1
    say "wrote $dest"
  fi
}

check_user() {
  [[ $(id -u) -ne 0 ]] || die "run this as the user who will use voicecoach, not as root (it uses sudo for apt)"
  systemctl --user show-environment >/dev/null 2>&1 ||
    die "no systemd user session for $user: log in as $user directly (ssh or desktop), not through su or sudo"
}

check_platform() {
  local arch
  arch="$(uname -m)"
  case $arch in
    aarch64 | x86_64) ;;
    *) warn "$arch: vosk and pocketsphinx publish wheels for aarch64 and x86_64; use the 64-bit Raspberry Pi OS" ;;
  esac
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
    die "voicecoach needs Python 3.11 or newer as python3 (Debian 12 / Raspberry Pi OS 12 have it)"
}

# install_apt PACKAGE...: install the packages that are missing.
install_apt() {
  local missing=() pkg sudo_cmd=()
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    warn "not a Debian system: install these yourself if missing: $*"
    return
  fi
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    say "apt packages already installed: $*"
    return
  fi
  say "installing ${missing[*]} (sudo apt-get)"
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# source_hash: a hash of what pip would install from the checkout.
source_hash() {
  (cd "$checkout" && find pyproject.toml README.md voicecoach -type f ! -path '*/__pycache__/*' -print0 |
    sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

install_venv() {
  local stamp="$venv/.voicecoach-source" hash build
  if [[ -e $venv ]] && ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    say "the venv $venv is broken (was python3 upgraded?): recreating it"
    rm -rf "$venv"
  fi
  if [[ ! -x $venv/bin/python ]]; then
    say "creating the venv $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
  fi
  hash="$(source_hash)"
  if [[ -f $stamp && $(<"$stamp") == "$hash" ]] && "$venv/bin/voicecoach" --version >/dev/null 2>&1; then
    say "voicecoach in $venv is up to date with $checkout"
    return
  fi
  say "installing voicecoach from $checkout into $venv (pip; slow the first time on a Pi)"
  # Build from a clean copy: no build/ or egg-info left in the checkout, no stale files from an old build/.
  build="$(mktemp -d)"
  cp -r "$checkout/pyproject.toml" "$checkout/README.md" "$checkout/voicecoach" "$build/"
  find "$build" -name __pycache__ -prune -exec rm -rf {} +
  if ! "$venv/bin/python" -m pip install --quiet "$build"; then
    rm -rf "$build"
    die "pip could not install voicecoach (see above)"
  fi
  rm -rf "$build"
  "$venv/bin/voicecoach" --version >/dev/null || die "the installed voicecoach does not run: $venv/bin/voicecoach"
  printf '%s\n' "$hash" >"$stamp"
  changed=1
}

install_unit() {
  put_file "$unit_file" <"$checkout/scripts/voicecoach.service"
}

enable_linger() {
  if [[ $(loginctl show-user "$user" --property=Linger --value 2>/dev/null || true) == yes ]]; then
    say "lingering already on for $user (user services run from boot, without a login)"
    return
  fi
  say "turning lingering on for $user, so the service runs from boot without a login"
  loginctl enable-linger "$user" 2>/dev/null || sudo loginctl enable-linger "$user" ||
    die "could not run: loginctl enable-linger $user"
}

start_service() {
  systemctl --user daemon-reload
  systemctl --user enable "$unit_name" >/dev/null
  if ! "$venv/bin/voicecoach" serve --help >/dev/null 2>&1; then
    warn "this checkout has no \`voicecoach serve\` command yet: the service is enabled but not started"
    return
  fi
  if systemctl --user is-active --quiet "$unit_name"; then
    if ((changed)); then
      say "restarting $unit_name"
      systemctl --user restart "$unit_name"
    fi
  else
    say "starting $unit_name"
    systemctl --user reset-failed "$unit_name" 2>/dev/null || true
    systemctl --user start "$unit_name"
  fi
  sleep 2
  systemctl --user is-active --quiet "$unit_name" ||
    warn "$unit_name is not running; see: journalctl --user -u voicecoach -n 50"
}

# --- echo cancellation in PipeWire ------------------------------------------------------------------

write_echo_cancel() {
  command -v pipewire >/dev/null || die "--echo-cancel needs PipeWire (Raspberry Pi OS 12 has it); pipewire is missing"
  local before=$changed pipewire_changed
  changed=0
  put_file "$pipewire_dropin" <<EOF
# voicecoach: PipeWire's WebRTC echo canceller (written by scripts/install-pi.sh --echo-cancel; removed by --uninstall).
# Whatever is played into $ec_sink goes on to the default speaker and is removed from what the default
# microphone hears; $ec_source is that cleaned microphone.
context.modules = [
    {   name = libpipewire-module-echo-cancel
        args = {
            library.name = aec/libspa-aec-webrtc
            audio.channels = 1
            audio.position = [ MONO ]
            capture.props = { node.name = "voicecoach-ec-capture" }
            source.props = { node.name = "$ec_source" node.description = "voicecoach echo-cancelled microphone" }
            sink.props = { node.name = "$ec_sink" node.description = "voicecoach echo-cancel speaker" }
            playback.props = { node.name = "voicecoach-ec-playback" }
        }
    }
]
EOF
  pipewire_changed=$changed
  # PortAudio sees ALSA devices, not PipeWire nodes: its "pulse" device goes through pipewire-pulse, where
  # PULSE_SOURCE and PULSE_SINK choose the nodes, for this service only.
  put_file "$unit_echo_dropin" <<EOF
# voicecoach: use PipeWire's echo canceller (written by scripts/install-pi.sh --echo-cancel; removed by --uninstall).
# With input_device = "pulse" and output_device = "pulse" in config.toml, voicecoach records from $ec_source
# and plays into $ec_sink.
[Service]
Environment=PULSE_SOURCE=$ec_source PULSE_SINK=$ec_sink
EOF
  if ((pipewire_changed)); then
    say "restarting PipeWire to load the echo canceller"
    systemctl --user try-restart pipewire.service pipewire-pulse.service wireplumber.service
    sleep 2
  fi
  check_echo_nodes
  if ((before)); then changed=1; fi
}

check_echo_nodes() {
  command -v pw-cli >/dev/null || return 0
  if pw-cli ls Node 2>/dev/null | grep -q "\"$ec_source\""; then
    say "PipeWire has $ec_source and $ec_sink"
  else
    warn "PipeWire shows no $ec_source yet; see: journalctl --user -u pipewire -n 30"
  fi
}

print_echo_cancel_help() {
  cat >&2 <<EOF

Echo cancellation by PipeWire is set up. To have voicecoach use it, put this in $config_home/voicecoach/config.toml:

    [audio]
    input_device = "pulse"    # the service sets PULSE_SOURCE=$ec_source
    output_device = "pulse"   # the service sets PULSE_SINK=$ec_sink

    [echo]
    cancel = false            # PipeWire cancels the echo now; a second canceller would only add work

then: systemctl --user restart voicecoach
To run voicecoach by hand through the same nodes:
    PULSE_SOURCE=$ec_source PULSE_SINK=$ec_sink $venv/bin/voicecoach run lower-back
Check it with: $venv/bin/voicecoach doctor
EOF
}

# --- uninstall -------------------------------------------------------------------------------------

uninstall() {
  if [[ -f $unit_file ]] || systemctl --user is-enabled --quiet "$unit_name" 2>/dev/null; then
    say "stopping and disabling $unit_name"
    systemctl --user disable --now "$unit_name" >/dev/null 2>&1 || true
  fi
  rm -f "$unit_file" "$unit_echo_dropin"
  rmdir "$unit_dropin_dir" 2>/dev/null || true
  systemctl --user daemon-reload
  systemctl --user reset-failed "$unit_name" 2>/dev/null || true
  if [[ -f $pipewire_dropin ]]; then
    rm -f "$pipewire_dropin"
    say "removed the echo canceller; restarting PipeWire"
    systemctl --user try-restart pipewire.service pipewire-pulse.service wireplumber.service
  fi
  if [[ -d $venv ]]; then
    say "removing the venv $venv"
    rm -rf "$venv"
  fi
  say "voicecoach service removed. Kept: history and models in ~/.local/share/voicecoach, and $config_home/voicecoach"
  say "lingering stays on for $user (other user services may need it); to turn it off: loginctl disable-linger $user"
}

# --- main ------------------------------------------------------------------------------------------

main() {
  local echo_cancel=0 remove=0 arg
  for arg in "$@"; do
    case $arg in
      --echo-cancel) echo_cancel=1 ;;
      --uninstall) remove=1 ;;
      -h | --help)
        usage
        return 0
        ;;
      *) die "unknown option $arg (expected --echo-cancel, --uninstall or --help)" ;;
    esac
  done
  if ((echo_cancel && remove)); then die "--echo-cancel and --uninstall do not go together"; fi
  check_user
  if ((remove)); then
    uninstall
    return 0
  fi
  check_platform
  install_apt "${apt_runtime[@]}"
  if ((echo_cancel)); then install_apt "${apt_echo_cancel[@]}"; fi
  install_venv
  install_unit
  if ((echo_cancel)); then write_echo_cancel; fi
  enable_linger
  start_service
  say "done: $unit_name is enabled (logs: journalctl --user -u voicecoach -f; check: $venv/bin/voicecoach doctor)"
  if ((echo_cancel)); then print_echo_cancel_help; fi
}

main "$@"
