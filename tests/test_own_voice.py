"""Own-voice awareness: word timings from eSpeak-NG (for real), and which heard commands are the narrator's echo."""

from __future__ import annotations

import ctypes.util
import threading
import time

import numpy as np
import pytest

from voicecoach.core.commands import load_vocabulary
from voicecoach.core.events import Command, CommandHeard
from voicecoach.listening.own_voice import OwnVoice
from voicecoach.narration.narrator import SoundNarrator
from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer, Speech, WordTiming, spread_words
from voicecoach.settings import NarratorSettings

pytestmark = pytest.mark.engine

needs_espeak = pytest.mark.skipif(
    ctypes.util.find_library("espeak-ng") is None, reason="eSpeak-NG not installed (apt-get install espeak-ng)"
)

VOCABULARY = load_vocabulary("en")
_SENTENCE = "Breathe in, and when you are ready say next to continue"


def timed(*words: tuple[str, float, float]) -> tuple[WordTiming, ...]:
    """Word timings from (text, start_s, end_s)."""
    return tuple(WordTiming(text, start_s, end_s) for text, start_s, end_s in words)


def heard(command: Command, text: str | None = None) -> CommandHeard:
    """A command as a recognizer reports it (its text defaults to the command's own word)."""
    return CommandHeard(command, command.value.replace("_", " ") if text is None else text)


def narration_with_next() -> OwnVoice:
    """The narrator says "... say next to continue" with "next" at 3.0-3.4 s, starting at 0 on the timeline."""
    own = OwnVoice(VOCABULARY)
    own.record(0.0, "when you are ready say next to continue", timed(
        ("when", 0.0, 0.4), ("you", 0.4, 0.7), ("are", 0.7, 1.0), ("ready", 1.0, 1.9), ("say", 2.4, 2.9),
        ("next", 3.0, 3.4), ("to", 3.4, 3.6), ("continue", 3.6, 4.3),
    ))  # fmt: skip
    return own


# --- which commands are echoes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_s", "echo"),
    [
        (2.7, False),  # before the word began (more than 0.2 s)
        (2.85, True),
        (3.2, True),
        (3.9, True),  # a recognizer reports the word after it ended
        (4.55, True),
        (4.7, False),  # more than 1.2 s after the word ended
        (8.0, False),
    ],
)
def test_next_is_an_echo_only_around_the_narrators_next(at_s: float, echo: bool) -> None:
    assert narration_with_next().is_own_echo(heard(Command.NEXT), at_s) is echo


def test_other_commands_during_the_narrators_next_are_kept() -> None:
    own = narration_with_next()
    assert not own.is_own_echo(heard(Command.PAUSE), 3.5)
    assert not own.is_own_echo(heard(Command.RESUME, "go"), 3.5)
    assert own.is_own_echo(heard(Command.RESUME, "continue"), 4.5)  # "continue" was said too, at 3.6-4.3 s


def test_safety_commands_are_never_dropped() -> None:
    own = OwnVoice(VOCABULARY)
    own.record(10.0, "if it is too much, say stop", timed(
        ("if", 0.0, 0.2), ("it", 0.2, 0.3), ("is", 0.3, 0.5), ("too", 0.5, 0.7), ("much", 0.7, 1.0), ("say", 1.3, 1.6),
        ("stop", 1.6, 2.0),
    ))  # fmt: skip
    assert not own.is_own_echo(heard(Command.STOP), 11.8)
    assert not own.is_own_echo(heard(Command.TOO_MUCH), 11.2)
    assert not own.is_own_echo(CommandHeard(Command.STOP), 11.8)


def test_go_back_and_back() -> None:
    go_back = OwnVoice(VOCABULARY)
    go_back.record(0.0, "now go back", timed(("now", 0.0, 0.3), ("go", 0.3, 0.5), ("back", 0.5, 0.9)))
    assert go_back.is_own_echo(heard(Command.BACK, "go back"), 1.5)
    assert go_back.is_own_echo(heard(Command.BACK, "back"), 1.5)  # part of the narrator's phrase
    assert go_back.is_own_echo(heard(Command.RESUME, "go"), 1.5)  # the narrator did say "go"

    back = OwnVoice(VOCABULARY)
    back.record(0.0, "lie on your back", timed(("lie", 0.0, 0.3), ("on", 0.3, 0.5), ("your", 0.5, 0.7),
                                              ("back", 0.7, 1.1)))  # fmt: skip
    assert back.is_own_echo(heard(Command.BACK, "back"), 1.5)
    assert not back.is_own_echo(heard(Command.BACK, "go back"), 1.5)  # the narrator never said "go back"


