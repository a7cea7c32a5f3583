"""The config file: where it is, what it sets, every kind of problem on its own line, and the command line over it."""

from __future__ import annotations

import argparse
import re
import textwrap
from pathlib import Path

import pytest

from voicecoach.cli.options import add_voice_options, build_settings
from voicecoach.core.progression import ProgressionSettings
from voicecoach.files.config import (
    _SCHEMA,
    DEFAULT_ROUTINE,
    Config,
    ConfigError,
    config_path,
    key_lines,
    load_config,
    parse_config,
)
from voicecoach.settings import MicSettings, NarratorSettings, RecognizerSettings

ROOT = Path(__file__).resolve().parent.parent
FULL = """\
# every key, with values other than the defaults
[audio]
input_device = "USB PnP"
output_device = 3

[voice]
voice = "en+f3"
rate = 140
volume = 0.8

[recognizer]
engine = "vosk"
model = "models/vosk-model-small-en-us-0.15"
language = "en"

[routine]
default = "my-stretches"

[progression]
enabled = false
step_s = 2.5
sessions_per_step = 3
back_off_fraction = 0.5

[echo]
cancel = false
"""


@pytest.fixture(autouse=True)
def no_config_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the real user's config file."""
    monkeypatch.delenv("VOICECOACH_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    """The problem lines for a config text (the file is called config.toml)."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = [str(problem) for problem in caught.value.problems]
    assert str(caught.value) == "\n".join(lines)
    return [line.replace(f"{path}:", "config.toml:", 1) for line in lines]


# --- valid files ----------------------------------------------------------------------------------


def test_every_key_lands_in_its_setting(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config == Config(
        narrator=NarratorSettings(voice="en+f3", rate_wpm=140, volume=0.8, output_device="3"),
        mic=MicSettings(input_device="USB PnP"),
        recognizer=RecognizerSettings("vosk", tmp_path / "models" / "vosk-model-small-en-us-0.15", "en"),
        progression=ProgressionSettings(enabled=False, step_s=2.5, sessions_per_step=3, back_off_fraction=0.5),
        routine="my-stretches",
        echo_cancel=False,
        path=path,
    )


def test_keys_left_out_keep_their_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[voice]\nrate = 120\n"))
    assert config.narrator == NarratorSettings(rate_wpm=120)
    assert config.mic == MicSettings() and config.recognizer == RecognizerSettings()
    assert config.progression == ProgressionSettings() and config.routine == DEFAULT_ROUTINE and config.echo_cancel


def test_an_empty_file_is_all_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing set\n")
    assert load_config(path) == Config(path=path)


def test_dotted_keys_inline_tables_and_home_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = 'voice.rate = 200\nrecognizer = { engine = "POCKETSPHINX", model = "~/m" }\n[echo]\n"cancel" = true\n'
    config = load_config(write(tmp_path, text))
    assert config.narrator.rate_wpm == 200 and config.recognizer.engine == "pocketsphinx"
    assert config.recognizer.model_dir == tmp_path / "home" / "m"


def test_an_integer_volume_and_a_utf8_bom_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[voice]\nvolume = 1\n")
    assert load_config(path).narrator.volume == 1.0


# --- where the file is ----------------------------------------------------------------------------


def test_path_comes_from_the_environment(tmp_path: Path) -> None:
    assert config_path({"VOICECOACH_CONFIG": "/etc/vc.toml"}) == Path("/etc/vc.toml")
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/voicecoach/config.toml")
    assert config_path({"XDG_CONFIG_HOME": "relative"}) == Path.home() / ".config" / "voicecoach" / "config.toml"
    assert config_path({}) == Path.home() / ".config" / "voicecoach" / "config.toml"


def test_no_file_at_the_default_location_means_defaults(tmp_path: Path) -> None:
    assert not (tmp_path / "xdg" / "voicecoach" / "config.toml").exists()
    assert load_config() == Config()


def test_the_file_at_the_default_location_is_read(tmp_path: Path) -> None:
    path = tmp_path / "xdg" / "voicecoach" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[voice]\nrate = 100\n", encoding="utf-8")
    assert load_config().narrator.rate_wpm == 100


def test_a_file_named_explicitly_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "typo.toml"
    with pytest.raises(ConfigError, match=r"typo.toml:0: \(file\): no such file"):
        load_config(missing)
    monkeypatch.setenv("VOICECOACH_CONFIG", str(missing))
    with pytest.raises(ConfigError, match="no such file"):
        load_config()


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICECOACH_CONFIG", str(write(tmp_path, "[voice]\nrate = 90\n", "elsewhere.toml")))
    assert load_config().narrator.rate_wpm == 90


def test_an_unreadable_file_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.mkdir()
    with pytest.raises(ConfigError, match=r"config.toml:0: \(file\): cannot be read: Is a directory"):
        load_config(path)


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'[voice]\nvoice = "caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"config.toml:2: \(file\): byte 0xe9 is not UTF-8"):
        load_config(path)


# --- problems, one line each ----------------------------------------------------------------------


def test_toml_syntax_errors_give_their_line(tmp_path: Path) -> None:
    assert problems(tmp_path, "[voice]\nrate = 120\nvolume =\n") == [
        "config.toml:3: (file): invalid value at column 9 (expected TOML: [section] headers and key = value lines, "
        'text in "quotes")'
    ]
    assert problems(tmp_path, "[voice]\nvoice = en-us\n")[0].startswith("config.toml:2: (file): invalid value")
    assert problems(tmp_path, "[voice\n")[0].startswith("config.toml:1: (file): expected ']'")
    assert problems(tmp_path, "[voice]\nrate = 1\n\n[voice]\n")[0].startswith("config.toml:4: (file): cannot declare")


RATE = "(expected words per minute from 80 to 400)"
VOLUME = "(expected a number from 0 to 1)"
VOICE = "(expected an eSpeak-NG voice such as en-us or en+f3)"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('rate = "fast"', f'voice.rate: the text "fast" is not a whole number {RATE}'),
        ("rate = 500", f"voice.rate: 500 is out of range {RATE}"),
        ("rate = 79", f"voice.rate: 79 is out of range {RATE}"),
        ("rate = 150.5", f"voice.rate: the number 150.5 is not a whole number {RATE}"),
        ("rate = true", f"voice.rate: the yes/no value true is not a whole number {RATE}"),
        ("volume = 1.5", f"voice.volume: 1.5 is out of range {VOLUME}"),
        ("volume = -0.1", f"voice.volume: -0.1 is out of range {VOLUME}"),
        ("volume = nan", f"voice.volume: nan is not a finite number {VOLUME}"),
        ('volume = "1"', f'voice.volume: the text "1" is not a number {VOLUME}'),
        ("voice = 3", f"voice.voice: the number 3 is not text {VOICE}"),
        ('voice = "  "', f"voice.voice: is empty {VOICE}"),
        ("voice = [1, 2]", f"voice.voice: a list is not text {VOICE}"),
    ],
)
def test_bad_voice_values(tmp_path: Path, line: str, expected: str) -> None:
    assert problems(tmp_path, f"# voice\n[voice]\n{line}\n") == [f"config.toml:3: {expected}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[audio]\ninput_device = -1\n", "config.toml:2: audio.input_device: -1 is not a device index"),
        ("[audio]\noutput_device = false\n", "config.toml:2: audio.output_device: the yes/no value false is neither"),
        ('[recognizer]\nengine = "vosc"\n',
         'config.toml:2: recognizer.engine: "vosc" is not an engine; did you mean vosk? '
         "(expected one of: auto, spotter, vosk,"),
        ('[recognizer]\nlanguage = "fr"\n', 'config.toml:2: recognizer.language: "fr" has no command vocabulary '
                                             "(expected a language with a command vocabulary: en, ko)"),
        ('[recognizer]\nmodel = ""\n', "config.toml:2: recognizer.model: is empty"),
        ("[routine]\ndefault = 1\n", "config.toml:2: routine.default: the number 1 is not text"),
        ('[progression]\nenabled = "yes"\n', 'config.toml:2: progression.enabled: the text "yes" is not true or false'),
        ("[progression]\nstep_s = 0.5\n", "config.toml:2: progression.step_s: 0.5 is out of range (expected seconds"),
        ("[progression]\nstep_s = inf\n", "config.toml:2: progression.step_s: inf is not a finite number"),
        ("[progression]\nsessions_per_step = 0\n", "config.toml:2: progression.sessions_per_step: 0 is out of range"),
        ("[progression]\nback_off_fraction = 0\n", "config.toml:2: progression.back_off_fraction: 0 is out of range "
                                                   "(expected a fraction above 0, up to 1)"),
        ("[progression]\nback_off_fraction = 1.01\n", "config.toml:2: progression.back_off_fraction: 1.01 is out of"),
        ("[echo]\ncancel = 1\n", "config.toml:2: echo.cancel: the number 1 is not true or false (expected true or"),
        ("[echo]\ncancel = 2024-05-01\n", "config.toml:2: echo.cancel: the date/time 2024-05-01 is not true or false"),
    ],
)  # fmt: skip
def test_bad_values_in_every_section(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_unknown_keys_and_sections_suggest_the_right_one(tmp_path: Path) -> None:
    text = """\
    [voice]
    rat = 120
    pitch = 50

    [audoi]
    input_device = "USB"

    [echo]
    volume = 1
    """
    assert problems(tmp_path, text) == [
        "config.toml:2: voice.rat: unknown key (expected one of: voice, rate, volume; did you mean rate?)",
        "config.toml:3: voice.pitch: unknown key (expected one of: voice, rate, volume)",
        "config.toml:5: [audoi]: unknown section (expected one of: [audio], [voice], [recognizer], [routine], "
        "[progression], [echo]; did you mean [audio]?)",
        "config.toml:9: echo.volume: unknown key (expected one of: cancel; volume goes under [voice])",
    ]


def test_keys_outside_any_section_say_where_they_belong(tmp_path: Path) -> None:
    assert problems(tmp_path, "# top\nrate = 120\nvoice = 3\n") == [
        "config.toml:2: rate: unknown key outside any section (expected one of: [audio], [voice], [recognizer], "
        "[routine], [progression], [echo]; rate goes under [voice])",
        "config.toml:3: voice: the number 3 is not a section (expected a [voice] table)",
    ]


def test_every_problem_is_reported_at_once_in_line_order(tmp_path: Path) -> None:
    text = '[echo]\ncancel = "no"\n[voice]\nrate = 1\nvolume = 2\n[recognizer]\nengine = "x"\n'
    lines = [line.split(":")[1] for line in problems(tmp_path, text)]
    assert lines == ["2", "4", "5", "7"]


def test_problems_in_inline_tables_and_dotted_keys_get_a_line(tmp_path: Path) -> None:
    text = '# x\nvoice.rate = 10\nrecognizer = { engine = "x" }\n[progression]\nstep_s = 0\n'
    lines = [line.split(":")[1] for line in problems(tmp_path, text)]
    assert lines == ["2", "3", "5"]


def test_key_lines_skip_multiline_strings() -> None:
    text = '[voice]\nvoice = """\nrate = 5\n"""\nrate = 120\n[echo]  # c\ncancel = true\n'
    assert key_lines(text) == {("voice",): 1, ("voice", "voice"): 2, ("voice", "rate"): 5, ("echo",): 6,
                               ("echo", "cancel"): 7}  # fmt: skip


def test_parse_config_takes_text(tmp_path: Path) -> None:
    assert parse_config("[routine]\ndefault = 'x'\n", tmp_path / "c.toml").routine == "x"


# --- the command line over the config file --------------------------------------------------------

NOT_GIVEN = {"engine": None, "model": None, "input_device": None, "output_device": None, "voice": None, "rate": None,
             "volume": None}  # fmt: skip


def test_the_config_fills_options_not_given(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    given = argparse.Namespace(**NOT_GIVEN, no_echo_cancel=False, progression=ProgressionSettings())
    settings = build_settings(given, config)
    voice = settings.voice
    assert (voice.listening.recognizer.engine, voice.listening.recognizer.model_dir) == (
        "vosk", tmp_path / "models" / "vosk-model-small-en-us-0.15")
    assert (voice.mic.input_device, voice.narrator.output_device) == ("USB PnP", "3")
    assert (voice.narrator.voice, voice.narrator.rate_wpm, voice.narrator.volume) == ("en+f3", 140, 0.8)
    assert voice.listening.echo_cancel is False and settings.progression is None, "the file turned both off"


def test_options_given_on_the_command_line_win(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL))
    given = {"engine": "pocketsphinx", "model": Path("/m"), "input_device": "hw:1", "output_device": "0",
             "voice": "en-us", "rate": 200, "volume": 0.0}  # fmt: skip
    voice = build_settings(argparse.Namespace(**given), config).voice
    assert voice.listening.recognizer == RecognizerSettings("pocketsphinx", Path("/m"), config.recognizer.language)
    assert voice.mic.input_device == "hw:1"
    assert voice.narrator == NarratorSettings("en-us", 200, 0.0, "0")


def test_without_a_config_file_the_built_in_defaults_apply() -> None:
    settings = build_settings(argparse.Namespace(**NOT_GIVEN, language=None, routine=None), Config())
    voice = settings.voice
    assert (voice.listening.recognizer.engine, voice.listening.recognizer.model_dir) == ("auto", None)
    assert (voice.mic.input_device, voice.narrator.output_device) == (None, None)
    assert voice.narrator == NarratorSettings()
    assert (voice.listening.recognizer.language, settings.routine) == ("en", DEFAULT_ROUTINE)


def test_build_settings_leaves_its_input_alone_and_other_commands_get_defaults() -> None:
    original = argparse.Namespace(rate=None, limit=15)
    settings = build_settings(original, Config(narrator=NarratorSettings(rate_wpm=100)))
    assert (settings.voice.narrator.rate_wpm, original.limit) == (100, 15) and original.rate is None
    assert build_settings(argparse.Namespace(), Config()).voice.narrator == NarratorSettings()


def test_flags_that_turn_features_off_stay_off() -> None:
    settings = build_settings(argparse.Namespace(no_echo_cancel=True, progression=None), Config())
    assert (settings.voice.listening.echo_cancel, settings.progression) == (False, None)


def test_the_progression_settings_come_from_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[progression]\nstep_s = 3\nsessions_per_step = 1\n"))
    settings = build_settings(argparse.Namespace(progression=ProgressionSettings()), config)
    assert settings.progression == ProgressionSettings(step_s=3.0, sessions_per_step=1)
    assert build_settings(argparse.Namespace(progression=ProgressionSettings()), Config()).progression == (
        ProgressionSettings()
    )


def test_the_real_voice_options_let_the_config_through(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_voice_options(parser)
    config = load_config(write(tmp_path, FULL))
    voice = build_settings(parser.parse_args(["--rate", "300"]), config).voice
    assert (voice.narrator.rate_wpm, voice.narrator.volume) == (300, 0.8)
    assert (voice.listening.recognizer.engine, voice.narrator.voice) == ("vosk", "en+f3")


def test_one_rate_limit_everywhere() -> None:
    with pytest.raises(ValueError, match="--rate: 401 is out of range .expected words per minute from 80 to 400"):
        build_settings(argparse.Namespace(rate=401), Config())
    assert "80 to 400" in _rate_expectation()


# --- the example file -----------------------------------------------------------------------------

EXAMPLE = ROOT / "voicecoach" / "config.example.toml"


def test_the_example_as_shipped_is_all_defaults() -> None:
    assert load_config(EXAMPLE) == Config(path=EXAMPLE)


def test_the_example_documents_every_key_with_a_valid_value(tmp_path: Path) -> None:
    uncommented = re.sub(r"(?m)^# ([a-z_]+ = )", r"\1", EXAMPLE.read_text(encoding="utf-8"))
    path = write(tmp_path, uncommented)
    config = load_config(path)
    every_key = {(section, key) for section, keys in _SCHEMA.items() for key in keys}
    assert set(key_lines(uncommented)) == {(section,) for section in _SCHEMA} | every_key
    defaults = Config()
    assert config.narrator.rate_wpm == defaults.narrator.rate_wpm and config.progression == defaults.progression
    assert config.recognizer.engine == "auto" and config.routine == defaults.routine and config.echo_cancel


def _rate_expectation() -> str:
    """What a config problem says a valid rate is."""
    from voicecoach.files.config import _SCHEMA

    return _SCHEMA["voice"]["rate"].expected
