"""`voicecoach doctor` on this machine, and the Pi install script's syntax and unit template."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicecoach.audio.virtual_server import VirtualAudio
from voicecoach.cli import doctor
from voicecoach.cli.doctor import Check, check_config, format_checks, run_checks
from voicecoach.files.config import Config
from voicecoach.settings import MicSettings, NarratorSettings, RecognizerSettings

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parent.parent
INSTALL_SCRIPT = ROOT / "scripts" / "install-pi.sh"
UNIT_TEMPLATE = ROOT / "scripts" / "voicecoach.service"
MISSING_DEVICE = "no-such-microphone-xyz"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Doctor's history check writes here, not into the user's data folder."""
    folder = tmp_path_factory.mktemp("data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VOICECOACH_DATA", str(folder))
        yield folder


@pytest.fixture(scope="module")
def checks(data_dir: Path) -> dict[str, Check]:
    """Every check once, with a config that names a microphone this machine does not have."""
    config = Config(mic=MicSettings(input_device=MISSING_DEVICE))
    return {check.name: check for check in run_checks(config)}


def test_every_check_runs_once_in_order(checks: dict[str, Check]) -> None:
    assert list(checks) == ["python", "portaudio", "input device", "output device", "narrator", "vosk model", "spotter",
                            "pocketsphinx", "echo canceller", "narrator level", "history", "disk space",
                            "routine"]  # fmt: skip
    for check in checks.values():
        assert check.detail and "\n" not in check.detail and "\n" not in check.fix
        assert check.ok or check.fix, f"{check.name} failed without saying how to fix it"


def test_python_history_disk_and_routine_pass(checks: dict[str, Check], data_dir: Path) -> None:
    assert checks["python"].ok and "Python 3." in checks["python"].detail
    assert checks["history"].ok and str(data_dir / "history.sqlite3") in checks["history"].detail
    assert (data_dir / "history.sqlite3").is_file()
    assert checks["disk space"].ok and "GB free" in checks["disk space"].detail
    assert checks["routine"].ok and checks["routine"].detail.startswith("lower-back: ")


def test_the_narrator_level_says_full_level_or_what_is_remembered_and_names_a_bad_file(
    checks: dict[str, Check], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicecoach.cli.doctor import _levels
    from voicecoach.store.levels import Devices, LevelMemory

    assert checks["narrator level"].ok and checks["narrator level"].detail.startswith("full level")
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path))
    LevelMemory(tmp_path).keep(Devices("USB speaker", "USB mic", 1.0), 6.0)
    check = _levels()
    assert check.ok and "USB speaker and USB mic at volume 1: ended -6 dB, next session starts at -3 dB" in check.detail
    assert "--volume" in check.fix
    (tmp_path / "levels.json").write_text("{")
    check = _levels()
    assert not check.ok and "levels.json: line 1" in check.detail and "delete" in check.fix
    assert (tmp_path / "levels.json").read_text() == "{", "doctor only looks"


def test_espeak_synthesizes_and_reports_its_time(checks: dict[str, Check]) -> None:
    narrator = checks["narrator"]
    assert narrator.ok, narrator
    assert "eSpeak-NG" in narrator.detail and " s of speech in " in narrator.detail and " ms" in narrator.detail


def test_pocketsphinx_loads_its_bundled_model(checks: dict[str, Check]) -> None:
    check = checks["pocketsphinx"]
    assert check.ok, check
    assert "bundled en-us model loads in" in check.detail


def test_speexdsp_is_usable(checks: dict[str, Check]) -> None:
    check = checks["echo canceller"]
    assert check.ok and check.detail == "libspeexdsp works; echo cancellation is on", check


def test_a_missing_microphone_fails_with_a_fix(checks: dict[str, Check]) -> None:
    check = checks["input device"]
    assert not check.ok
    assert MISSING_DEVICE in check.detail or "no input device" in check.detail.lower()
    assert check.fix.startswith("set [audio] input_device in ") and "voicecoach devices" in check.fix


def test_configured_devices_are_named(virtual_audio: VirtualAudio) -> None:
    config = Config(mic=MicSettings(input_device="pulse"), narrator=NarratorSettings(output_device=None))
    found = {check.name: check for check in (doctor._device("pulse", "input", config),
                                             doctor._device(None, "output", config))}  # fmt: skip
    assert found["input device"].ok and "pulse (ALSA), matches 'pulse'" in found["input device"].detail
    assert found["output device"].ok and found["output device"].detail.endswith(", the default")
    portaudio = doctor._portaudio()
    assert portaudio.ok and "ALSA" in portaudio.detail