def test_a_phrase_counts_only_when_the_narrator_said_its_words_consecutively() -> None:
    apart = OwnVoice(VOCABULARY)
    apart.record(0.0, "go slowly back", timed(("go", 0.0, 0.2), ("slowly", 0.2, 0.7), ("back", 0.7, 1.0)))
    assert not apart.is_own_echo(heard(Command.BACK, "go back"), 1.2)
    assert apart.is_own_echo(heard(Command.BACK, "back"), 1.2)


def test_a_narrator_word_that_begins_with_a_phrase_sounds_like_it() -> None:
    own = OwnVoice(VOCABULARY)
    own.record(0.0, "rest against the wall", timed(("rest", 0.0, 0.3), ("against", 0.3, 0.8), ("the", 0.8, 0.9),
                                                   ("wall", 0.9, 1.3)))  # fmt: skip
    assert own.is_own_echo(heard(Command.REPEAT, "again"), 1.0)  # "again" is the start of "against"
    assert not own.is_own_echo(heard(Command.REPEAT, "again"), 3.0)  # long after it: the person's
    assert not own.is_own_echo(heard(Command.NEXT, "next"), 1.0)  # nothing the narrator said begins with it
    # the keyword spotter names the command ("repeat"), not the words said: every phrase of the command counts
    assert not own.is_own_echo(heard(Command.REPEAT, "repeat"), 1.0)
    assert own.is_own_echo(heard(Command.REPEAT, "repeat"), 1.0, any_phrase=True)
    assert not own.is_own_echo(heard(Command.NEXT, "next"), 1.0, any_phrase=True)
    longer = OwnVoice(VOCABULARY)
    longer.record(0.0, "hold it longer", timed(("hold", 0.0, 0.3), ("it", 0.3, 0.4), ("longer", 0.4, 0.9)))
    assert longer.is_own_echo(heard(Command.HOW_LONG, "how long"), 1.0) is False  # "how" was never said
    stopwatch = OwnVoice(VOCABULARY)
    stopwatch.record(0.0, "use a stopwatch", timed(("use", 0.0, 0.2), ("a", 0.2, 0.3), ("stopwatch", 0.3, 0.9)))
    assert not stopwatch.is_own_echo(heard(Command.STOP, "stop"), 1.0)  # safety commands are never dropped


def test_a_phrase_across_find_alls_split_still_counts() -> None:
    own = OwnVoice(VOCABULARY)  # find_all splits this into "lets start" and "again"; "start again" was still said
    own.record(0.0, "Let's start again.", timed(("Let's", 0.0, 0.3), ("start", 0.3, 0.7), ("again", 0.7, 1.1)))
    assert own.is_own_echo(heard(Command.START, "start again"), 1.5)


def test_a_command_heard_without_text_matches_the_narrators_commands_by_find_all() -> None:
    own = OwnVoice(VOCABULARY)
    own.record(0.0, "now go back", timed(("now", 0.0, 0.3), ("go", 0.3, 0.5), ("back", 0.5, 0.9)))
    assert own.is_own_echo(CommandHeard(Command.BACK), 1.5)
    assert not own.is_own_echo(CommandHeard(Command.RESUME), 1.5)  # find_all reads "go back", not "go"


def test_words_after_an_abort_never_count() -> None:
    cut_before = narration_with_next()
    cut_before.cut(2.0)
    assert not cut_before.is_own_echo(heard(Command.NEXT), 3.5)
    assert not cut_before.is_own_echo(CommandHeard(Command.NEXT), 3.5)

    cut_during = narration_with_next()
    cut_during.cut(3.2)  # "next" had begun: it may be half heard
    assert cut_during.is_own_echo(heard(Command.NEXT), 3.5)
    assert not cut_during.is_own_echo(heard(Command.RESUME, "continue"), 4.0)


def test_an_abort_leaves_later_utterances_alone() -> None:
    own = narration_with_next()
    own.cut(1.0)
    own.record(6.0, "next", timed(("next", 0.1, 0.5)))
    assert not own.is_own_echo(heard(Command.NEXT), 3.5)
    assert own.is_own_echo(heard(Command.NEXT), 6.9)


