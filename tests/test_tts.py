"""Speech synthesis through pyttsx3 and eSpeak-NG, for real, and the phrase cache."""

from __future__ import annotations

import ctypes.util
import threading

import numpy as np
import pytest

from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer, TtsError
from voicecoach.settings import NarratorSettings

pytestmark = [pytest.mark.engine, pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None, reason="eSpeak-NG not installed (apt-get install espeak-ng)"
)]

_SENTENCE = "Now hold the stretch and breathe slowly."


class CountingSynthesizer:
    """Wraps a synthesizer and counts its calls."""

    def __init__(self, inner: Pyttsx3Synthesizer) -> None:
        self.inner = inner
        self.sample_rate = inner.sample_rate
        self.calls: list[str] = []

    def synthesize(self, text: str) -> np.ndarray:
        self.calls.append(text)
        return self.inner.synthesize(text)


@pytest.fixture(scope="module")
def synthesizer() -> Pyttsx3Synthesizer:
    return Pyttsx3Synthesizer(NarratorSettings(voice="en-us", rate_wpm=160))


def test_synthesis_is_non_silent_int16_of_plausible_duration(synthesizer: Pyttsx3Synthesizer) -> None:
    samples = synthesizer.synthesize(_SENTENCE)
    duration_s = len(samples) / synthesizer.sample_rate
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert synthesizer.sample_rate == 22050
    assert 1.5 < duration_s < 6.0  # seven words at 160 words per minute, plus eSpeak's end pause
    assert np.abs(samples.astype(np.int32)).max() > 5000
    assert np.sqrt(np.mean(samples.astype(np.float64) ** 2)) > 500


def test_faster_rate_gives_shorter_speech(synthesizer: Pyttsx3Synthesizer) -> None:
    fast = Pyttsx3Synthesizer(NarratorSettings(voice="en-us", rate_wpm=320))
    assert len(fast.synthesize(_SENTENCE)) < 0.75 * len(synthesizer.synthesize(_SENTENCE))


def test_blank_text_gives_no_samples(synthesizer: Pyttsx3Synthesizer) -> None:
    assert synthesizer.synthesize("  ").size == 0


def test_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(TtsError, match="No eSpeak-NG voice matches 'no-such-voice-xyz'"):
        Pyttsx3Synthesizer(NarratorSettings(voice="no-such-voice-xyz"))


def test_voice_by_name_and_with_a_variant() -> None:
    assert Pyttsx3Synthesizer(NarratorSettings(voice="English (America)")).voice_id == "gmw/en-us"
    female = Pyttsx3Synthesizer(NarratorSettings(voice="en-us+f3"))
    assert female.voice_id == "gmw/en-us+f3"
    assert female.synthesize("Breathe in.").size > 0


def test_ambiguous_voice_lists_the_candidates() -> None:
    with pytest.raises(TtsError, match=r"matches several voices: .*English \(America\) \(gmw/en-us\)"):
        Pyttsx3Synthesizer(NarratorSettings(voice="english"))


def test_out_of_range_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="rate_wpm"):
        Pyttsx3Synthesizer(NarratorSettings(rate_wpm=20))
    with pytest.raises(ValueError, match="volume"):
        Pyttsx3Synthesizer(NarratorSettings(volume=1.5))


def test_cache_hit_returns_the_same_buffer_without_synthesizing(synthesizer: Pyttsx3Synthesizer) -> None:
    counting = CountingSynthesizer(synthesizer)
    cache = CachedSynthesizer(counting)
    first = cache.synthesize("five")
    second = cache.synthesize("five")
    assert second is first
    assert counting.calls == ["five"]
    assert (cache.hits, cache.misses) == (1, 1)
    assert not first.flags.writeable  # shared buffers cannot be changed by a caller


def test_warm_then_lru_eviction(synthesizer: Pyttsx3Synthesizer) -> None:
    counting = CountingSynthesizer(synthesizer)
    cache = CachedSynthesizer(counting, max_entries=3)
    cache.warm(["three", "two", "one"])
    assert counting.calls == ["three", "two", "one"]
    cache.synthesize("three")  # now the most recently used
    cache.synthesize("go")  # evicts "two", the least recently used
    assert "two" not in cache and "three" in cache and "go" in cache
    assert counting.calls == ["three", "two", "one", "go"]


def test_concurrent_calls_from_several_threads(synthesizer: Pyttsx3Synthesizer) -> None:
    texts = [f"Number {word}, keep going." for word in ("one", "two", "three", "four", "five", "six")]
    expected = {text: len(synthesizer.synthesize(text)) for text in texts}
    results: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(text: str) -> None:
        try:
            results[text] = synthesizer.synthesize(text)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(text,)) for text in texts * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    for text in texts:  # eSpeak-NG's noise source varies lengths by a few samples between runs
        assert abs(len(results[text]) - expected[text]) < 0.02 * expected[text]
        assert np.abs(results[text].astype(np.int32)).max() > 5000


def test_voices_lists_espeak_voices() -> None:
    voices = dict(Pyttsx3Synthesizer.voices())
    assert voices["gmw/en-us"] == "English (America)"