def test_vosk_check_follows_the_engine_setting(tmp_path: Path) -> None:
    config = Config()
    assert doctor._vosk(RecognizerSettings(engine="pocketsphinx"), config).ok
    not_a_model = doctor._vosk(RecognizerSettings(engine="vosk", model_dir=tmp_path), config)
    assert not not_a_model.ok and "is not a Vosk model folder" in not_a_model.detail
    assert "[recognizer] model" in not_a_model.fix
    model = tmp_path / "vosk-model-test"
    for marker in ("am/final.mdl", "conf/model.conf"):
        (model / marker).parent.mkdir(parents=True, exist_ok=True)
        (model / marker).write_bytes(b"")
    found = doctor._vosk(RecognizerSettings(engine="auto", model_dir=model), config)
    assert found.ok and found.detail.startswith(f"vosk-model-test at {model} (vosk ")


def test_no_vosk_model_passes_with_a_tip_unless_vosk_is_required(monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    monkeypatch.setenv("VOICECOACH_MODELS", str(tmp_path / "none"))
    auto = doctor._vosk(RecognizerSettings(engine="auto"), Config())
    assert auto.ok and auto.detail == "no Vosk model installed (not needed: the keyword spotter listens)"
    assert auto.fix == "install the Vosk model with `voicecoach model download`"
    required = doctor._vosk(RecognizerSettings(engine="vosk"), Config())
    assert not required.ok and "voicecoach model download" in required.fix


def test_an_unexpected_error_fails_only_its_own_check() -> None:
    def broken() -> Check:
        raise KeyError("boom")

    check = doctor._guarded("broken", broken)
    assert check == Check("broken", False, "unexpected KeyError: 'boom'", doctor._UNEXPECTED_FIX)


def test_config_problems_become_failed_checks(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[voice]\nrate = 1000\n[audio]\nmic = 1\n", encoding="utf-8")
    config, checks = check_config(path)
    assert config == Config()
    assert [(c.ok, c.detail.split(": ")[0]) for c in checks] == [(False, f"{path}:2"), (False, f"{path}:4")]
    assert checks[0].fix.startswith(f"correct line 2 of {path}")
    good = tmp_path / "good.toml"
    good.write_text("[voice]\nrate = 120\n", encoding="utf-8")
    config, checks = check_config(good)
    assert config.narrator.rate_wpm == 120 and checks == [Check("config file", True, str(good))]


def test_no_config_file_is_fine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICECOACH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    config, checks = check_config()
    assert config == Config() and len(checks) == 1 and checks[0].ok and "built-in defaults" in checks[0].detail


def test_format_checks_lines_up_and_counts() -> None:
    text = format_checks([
        Check("python", True, "Python 3.11.7"),
        Check("input device", False, "No input device matches 'USB'", "set input_device"),
        Check("vosk model", True, "pocketsphinx will be used", "voicecoach model download"),
    ])  # fmt: skip
    assert text.splitlines() == [
        "ok    python        Python 3.11.7",
        "FAIL  input device  No input device matches 'USB'",
        "                    fix: set input_device",
        "ok    vosk model    pocketsphinx will be used",
        "                    tip: voicecoach model download",
        "2 of 3 checks passed; 1 failed.",
    ]
    assert format_checks([Check("python", True, "ok")]).endswith("1 of 1 checks passed.")


# --- the Pi install script ------------------------------------------------------------------------


def test_install_script_parses() -> None:
    result = subprocess.run(["bash", "-n", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_install_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    result = subprocess.run(["shellcheck", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_install_script_refuses_unknown_options() -> None:
    result = subprocess.run(["bash", str(INSTALL_SCRIPT), "--bogus"], capture_output=True, text=True)
    assert result.returncode == 1 and "unknown option --bogus" in result.stderr
    help_text = subprocess.run(["bash", str(INSTALL_SCRIPT), "--help"], capture_output=True, text=True)
    assert help_text.returncode == 0 and "--echo-cancel" in help_text.stdout and "--uninstall" in help_text.stdout


def test_unit_template_runs_serve_from_the_venv_and_restarts_on_failure() -> None:
    lines = UNIT_TEMPLATE.read_text(encoding="utf-8").splitlines()
    exec_start = [line for line in lines if line.startswith("ExecStart=")]
    assert exec_start == ["ExecStart=%h/.local/share/voicecoach/venv/bin/voicecoach serve"]
    assert "Restart=on-failure" in lines and "WantedBy=default.target" in lines
    assert "~/.local/share/voicecoach/venv" in INSTALL_SCRIPT.read_text(encoding="utf-8")