def test_without_timings_words_are_spread_by_their_length() -> None:
    spread = [
        (word.text, round(word.start_s, 6), round(word.end_s, 6)) for word in spread_words("say next, please", 1.6)
    ]
    assert spread == [("say", 0.0, 0.3), ("next", 0.4, 0.8), ("please", 0.9, 1.5)]
    own = OwnVoice(VOCABULARY)
    own.record(10.0, "say next, please", duration_s=1.6)
    assert own.is_own_echo(heard(Command.NEXT), 10.5)
    assert not own.is_own_echo(heard(Command.NEXT), 12.2)
    with pytest.raises(ValueError, match="duration"):
        own.record(12.0, "next")


def test_many_threads_record_and_ask_at_once() -> None:
    own = OwnVoice(VOCABULARY)
    errors: list[BaseException] = []

    def work(offset_s: float) -> None:
        try:
            for i in range(200):
                own.record(offset_s + i, "say next", timed(("say", 0.0, 0.2), ("next", 0.2, 0.5)))
                own.is_own_echo(heard(Command.NEXT), offset_s + i + 0.6)
                own.cut(offset_s + i + 0.1)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(1000.0 * n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors


# --- the narrator records what it plays ---------------------------------------------------------


class HoldingSpeaker:
    """Plays nothing; a buffer 'plays' until finish() or abort()."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.started = threading.Event()
        self._done = threading.Event()
        self._aborted = False

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self._aborted = False
        self._done.clear()
        self.started.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        self._done.wait(timeout_s)
        return not self._aborted

    def finish(self) -> None:
        self._done.set()

    def abort(self) -> None:
        self._aborted = True
        self._done.set()


class TimedToneSynthesizer:
    """One second of tone per word, with word timings: word i sounds from i to i + 0.8 s."""

    sample_rate = 16000

    def __init__(self) -> None:
        self.calls = 0

    def synthesize(self, text: str) -> np.ndarray:
        return self.synthesize_words(text).samples

    def synthesize_words(self, text: str) -> Speech:
        self.calls += 1
        words = text.split()
        timings = tuple(WordTiming(word, float(i), i + 0.8) for i, word in enumerate(words))
        return Speech(np.full(16000 * len(words), 1000, dtype=np.int16), timings)


class PlainToneSynthesizer:
    """One second of tone per word, no timings."""

    sample_rate = 16000

    def synthesize(self, text: str) -> np.ndarray:
        return np.full(16000 * len(text.split()), 1000, dtype=np.int16)


Narration = tuple[OwnVoice, SoundNarrator, HoldingSpeaker, float]


def narrate(synthesizer: object, text: str, cacheable: bool = False) -> Narration:
    """Start saying text; the OwnVoice, narrator, speaker, and time.monotonic() just before play."""
    own = OwnVoice(VOCABULARY)
    speaker = HoldingSpeaker()
    narrator = SoundNarrator(synthesizer, speaker, lambda _: None, observer=own)  # type: ignore[arg-type]
    before_s = time.monotonic()
    narrator.say(1, text, cacheable)
    assert speaker.started.wait(5.0)
    return own, narrator, speaker, before_s


def test_the_narrator_records_the_synthesizers_word_timings_from_play() -> None:
    synthesizer = TimedToneSynthesizer()
    own, narrator, speaker, before_s = narrate(synthesizer, "one two next four five six", cacheable=True)
    assert own.is_own_echo(heard(Command.NEXT), before_s + 3.0)  # "next" sounds from 2.0 to 2.8 s after play()
    assert not own.is_own_echo(heard(Command.NEXT), before_s + 1.0)
    speaker.finish()
    narrator.say(2, "one two next four five six", cacheable=True)
    narrator.close()
    assert synthesizer.calls == 1  # the cache kept the timings with the samples


def test_without_timings_the_narrator_spreads_the_words() -> None:
    own, narrator, speaker, before_s = narrate(PlainToneSynthesizer(), "one two three four five six seven next")
    assert own.is_own_echo(heard(Command.NEXT), before_s + 8.0)  # "next" is the last 5 of 39 characters of 8 s
    assert not own.is_own_echo(heard(Command.NEXT), before_s + 5.0)
    speaker.finish()
    narrator.close()


def test_stop_cuts_the_narrators_words_that_had_not_sounded_yet() -> None:
    own, narrator, speaker, before_s = narrate(TimedToneSynthesizer(), "one two next four five six")
    narrator.stop()
    assert not own.is_own_echo(heard(Command.NEXT), before_s + 3.0)
    narrator.close()


# --- eSpeak-NG's word timings, for real ---------------------------------------------------------


@pytest.fixture(scope="module")
def synthesizer() -> Pyttsx3Synthesizer:
    if ctypes.util.find_library("espeak-ng") is None:
        pytest.skip("eSpeak-NG not installed (apt-get install espeak-ng)")
    return Pyttsx3Synthesizer(NarratorSettings(voice="en-us", rate_wpm=160))


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


@needs_espeak
def test_espeak_gives_every_word_in_order_within_the_audio(synthesizer: Pyttsx3Synthesizer) -> None:
    speech = synthesizer.synthesize_words(_SENTENCE)
    duration_s = len(speech.samples) / synthesizer.sample_rate
    assert [word.text for word in speech.words] == _SENTENCE.replace(",", "").split()
    starts = [word.start_s for word in speech.words]
    assert starts == sorted(starts) and starts[0] < 0.05
    assert all(word.start_s < word.end_s for word in speech.words)
    assert all(a.end_s <= b.start_s + 1e-9 for a, b in zip(speech.words, speech.words[1:], strict=False))
    assert speech.words[-1].end_s <= duration_s + 0.01
    assert speech.words[-1].end_s > duration_s - 0.6  # only eSpeak-NG's end pause follows the last word


@needs_espeak
def test_espeaks_next_is_where_its_sound_is(synthesizer: Pyttsx3Synthesizer) -> None:
    speech = synthesizer.synthesize_words(_SENTENCE)
    rate = synthesizer.sample_rate
    words = {word.text: word for word in speech.words}
    nxt = words["next"]
    assert 1.0 < nxt.start_s < nxt.end_s < len(speech.samples) / rate
    assert 0.15 < nxt.end_s - nxt.start_s < 0.7  # one syllable at 160 words per minute
    inside = speech.samples[round(nxt.start_s * rate) : round(nxt.end_s * rate)]
    assert rms(inside) > 0.3 * rms(speech.samples)
    # "in," is followed by a pause: the word ends where the sound stops, and "and" starts where it resumes
    pause = speech.samples[round(words["in"].end_s * rate) : round(words["and"].start_s * rate)]
    assert words["and"].start_s - words["in"].end_s > 0.08
    assert np.abs(pause.astype(np.int32)).max() < 100
    and_start = round(words["and"].start_s * rate)
    assert rms(speech.samples[and_start : and_start + rate // 50]) > 100


@needs_espeak
def test_word_timings_survive_the_cache_and_other_voices(synthesizer: Pyttsx3Synthesizer) -> None:
    cache = CachedSynthesizer(synthesizer)
    first = cache.synthesize_words("Don't stop, go back to the start.")
    assert cache.synthesize_words("Don't stop, go back to the start.") is first
    assert cache.synthesize("Don't stop, go back to the start.") is first.samples
    assert [w.text for w in first.words] == ["Don't", "stop", "go", "back", "to", "the", "start"]
    fast = Pyttsx3Synthesizer(NarratorSettings(voice="en-us+f3", rate_wpm=320)).synthesize_words(_SENTENCE)
    assert len(fast.words) == len(_SENTENCE.split())
    assert fast.words[-1].end_s < 0.75 * synthesizer.synthesize_words(_SENTENCE).words[-1].end_s


@needs_espeak
def test_real_timings_drive_the_echo_decision(synthesizer: Pyttsx3Synthesizer) -> None:
    speech = synthesizer.synthesize_words(_SENTENCE)
    own = OwnVoice(VOCABULARY)
    own.record(100.0, _SENTENCE, speech.words, len(speech.samples) / synthesizer.sample_rate)
    nxt = next(word for word in speech.words if word.text == "next")
    assert own.is_own_echo(heard(Command.NEXT), 100.0 + nxt.end_s + 0.8)
    assert not own.is_own_echo(heard(Command.NEXT), 100.0 + nxt.start_s - 0.5)
    assert own.is_own_echo(heard(Command.RESUME, "continue"), 100.0 + speech.words[-1].end_s + 0.5)
