"""The first hour with voicecoach, as a new user meets it (issue 12): each rough edge, and what it does now."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import run_cli

from voicecoach.cli import command_table
from voicecoach.cli.main import main
from voicecoach.core.commands import load_vocabulary
from voicecoach.core.events import Command, CommandHeard, Utterance
from voicecoach.files.routine_file import MAX_FILE_BYTES, RoutineFileError, load_routine_file
from voicecoach.runtime.clock import EventQueue, VirtualClock
from voicecoach.runtime.dry_run import read_typed_lines

ROOT = Path(__file__).resolve().parents[1]

ONE_EXERCISE = """\
name: {name}
title: One stretch
description: One exercise.
exercises:
  - name: Bridge
    position: lying face up
    steps: ["Lift your hips."]
    hold_s: {hold}
"""


def write_routine(folder: Path, name: str = "one-stretch", hold: str = "20", file_name: str | None = None) -> Path:
    """A one-exercise routine file, named after its routine unless file_name says otherwise."""
    path = folder / (file_name or f"{name}.yaml")
    path.write_text(ONE_EXERCISE.format(name=name, hold=hold), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def no_user_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config file, routines or history of the person running the tests."""
    monkeypatch.delenv("VOICECOACH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("VOICECOACH_ROUTINES", str(tmp_path / "routines"))
    monkeypatch.setenv("VOICECOACH_DATA", str(tmp_path / "data"))


# --- 3. a reader that goes away -------------------------------------------------------------------------------------


class _ClosedPipe(io.StringIO):
    """Standard output whose reader has gone (`| head` after its lines)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_that_goes_away_ends_the_run_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    code = main(["run", "lower-back", "--simulate", "--json"])
    assert code == 141  # 128 + SIGPIPE, as a shell reports a Unix tool cut off by `head`
    assert capsys.readouterr().err == ""


@pytest.mark.engine
def test_run_json_into_head_has_no_traceback() -> None:
    command = [sys.executable, "-m", "voicecoach", "run", "lower-back", "--simulate", "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env) as process:  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()  # as head does after its lines
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert json.loads(first)["kind"] == "state"
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert code == 141


# --- 4. --config for every command ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["list"], ["show", "lower-back"], ["check", "lower-back"], ["history"], ["run", "lower-back", "--simulate"]],
    ids=["list", "show", "check", "history", "run"],
)
def test_every_command_reads_the_config_file_it_is_given(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.toml"
    code, out, err = run_cli(["--config", str(missing), *command], capsys)
    assert (code, out) == (2, "")
    assert err == f"{missing}:0: (file): no such file (expected a TOML config file, as --config names it; " \
                  "check the path)\n"  # fmt: skip
    broken = tmp_path / "broken.toml"
    broken.write_text("[voice]\nrate = 1000\n", encoding="utf-8")
    code, _, err = run_cli(["--config", str(broken), *command], capsys)
    assert code == 2 and err.startswith(f"{broken}:2: voice.rate: 1000 is out of range")


def test_a_missing_file_blames_the_variable_only_when_it_named_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "gone.toml"
    _, _, err = run_cli(["--config", str(missing), "list"], capsys)
    assert "VOICECOACH_CONFIG" not in err and "--config" in err
    monkeypatch.setenv("VOICECOACH_CONFIG", str(missing))
    _, _, err = run_cli(["list"], capsys)
    assert err == f"{missing}:0: (file): no such file (expected a TOML config file, as $VOICECOACH_CONFIG names " \
                  "it; unset it to use none)\n"  # fmt: skip


@pytest.mark.engine
def test_doctors_fixes_name_the_config_file_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    given = tmp_path / "mine.toml"
    given.write_text('[routine]\ndefault = "no-such-routine"\n', encoding="utf-8")
    _, out, _ = run_cli(["--config", str(given), "doctor"], capsys)
    fixes = [line for line in out.splitlines() if re.search(r"fix: .*\[\w+\] \w+ in ", line)]
    assert fixes and all(f"] {line.split('] ')[1].split()[0]} in {given} " in line for line in fixes), out
    assert any(f"[routine] default in {given} " in line for line in fixes)


# --- 6. routine files -------------------------------------------------------------------------------------------


def test_check_on_a_folder_checks_every_routine_in_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = write_routine(tmp_path, "first"), write_routine(tmp_path, "second", hold="0")
    (tmp_path / "notes.txt").write_text("not a routine", encoding="utf-8")
    code, out, err = run_cli(["check", str(tmp_path)], capsys)
    assert code == 2
    assert out == f"{first}: ok (1 exercise, about 1 min)\n"
    assert err == f"{second}:8: exercises[1].hold_s: 0 is out of range (expected seconds from 1 to 600)\n"


def test_a_folder_without_routines_and_a_folder_to_run_say_what_is_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["check", str(tmp_path)], capsys)
    assert code == 2
    assert err == f"{tmp_path}:0: (file): has no routine files (expected .yaml or .yml files in the folder)\n"
    code, _, err = run_cli(["show", str(tmp_path)], capsys)
    assert code == 2 and "is a folder (expected a routine file or name" in err and "no such file" not in err


def test_an_oversized_routine_file_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "routines"  # the user's routines (no_user_files), so that list loads it too
    folder.mkdir()
    path = folder / "huge.yaml"
    with path.open("wb") as out:
        out.truncate(10 * MAX_FILE_BYTES)  # ten times the cap, sparse: reading it would take seconds
    with pytest.raises(RoutineFileError) as caught:
        load_routine_file(path)
    assert str(caught.value) == f"{path}:0: (file): is 10.0 MB (expected a routine file of at most 1.0 MB)"
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0 and "huge" in out and "INVALID (1 problem; run: voicecoach check" in out


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("hold_s", "20.5", "20.5 is not a whole number of seconds (expected seconds from 1 to 600)"),
        ("rest_s", "2.5", "2.5 is not a whole number of seconds (expected seconds from 0 to 600)"),
        ("max_hold_s", "30.5",
         "30.5 is not a whole number of seconds (expected seconds from 20 to 600, not less than hold_s)"),
    ],
)  # fmt: skip
def test_times_are_whole_seconds_as_the_readme_says(tmp_path: Path, field: str, value: str, message: str) -> None:
    path = write_routine(tmp_path)
    text = path.read_text(encoding="utf-8")
    text = text.replace("hold_s: 20", f"hold_s: {value}") if field == "hold_s" else text + f"    {field}: {value}\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RoutineFileError) as caught:
        load_routine_file(path)
    [problem] = caught.value.problems
    assert (problem.field, problem.message) == (f"exercises[1].{field}", message)
    assert "1 to 600 seconds, whole" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_a_file_named_otherwise_than_its_routine_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_routine(tmp_path, "my-stretches", file_name="stretches.yaml")
    code, out, err = run_cli(["check", str(path)], capsys)
    assert code == 0 and out.endswith("(1 exercise, about 1 min; 1 warning)\n")
    assert err.startswith(f'{path}:1: name: warning: "my-stretches" is not the file\'s name "stretches.yaml" '
                          "(expected my-stretches.yaml")  # fmt: skip
    assert run_cli(["check", "--strict", str(path)], capsys)[0] == 1


# --- 7. dry runs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commands", "message"),
    [
        ("12:pause; 20:resume",
         "--commands:1: '12:pause; 20:resume' holds more than one timed command (expected SECONDS:WORDS items "
         'separated by commas, e.g. "12:pause, 20:resume")'),
        ("12:pause 20:resume",
         "--commands:1: '12:pause 20:resume' holds more than one timed command (expected SECONDS:WORDS items "
         'separated by commas, e.g. "12:pause, 20:resume")'),
        ("12:;", "--commands:1: '12:;' has no words after the colon (expected SECONDS:WORDS, e.g. 12:pause)"),
    ],
    ids=["semicolons", "spaces", "no-words"],
)  # fmt: skip
def test_a_wrong_separator_in_commands_names_the_expected_format(
    commands: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["run", "lower-back", "--simulate", "--commands", commands], capsys)
    assert (code, out, err) == (2, "", f"voicecoach: {message}\n")


def test_a_script_line_with_two_commands_names_the_expected_format(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", "lower-back", "--simulate"], capsys, stdin="5:next\n12:pause 20:resume\n")
    assert (code, err) == (2, "voicecoach: <stdin>:2: '12:pause 20:resume' holds more than one timed command "
                              "(expected one SECONDS:WORDS per line, e.g. 12:pause)\n")  # fmt: skip


def test_the_end_of_typed_input_ends_the_workout() -> None:
    events = EventQueue(VirtualClock())
    read_typed_lines(io.StringIO("next\n\npause\n"), events, end_at_eof=True).join(timeout=10)
    posted = [events.next_event(None) for _ in range(3)]
    assert posted == [Utterance("next"), Utterance("pause"), CommandHeard(Command.QUIT, "end of input")]
    read_typed_lines(io.StringIO("next\n"), events, end_at_eof=False).join(timeout=10)
    assert events.next_event(None) == Utterance("next") and events.next_event(None) is None


class _Terminal(io.StringIO):
    """Typed lines at a terminal, then Ctrl-D."""

    def isatty(self) -> bool:
        return True


def test_ctrl_d_ends_a_typed_dry_run_with_its_summary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("next\n"))
    code = main(["run", "lower-back", "--simulate", "--speed", "1000", "--json"])
    out, err = capsys.readouterr()
    heard = [(r["text"], r.get("command")) for r in map(json.loads, out.splitlines()) if r["kind"] == "heard"]
    assert code == 0 and heard == [("next", "next"), ("end of input", "quit")]
    assert json.loads(out.splitlines()[-1])["kind"] == "finish"
    assert "Ctrl-D ends it" in err and "End of input: ending the workout." in err


def test_a_recorded_dry_run_keeps_the_routines_own_minutes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["run", "lower-back", "--simulate", "--record", "--commands", "300:end workout"], capsys)
    assert code == 0, err
    code, out, _ = run_cli(["history"], capsys)
    minutes = out.splitlines()[1].split()[3]
    assert code == 0 and minutes == "5", out  # ended at 300 s of routine time, then its summary: 5 minutes


def test_one_of_a_thing_is_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_routine(tmp_path)
    outputs = [run_cli(command, capsys)[1] for command in (["check", str(path)], ["show", str(path)])]
    assert "(1 exercise, about 1 min)" in outputs[0] and "Total: 1 exercise, about 1 min" in outputs[1]
    assert not any("1 exercises" in text for text in outputs)


# --- 2. no usable audio device --------------------------------------------------------------------------------------


class _NoDevices:
    """sounddevice on a machine where PortAudio finds no device at all."""

    class PortAudioError(Exception):
        pass

    class CallbackAbort(Exception):
        pass

    def query_devices(self, device: object = None, kind: object = None) -> object:
        if device is None and kind is None:
            return []
        raise self.PortAudioError("Error querying device -1")

    def query_hostapis(self) -> list[object]:
        return []


@pytest.mark.parametrize(
    ("command", "what", "without_audio"),
    [
        (["run", "lower-back"], "Cannot open the speaker", "voicecoach run lower-back --simulate"),
        (["serve"], "Cannot open the speaker", "voicecoach run ROUTINE --simulate"),
        (["run", "lower-back", "--input-device", "USB"], "No input device matches 'USB'; input devices: none",
         "voicecoach run lower-back --simulate"),
    ],
    ids=["run", "serve", "input-device"],
)  # fmt: skip
def test_no_usable_device_says_what_to_do(
    command: list[str], what: str, without_audio: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from voicecoach.audio import devices
    from voicecoach.runtime import rig

    monkeypatch.setattr(devices, "_sounddevice", _NoDevices)
    monkeypatch.setattr(rig, "open_pipeline", lambda settings, vocabulary: object())
    if "--input-device" in command:  # the speaker opens; the microphone named is not there
        monkeypatch.setattr("voicecoach.audio.speaker.Speaker", lambda device: _Closable())
    code, out, err = run_cli(command, capsys)
    [line] = err.splitlines()
    problem, advice = line.split(". What to do: ")
    assert (code, out) == (2, "")
    assert problem.startswith(f"voicecoach: {what}")
    if what == "Cannot open the speaker":
        assert problem.endswith("there is no audio device to use, not even a default one "
                                "(PortAudio: Error querying device -1)")  # fmt: skip
    assert advice.startswith("`voicecoach doctor` says what is missing; `voicecoach devices` lists the devices")
    assert f"without audio: {without_audio}" in advice


class _Closable:
    def close(self) -> None:
        pass


def test_portaudio_words_are_explained_and_unknown_ones_kept() -> None:
    from voicecoach.audio.devices import plain_portaudio

    assert plain_portaudio("Device unavailable [PaErrorCode -9985]") == (
        "the device is unavailable (unplugged, or busy in another program) "
        "(PortAudio: Device unavailable [PaErrorCode -9985])"
    )
    assert plain_portaudio("Something new") == "Something new"


class _FakeAlsa:
    """libasound's error-handler setter, recording what it was given."""

    def __init__(self) -> None:
        self.handlers: list[object] = []

    def snd_lib_error_set_handler(self, handler: object) -> None:
        self.handlers.append(handler)


def test_alsas_own_error_lines_go_to_the_debug_log(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from voicecoach.audio import devices

    monkeypatch.setattr(devices, "_alsa_handler", None)
    alsa = _FakeAlsa()
    assert devices.quiet_alsa(alsa) and devices.quiet_alsa(alsa)
    [handler] = alsa.handlers  # installed once
    with caplog.at_level("DEBUG", logger="voicecoach.audio.devices"):
        handler(b"pcm.c", 8526, b"snd_pcm_recover", -32, b"%s occurred")  # type: ignore[operator]
    assert caplog.messages == ["ALSA pcm.c:8526 (snd_pcm_recover): %s occurred (error -32)"]


@pytest.mark.engine
def test_the_real_alsa_library_prints_nothing_once_quieted(capfd: pytest.CaptureFixture[str]) -> None:
    import ctypes
    import ctypes.util

    from voicecoach.audio import devices

    name = ctypes.util.find_library("asound")
    if name is None:
        pytest.skip("no ALSA library (apt-get install libasound2)")
    alsa = ctypes.CDLL(name)
    assert devices.quiet_alsa()
    handle = ctypes.c_void_p()
    assert alsa.snd_pcm_open(ctypes.byref(handle), b"voicecoach-no-such-pcm", 0, 0) < 0  # ALSA would complain
    assert capfd.readouterr().err == ""


# --- 5. a model download with no network ----------------------------------------------------------------------------


def test_a_download_that_cannot_connect_says_what_listens_meanwhile_and_how_to_install_by_hand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:  # a port nothing listens on: the connection is refused at once
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/vosk-model-small-en-us-0.15.zip"
    code, out, err = run_cli(["model", "download", "--url", url, "--dest", str(tmp_path)], capsys)
    lines = err.splitlines()
    assert (code, out) == (2, "")
    assert lines[0].startswith(f"Downloading vosk-model-small-en-us-0.15 from {url} into {tmp_path} (waiting up to")
    assert lines[1].startswith(f"voicecoach: download failed: {url}: ") and "refused" in lines[1]
    assert lines[2] == ("voicecoach: without the model, voicecoach listens with its built-in keyword spotter, "
                        "which needs no download (Vosk is optional)")  # fmt: skip
    assert lines[3] == (f"voicecoach: to install it by hand, fetch {url} on a machine that reaches it, then "
                        f"`unzip vosk-model-small-en-us-0.15.zip -d {tmp_path}` (models/README.md has the steps)")
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_never_answers_times_out_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as silent:  # accepts the connection (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/model.zip"
        command = ["model", "download", "--url", url, "--dest", str(tmp_path), "--timeout", "0.2"]
        code, _, err = run_cli(command, capsys)
    assert code == 2 and "waiting up to 0.2 s for each answer from the server" in err
    assert "timed out (no answer within 0.2 s; --timeout waits longer)" in err


@pytest.mark.parametrize("engine", ["pocketsphinx", "vosk"])
def test_the_engine_used_meanwhile_follows_the_config_file(
    engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[recognizer]\nengine = "{engine}"\n', encoding="utf-8")
    url = "http://127.0.0.1:1/m.zip"  # port 1: refused
    command = ["--config", str(config), "model", "download", "--url", url, "--dest", str(tmp_path)]
    _, _, err = run_cli(command, capsys)
    meanwhile = err.splitlines()[2]
    expected = "PocketSphinx, whose English model comes with it" if engine == "pocketsphinx" else "--engine spotter"
    assert meanwhile.startswith("voicecoach: without the model, ") and expected in meanwhile


# --- 1. the README's command table ----------------------------------------------------------------------------------


def _readme_table_rows() -> list[tuple[list[str], list[list[str]]]]:
    """(command names, phrases per command) of each row of the README's "What you can say" table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = readme.index(command_table.BEGIN_MARKER), readme.index(command_table.END_MARKER)
    rows = []
    for line in readme[start:end].splitlines()[3:]:  # after the marker, the header and the rule
        names, phrases, _ = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((names.split(" / "), [re.findall(r'"([^"]+)"', part) for part in phrases.split(" / ")]))
    return rows


def _readme_phrases() -> list[tuple[str, str]]:
    """(phrase, command name) for every phrase the README's table lists."""
    return [(phrase, name) for names, groups in _readme_table_rows() for name, group in zip(names, groups, strict=True)
            for phrase in group]  # fmt: skip


def test_the_readmes_command_table_is_made_from_the_vocabulary() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    expected = command_table.with_table(readme, command_table.command_table(load_vocabulary("en")))
    assert readme == expected, "out of date: python -m voicecoach.cli.command_table README.md"
    assert sorted(command_table.table_commands()) == sorted(Command), "every command has a row"
    assert "halt" not in {phrase for phrase, _ in _readme_phrases()}


def test_a_phrase_the_vocabulary_dropped_would_fail_the_check(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(text.replace('| stop | "stop",', '| stop | "stop", "halt",'), encoding="utf-8")
    assert command_table.main(["--check", str(readme)]) == 1
    assert command_table.main([str(readme)]) == 0 and readme.read_text(encoding="utf-8") == text


@pytest.mark.parametrize(("phrase", "name"), _readme_phrases(), ids=[p for p, _ in _readme_phrases()])
def test_every_phrase_the_readme_lists_is_understood_by_the_dry_run(
    phrase: str, name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routine = write_routine(tmp_path)
    code, out, err = run_cli(["run", str(routine), "--simulate", "--json", "--commands", f"3:{phrase}"], capsys)
    heard = [(r["text"], r.get("command")) for r in map(json.loads, out.splitlines()) if r["kind"] == "heard"]
    expected = next(c for c in Command if command_table.command_name(c) == name)
    assert code == 0, err
    assert heard == [(phrase, expected.value)]


def test_the_readmes_example_routine_loads_and_checks_clean(tmp_path: Path) -> None:
    from voicecoach.files.routine_check import check_routine

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = readme[readme.index("### Writing a routine") :].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "my-stretches.yaml"
    path.write_text(example, encoding="utf-8")
    routine, findings = check_routine(path)
    assert routine.name == "my-stretches" and [e.hold_s for e in routine.exercises] == [20]
    assert findings == [], "\n".join(map(str, findings))


# --- 8. listen --wav takes float WAV files --------------------------------------------------------------------------


def float_wav(samples: np.ndarray, rate: int, bits: int = 32, channels: int = 1) -> bytes:
    """A WAVE_FORMAT_IEEE_FLOAT file (full scale 1.0), as audio editors and numpy-based tools write them."""
    data = np.asarray(samples, dtype="<f4" if bits == 32 else "<f8").tobytes()
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 3, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bits", [32, 64])
def test_float_wav_files_read_as_int16(bits: int, tmp_path: Path) -> None:
    from voicecoach.audio.wavfile import read_wav

    path = tmp_path / "float.wav"
    path.write_bytes(float_wav(np.array([0.0, 0.5, -0.5, 1.0, -1.0, 2.0]), 22050, bits))
    samples, rate = read_wav(path)
    assert rate == 22050 and samples.dtype == np.int16
    assert samples.tolist() == [0, 16384, -16384, 32767, -32768, 32767]  # full scale clipped, not wrapped


@pytest.mark.engine
def test_listen_hears_a_command_in_a_float_wav(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from voicecoach.audio.wavfile import resample
    from voicecoach.narration.stand_in_voices import FLITE_VOICES, pad, synthesize

    speech = resample(pad(synthesize(FLITE_VOICES[0], "next"), 0.5, 1.0), 16000, 48000)
    path = tmp_path / "next-float.wav"
    path.write_bytes(float_wav(speech.astype(np.float64) / 32768.0, 48000))
    code, out, err = run_cli(["listen", "--wav", str(path), "--engine", "pocketsphinx"], capsys)
    assert code == 0, err
    assert [line.split()[1] for line in out.splitlines()] == ["next"]
    assert "# 1 command; " in err  # and singular


# --- 9. packaging metadata --------------------------------------------------------------------------------------


def test_the_licence_is_an_spdx_expression_as_setuptools_77_wants() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"  # a table ({ text = "MIT" }) makes pip print deprecation warnings
    assert "setuptools>=77" in project["build-system"]["requires"]
    assert not any(c.startswith("License ::") for c in project["project"].get("classifiers", []))
