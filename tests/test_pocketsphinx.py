"""PocketSphinx + spotter on speech synthesized at test time by eSpeak-NG and Flite (real engine, no skips).

Measured figures and the miss budgets below come from scripts/eval_pocketsphinx.py; see its output for rates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from speech import RATE, Voice, available, concat, pad, synthesize, write_wav

from voicecoach.commands import Vocabulary, load_vocabulary
from voicecoach.events import Command
from voicecoach.listener import SpotResult, spot_file, spot_samples
from voicecoach.recognizer_pocketsphinx import UNKNOWN, PocketSphinxRecognizer, clean_text

ESPEAK_US = Voice("espeak-ng", "en-us")
ESPEAK_US_F2 = Voice("espeak-ng", "en-us+f2")
ESPEAK_GB = Voice("espeak-ng", "en-gb")
FLITE_SLT = Voice("flite", "slt")
FLITE_RMS = Voice("flite", "rms")
FLITE_AWB = Voice("flite", "awb")
FLITE_KAL16 = Voice("flite", "kal16")

SAFETY_VOICES = (ESPEAK_US, ESPEAK_US_F2, ESPEAK_GB, FLITE_SLT, FLITE_RMS, FLITE_AWB, FLITE_KAL16)
"""Every voice here must give STOP for 'stop' and TOO_MUCH for 'too much'. Not here, measured failing on 'stop':
espeak en+m3 and en+f3 ('thought', 'told'), and Flite kal (8 kHz diphones)."""
MISS_BUDGET = {FLITE_SLT: 2, FLITE_RMS: 2, ESPEAK_US: 8, ESPEAK_US_F2: 8}
"""Canonical non-safety phrases a voice may miss (of 10). eSpeak's formant speech is far from the acoustic model:
isolated 'pause', 'next', 'back', 'skip' land on decoys or common words. Measured: slt 11/12, rms 10/12,
espeak en-us 4/12, en-us+f2 5/12 (safety phrases included)."""
WARM_UP = "Hello, this is a short test of the microphone."
ESPEAK_SCOTS = Voice("espeak-ng", "en-gb-scotland+m1")
PARAGRAPH_VOICES = (ESPEAK_SCOTS, FLITE_SLT, FLITE_RMS, FLITE_KAL16)
"""Measured: every Flite voice but kal gives nothing for the paragraph; of eSpeak voices only this one does. The
others (en-us, en+m3, en+f3, en-gb, en-us+f2, en-us+m3) each gave one false STOP or TOO_MUCH in it: eSpeak's
voice reads as a stream of short confusable words to this model (see scripts/eval_pocketsphinx.py)."""
PARAGRAPH = (
    "The weather was lovely this morning, warm and bright with a soft breeze. "
    "I made a pot of soup with carrots, onions and a little garlic, and we ate it in the garden while the birds sang."
)


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    """The English command vocabulary."""
    return load_vocabulary("en")


def fresh(vocabulary: Vocabulary, voice: Voice) -> PocketSphinxRecognizer:
    """A new recognizer whose cepstral mean has adapted to the voice, as it would live after a few words.

    The mean carries from utterance to utterance (as it must, live), so a recognizer shared between tests would
    make each result depend on which tests ran before it.
    """
    assert available(voice), f"{voice.engine} is not installed (apt-get install espeak-ng flite)"
    rec = PocketSphinxRecognizer(vocabulary)
    spot_samples(pad(synthesize(voice, WARM_UP), 0.3, 0.6), RATE, rec, vocabulary)
    return rec


def run(recognizer: PocketSphinxRecognizer, vocabulary: Vocabulary, voice: Voice, text: str) -> SpotResult:
    """Speak text with a voice, with silence around it, and spot commands in it."""
    return spot_samples(pad(synthesize(voice, text), 0.5, 0.8), RATE, recognizer, vocabulary)


def first_command(result: SpotResult) -> Command | None:
    """The first command heard, if any."""
    return result.commands[0].command if result.commands else None


@pytest.mark.parametrize("voice", SAFETY_VOICES, ids=lambda v: v.label)
@pytest.mark.parametrize(("phrase", "command"), [("stop", Command.STOP), ("too much", Command.TOO_MUCH)])
def test_safety_phrase_is_heard_by_every_voice(
    vocabulary: Vocabulary, voice: Voice, phrase: str, command: Command
) -> None:
    result = run(fresh(vocabulary, voice), vocabulary, voice, phrase)
    assert first_command(result) == command, [h.text for h in result.hypotheses if h.final]
    assert len(result.commands) == 1


@pytest.mark.parametrize("voice", list(MISS_BUDGET), ids=lambda v: v.label)
def test_canonical_phrase_of_each_command_within_budget(vocabulary: Vocabulary, voice: Voice) -> None:
    recognizer = fresh(vocabulary, voice)
    misses = []
    for command, phrases in vocabulary.phrases.items():
        result = run(recognizer, vocabulary, voice, phrases[0])
        if first_command(result) != command:
            misses.append(f"{phrases[0]!r} -> {[h.text for h in result.hypotheses if h.final]}")
    safety_misses = [m for m in misses if m.startswith(("'stop'", "'too much'"))]
    assert not safety_misses
    assert len(misses) <= MISS_BUDGET[voice], misses


@pytest.mark.parametrize("voice", PARAGRAPH_VOICES, ids=lambda v: v.label)
def test_ordinary_paragraph_gives_no_command(vocabulary: Vocabulary, voice: Voice) -> None:
    result = run(fresh(vocabulary, voice), vocabulary, voice, PARAGRAPH)
    assert result.commands == (), [h.text for h in result.hypotheses if h.final]
    assert sum(h.final for h in result.hypotheses) >= 1


@pytest.mark.parametrize("voice", [ESPEAK_US_F2, ESPEAK_SCOTS, FLITE_SLT, FLITE_RMS], ids=lambda v: v.label)
def test_stop_inside_speech_is_caught_from_a_partial_soon_after_the_word(vocabulary: Vocabulary, voice: Voice) -> None:
    speech = synthesize(voice, "and then stop")
    result = spot_samples(pad(speech, 0.5, 1.0), RATE, fresh(vocabulary, voice), vocabulary)
    assert [c.command for c in result.commands] == [Command.STOP]
    heard = result.commands[0]
    source = next(h for h in result.hypotheses if h.end_s == heard.audio_time_s and h.text == heard.text)
    assert not source.final
    speech_end_s = 0.5 + _last_loud_sample(speech) / RATE
    assert heard.audio_time_s is not None
    assert heard.audio_time_s - speech_end_s < 0.15


def test_spot_file_resamples_and_reports_speed(vocabulary: Vocabulary, tmp_path: Path) -> None:
    recognizer = fresh(vocabulary, FLITE_SLT)
    clip = concat(synthesize(FLITE_SLT, "next"), synthesize(FLITE_SLT, "stop"), gap_s=1.0)
    samples = np.interp(np.arange(0, len(clip), 16000 / 22050), np.arange(len(clip)), clip).astype(np.int16)
    path = write_wav(tmp_path / "clip.wav", pad(samples, 0.0, 0.0), 22050)
    padded = write_wav(tmp_path / "padded.wav", np.concatenate([np.zeros(11025, np.int16), samples]), 22050)
    for wav in (path, padded):
        result = spot_file(wav, recognizer, vocabulary)
        assert [c.command for c in result.commands] == [Command.NEXT, Command.STOP]
        assert 0 < result.real_time_factor < 0.3
        assert abs(result.audio_s - len(samples) / 22050 - (0.5 if wav == padded else 0)) < 0.05


def test_hypotheses_are_partials_then_one_final_per_utterance(vocabulary: Vocabulary) -> None:
    recognizer = fresh(vocabulary, FLITE_SLT)
    clip = concat(synthesize(FLITE_SLT, "too much"), synthesize(FLITE_SLT, "next"), gap_s=1.0)
    result = spot_samples(pad(clip, 0.5, 1.0), RATE, recognizer, vocabulary)
    finals = [h for h in result.hypotheses if h.final]
    assert len(finals) == 2
    times = [h.end_s for h in result.hypotheses]
    assert times == sorted(times)
    assert [c.command for c in result.commands] == [Command.TOO_MUCH, Command.NEXT]


def test_silence_gives_nothing(vocabulary: Vocabulary) -> None:
    result = spot_samples(np.zeros(RATE * 2, np.int16), RATE, PocketSphinxRecognizer(vocabulary), vocabulary)
    assert result.commands == ()
    assert result.hypotheses == ()


def test_grammar_words_come_from_the_vocabulary_and_protect_safety(vocabulary: Vocabulary) -> None:
    words = PocketSphinxRecognizer(vocabulary).grammar_words
    assert "stop" in words and "too much" in words and "zoom" in words
    assert "top" not in words and "two" not in words  # could steal 'stop' and 'too much'


def test_clean_text_collapses_garbage_and_drops_silence() -> None:
    assert clean_text(["<s>", "garbage_s", "garbage_t", "stop(9)", "<sil>", "[NOISE]", "</s>"]) == f"{UNKNOWN} stop"


def _last_loud_sample(samples: np.ndarray) -> int:
    """Index of the last sample above -40 dBFS."""
    return int(np.nonzero(np.abs(samples.astype(np.int32)) > 328)[0][-1])
