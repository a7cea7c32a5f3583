"""Evaluate command spotting during narration, offline and faster than real time, through the product's own code.

Test audio is built the way a living room builds it: the narrator's real narration of a routine (pyttsx3 driving
eSpeak-NG, laid out on the routine's own timeline) comes back into the microphone as echo through a room (a delay
and a decaying room response) at a level relative to the person's voice (-6 dB and 0 dB by default); spoken
commands are inserted at known times (TTS voices the narrator does not use, and every `<word>/*.wav` clip of a
folder such as ../shared/data/speech_commands, where words that are not commands are distractors); pink noise is
added at a signal-to-noise ratio. The microphone signal then goes through exactly what voice mode runs:
live.CleanMicrophone (reference aligner with its delay estimate, Speex echo canceller, its do-no-harm guard), the
recognizer, the listener's CommandSpotter, and the own-voice filter.

Two passes per engine and condition:
  narration  the whole routine as echo, nothing inserted: every command heard is false (per hour of routine).
  inserted   the routine's spoken lines back to back, a command or distractor every few seconds on top.

    .venv/bin/python scripts/eval_commands.py                       # pocketsphinx, default conditions
    .venv/bin/python scripts/eval_commands.py --conditions quiet,0/20 --clips ../shared/data/speech_commands
    .venv/bin/python scripts/eval_commands.py --engine vosk --model DIR --language ko
    .venv/bin/python scripts/eval_commands.py --quick               # a small smoke run (about a minute)

A condition is ECHO_DB/SNR_DB ("0/20": echo as loud as the voice, noise 20 dB under it), or "quiet" (no echo, no
noise). Levels are active-speech RMS; the person's voice is at -26 dBFS.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))

_LOGGER = logging.getLogger("eval_commands")
RATE = 16000
BLOCK = 320
"""Samples per microphone block (20 ms), as the microphone delivers them."""
VOICE_DBFS = -26.0
"""Active-speech level of the person's voice at the microphone."""
WINDOW_S = 2.5
"""A detection up to this long after an inserted word's end belongs to that insertion."""
GAP_S = (3.2, 5.0)
"""Seconds from one insertion's end to the next one's start (random in this range)."""
ECHO_DELAY_S = 0.045
"""Playback-to-capture delay of the echo (device latencies plus about a metre of air)."""
DEFAULT_CLIPS = _ROOT.parent / "shared" / "data" / "speech_commands"
TUNED_VOICES = (("flite", "slt"), ("flite", "rms"), ("flite", "awb"), ("flite", "kal"),
                ("espeak-ng", "en+m3"), ("espeak-ng", "en+f3"))
"""Voices the recognizer settings were tuned with (reported apart from the held-out ones)."""
HELD_VOICES = (("espeak-ng", "en-gb-scotland+m1"), ("espeak-ng", "en-us+f2"), ("flite", "kal16"))
KOREAN_VOICES = (("espeak-ng", "ko"), ("espeak-ng", "ko+f3"), ("espeak-ng", "ko+m3"))


# --- conditions and clips ----------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """How loud the narrator's echo and the noise are, relative to the person's voice."""

    echo_db: float | None
    """None: no echo at all."""
    snr_db: float | None
    """None: no noise."""

    @property
    def label(self) -> str:
        if self.echo_db is None and self.snr_db is None:
            return "quiet"
        echo = "no echo" if self.echo_db is None else f"echo {self.echo_db:+g} dB"
        noise = "no noise" if self.snr_db is None else f"SNR {self.snr_db:g} dB"
        return f"{echo}, {noise}"


def parse_condition(text: str) -> Condition:
    """'quiet', 'ECHO/SNR', '-/SNR' (no echo) or 'ECHO/-' (no noise)."""
    text = text.strip()
    if text == "quiet":
        return Condition(None, None)
    echo, sep, snr = text.partition("/")
    if not sep:
        raise argparse.ArgumentTypeError(f"condition {text!r}: expected 'quiet' or ECHO_DB/SNR_DB such as 0/20")
    try:
        return Condition(None if echo == "-" else float(echo), None if snr == "-" else float(snr))
    except ValueError:
        raise argparse.ArgumentTypeError(f"condition {text!r}: expected numbers such as -6/20 or 0/10") from None


@dataclass(frozen=True)
class Clip:
    """One spoken word or phrase to insert: 16 kHz int16, trimmed to speech plus a little silence."""

    label: str
    """The command's value ('stop', 'too_much' ...), or '' for a distractor."""
    text: str
    source: str
    """'tts-tuned', 'tts-held' or 'people'."""
    samples: np.ndarray = field(repr=False)
    speech_end_s: float
    """Where the speech ends within the clip."""


def _frame_db(samples: np.ndarray, frame: int = 320) -> np.ndarray:
    """Energy of each 20 ms frame, dBFS."""
    count = max(1, len(samples) // frame)
    frames = samples[: count * frame].astype(np.float64).reshape(count, -1) / 32768.0
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def active_rms_db(samples: np.ndarray) -> float:
    """RMS level of the frames within 30 dB of the loudest (the speech, not the pauses), dBFS."""
    db = _frame_db(samples)
    active = db[db > db.max() - 30.0]
    return float(10 * np.log10(np.mean(10 ** (active / 10)))) if len(active) else -120.0


def _scaled(samples: np.ndarray, level_db: float) -> np.ndarray:
    """float64 samples scaled to an active-speech level."""
    return samples.astype(np.float64) * 10 ** ((level_db - active_rms_db(samples)) / 20)


def _trimmed(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """The clip from 0.1 s before its speech to 0.2 s after it, and where the speech ends in it (s)."""
    db = _frame_db(samples)
    loud = np.nonzero(db > db.max() - 35.0)[0]
    first, last = (int(loud[0]), int(loud[-1])) if len(loud) else (0, len(db) - 1)
    start = max(0, first * 320 - RATE // 10)
    end = min(len(samples), (last + 1) * 320 + RATE // 5)
    return samples[start:end].astype(np.int16), ((last + 1) * 320 - start) / RATE


def command_phrases(vocabulary: Any) -> list[tuple[str, str]]:
    """(command value, phrase) to insert: the first phrase of every command, and every safety phrase."""
    chosen = []
    for command, phrases in vocabulary.phrases.items():
        for index, phrase in enumerate(phrases):
            if index == 0 or command.is_safety:
                chosen.append((command.value, phrase))
    return chosen


def tts_clips(vocabulary: Any, voices: Iterable[tuple[str, str]], source: str) -> list[Clip]:
    """Every inserted phrase spoken by every available voice."""
    import speech

    clips = []
    for engine, name in voices:
        voice = speech.Voice(engine, name)
        if not speech.available(voice):
            _LOGGER.warning("%s is not installed: its clips are left out", voice.label)
            continue
        for value, phrase in command_phrases(vocabulary):
            samples, end_s = _trimmed(speech.synthesize(voice, phrase))
            clips.append(Clip(value, phrase, f"{source}", samples, end_s))
    return clips


def folder_clips(folder: Path, vocabulary: Any, per_word: int | None = None) -> list[Clip]:
    """Every `<word>/*.wav` of a folder: a word that is a whole command phrase is that command, others distract."""
    from voicecoach.audio.wavfile import read_wav, resample

    clips = []
    for word_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        word = word_dir.name.replace("_", " ")
        match = vocabulary.match(word)
        label = match.command.value if match is not None and match.phrase == word else ""
        for path in sorted(word_dir.glob("*.wav"))[:per_word]:
            samples, rate = read_wav(path)
            samples, end_s = _trimmed(resample(samples, rate, RATE))
            clips.append(Clip(label, word, "people", samples, end_s))
    return clips


# --- the narration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spoken:
    """One utterance of the narrator on the timeline."""

    start_s: float
    text: str
    samples: np.ndarray = field(repr=False)
    """int16 at rate, as the speaker plays them."""
    rate: int
    words: tuple[Any, ...] = ()
    """Word timings within the utterance (voicecoach.tts.WordTiming), where the synthesizer gives them."""

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.samples) / self.rate


class NarrationVoice:
    """The narrator's real voice (pyttsx3, eSpeak-NG), remembering what it already said."""

    def __init__(self) -> None:
        from voicecoach.narration.synthesis import Pyttsx3Synthesizer

        self._synth = Pyttsx3Synthesizer()
        self._said: dict[str, tuple[np.ndarray, tuple[Any, ...]]] = {}

    def say(self, text: str) -> tuple[np.ndarray, int, tuple[Any, ...]]:
        """Samples, rate and word timings of a text."""
        if text not in self._said:
            with_words = getattr(self._synth, "synthesize_words", None)
            if with_words is not None:
                speech = with_words(text)
                self._said[text] = (np.asarray(speech.samples, dtype=np.int16), tuple(speech.words))
            else:
                self._said[text] = (self._synth.synthesize(text), ())
        samples, words = self._said[text]
        return samples, self._synth.sample_rate, words


def routine_lines(routine_name: str) -> Iterator[tuple[float, str]]:
    """(silence before, text) for everything the narrator says over the routine, in order, on its timeline."""
    from voicecoach.core.plan import Kind, build_plan
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import load_routine_file

    for segment in build_plan(load_routine_file(find_routine(routine_name))):
        if segment.text:
            yield 0.3, segment.text
        if segment.kind in (Kind.HOLD, Kind.REST, Kind.RELAX) and segment.duration_s > 0:
            quiet_s = max(0.0, segment.duration_s - segment.countdown_from)
            if segment.halfway:
                yield quiet_s / 2, "Halfway."
                quiet_s /= 2
            first = True
            for number in range(segment.countdown_from, 0, -1):
                yield (quiet_s if first else 0.3), ["", "One.", "Two.", "Three.", "Four.", "Five."][number]
                first = False
            if first:
                yield quiet_s, ""
        if segment.end_text:
            yield 0.3, segment.end_text


def lay_out(voice: NarrationVoice, lines: Iterable[tuple[float, str]], until_s: float | None = None) -> list[Spoken]:
    """Utterances on a timeline, each after its silence; with until_s, the lines loop until that time."""
    spoken: list[Spoken] = []
    clock = 0.5
    pending = list(lines)
    while True:
        for pause_s, text in pending:
            clock += pause_s
            if text:
                samples, rate, words = voice.say(text)
                spoken.append(Spoken(clock, text, samples, rate, words))
                clock = spoken[-1].end_s
            if until_s is not None and clock >= until_s:
                return spoken
        if until_s is None:
            return spoken


# --- building the microphone signal --------------------------------------------------------------


def room_response(rt60_s: float, direct_to_reverb_db: float, seed: int) -> np.ndarray:
    """An impulse response: the direct sound, then exponentially decaying diffuse reflections from 3 ms on."""
    rng = np.random.default_rng(seed)
    length = int(rt60_s * RATE)
    t = np.arange(length) / RATE
    tail = rng.normal(0.0, 1.0, length) * 10 ** (-3 * t / rt60_s)
    tail[: int(0.003 * RATE)] = 0.0
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail


def convolve(signal: np.ndarray, response: np.ndarray) -> np.ndarray:
    """Overlap-add FFT convolution, trimmed to the signal's length."""
    size = 1 << int(np.ceil(np.log2(len(response) * 8)))
    step = size - len(response) + 1
    spectrum = np.fft.rfft(response, size)
    out = np.zeros(len(signal) + size, dtype=np.float64)
    for start in range(0, len(signal), step):
        piece = np.fft.irfft(np.fft.rfft(signal[start : start + step], size) * spectrum, size)
        out[start : start + size] += piece
    return out[: len(signal)]


def pink_noise(count: int, seed: int) -> np.ndarray:
    """Noise with a 1/f spectrum (a fan, a fridge, the street), unit RMS."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.normal(0.0, 1.0, count))
    frequency = np.fft.rfftfreq(count, 1 / RATE)
    spectrum[1:] /= np.sqrt(frequency[1:] / frequency[1])
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, count)
    return noise / np.sqrt(np.mean(noise**2))


@dataclass(frozen=True)
class Insertion:
    """A clip placed on the timeline."""

    clip: Clip
    start_s: float

    @property
    def speech_end_s(self) -> float:
        return self.start_s + self.clip.speech_end_s


def schedule(clips: list[Clip], start_s: float, seed: int) -> list[Insertion]:
    """All clips in a random order, one after another with random gaps."""
    rng = random.Random(seed)
    order = clips[:]
    rng.shuffle(order)
    placed, clock = [], start_s
    for clip in order:
        placed.append(Insertion(clip, clock))
        clock += len(clip.samples) / RATE + rng.uniform(*GAP_S)
    return placed


def microphone_signal(
    narration: list[Spoken], insertions: list[Insertion], condition: Condition, length_s: float, seed: int
) -> tuple[np.ndarray, list[bool]]:
    """int16 microphone samples, and for each insertion whether the narrator was talking over it."""
    from voicecoach.audio.wavfile import resample

    count = int(length_s * RATE) // BLOCK * BLOCK
    voice = np.zeros(count)
    for inserted in insertions:
        at = int(inserted.start_s * RATE)
        piece = _scaled(inserted.clip.samples, VOICE_DBFS)[: count - at]
        voice[at : at + len(piece)] += piece
    voice = convolve(voice, room_response(0.35, 6.0, seed + 1))
    talking = []
    echo = np.zeros(count)
    if narration:
        for spoken in narration:
            at = int(round((spoken.start_s + ECHO_DELAY_S) * RATE))
            piece = resample(spoken.samples, spoken.rate, RATE).astype(np.float64)[: max(0, count - at)]
            echo[at : at + len(piece)] += piece
        echo = convolve(echo, room_response(0.4, 3.0, seed + 2))
    mic = voice
    if condition.echo_db is not None and narration:
        level = active_rms_db(np.clip(echo, -32768, 32767))
        mic = mic + echo * 10 ** ((VOICE_DBFS + condition.echo_db - level) / 20)
    for inserted in insertions:
        a, b = int(inserted.start_s * RATE), int(inserted.speech_end_s * RATE)
        talking.append(condition.echo_db is not None and bool(np.mean(np.abs(echo[a:b]) > 30) > 0.5))
    if condition.snr_db is not None:
        rms = 32768 * 10 ** ((VOICE_DBFS - condition.snr_db) / 20)
        mic = mic + pink_noise(count, seed + 3) * rms
    return np.clip(np.rint(mic), -32768, 32767).astype(np.int16), talking


# --- running the product's listening chain -----------------------------------------------------


@dataclass(frozen=True)
class _Played:
    start_s: float
    sample_rate: int
    samples: np.ndarray


class _TimelineSpeaker:
    """The speaker's playback log as it would read at a moment on the timeline."""

    def __init__(self, narration: list[Spoken], echo: bool) -> None:
        self._narration = narration if echo else []
        self._next = 0
        self._recent: list[_Played] = []
        self.now_s = 0.0

    def played(self) -> list[_Played]:
        while self._next < len(self._narration) and self._narration[self._next].start_s <= self.now_s:
            spoken = self._narration[self._next]
            self._recent.append(_Played(spoken.start_s, spoken.rate, spoken.samples))
            self._next += 1
        self._recent = [p for p in self._recent if p.start_s + len(p.samples) / p.sample_rate > self.now_s - 10]
        return self._recent


@dataclass(frozen=True)
class Detection:
    command: str
    at_s: float
    """Timeline time of the end of the block after which the listener reported it."""
    text: str
    dropped_as_own: bool = False


def listen(
    mic_samples: np.ndarray,
    narration: list[Spoken],
    echo: bool,
    recognizer: Any,
    vocabulary: Any,
    spotter_settings: Any = None,
) -> tuple[list[Detection], float]:
    """Run the microphone signal through the product's listening pipeline, the narration as its playback log and
    its word timings given to the own-voice filter; the detections and the CPU seconds spent."""
    from voicecoach.listening.pipeline import ListeningPipeline

    pipeline = ListeningPipeline(recognizer, vocabulary, echo_cancel=True, rules=spotter_settings)
    for spoken in narration if echo else []:
        pipeline.own_voice.record(spoken.start_s + ECHO_DELAY_S, spoken.text, spoken.words,
                                  len(spoken.samples) / spoken.rate)  # fmt: skip
    speaker = _TimelineSpeaker(narration, echo)
    recognizer.reset()
    detections = []
    cpu_start = time.thread_time()
    for offset in range(0, len(mic_samples), BLOCK):
        speaker.now_s = offset / RATE
        block = mic_samples[offset : offset + BLOCK]
        for heard in pipeline.process(block, offset / RATE, speaker.played()):
            detections.append(Detection(heard.command.value, (offset + len(block)) / RATE, heard.text))
    for heard in pipeline.flush(len(mic_samples) / RATE):
        detections.append(Detection(heard.command.value, len(mic_samples) / RATE, heard.text))
    return detections, time.thread_time() - cpu_start


# --- scoring -------------------------------------------------------------------------------------


@dataclass
class Score:
    """What one engine did under one condition."""

    inserted: Counter[str] = field(default_factory=Counter)
    """Per group: 'safety', 'other', 'distractor', and the same per source ('safety/people' ...)."""
    detected: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    per_command: dict[str, list[int]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    safety_latencies_ms: list[float] = field(default_factory=list)
    false_narration: list[Detection] = field(default_factory=list)
    narration_s: float = 0.0
    false_between: int = 0
    own_dropped: int = 0
    audio_s: float = 0.0
    cpu_s: float = 0.0
    misses: list[str] = field(default_factory=list)


def score_insertions(score: Score, insertions: list[Insertion], talking: list[bool], found: list[Detection]) -> None:
    """Match detections to insertions (within WINDOW_S after the speech ends); the rest are false commands."""
    from voicecoach.core.events import Command

    kept = [d for d in found if not d.dropped_as_own]
    score.own_dropped += len(found) - len(kept)
    used: set[int] = set()
    for inserted, over_narration in zip(insertions, talking, strict=True):
        clip = inserted.clip
        window = [(i, d) for i, d in enumerate(kept) if inserted.start_s <= d.at_s <= inserted.speech_end_s + WINDOW_S]
        used.update(i for i, _ in window)
        group = "distractor" if not clip.label else ("safety" if Command(clip.label).is_safety else "other")
        keys = [group, f"{group}/{clip.source}"] + ([f"{group} over narration"] if over_narration else [])
        for key in keys:
            score.inserted[key] += 1
        if not clip.label:
            if window:
                for key in keys:
                    score.detected[key] += 1
                score.misses.append(f"distractor {clip.text!r} ({clip.source}) -> {window[0][1].command}")
            continue
        score.per_command.setdefault(clip.label, [0, 0])[1] += 1
        hit = next((d for _, d in window if d.command == clip.label), None)
        if hit is not None:
            for key in keys:
                score.detected[key] += 1
            score.per_command[clip.label][0] += 1
            latency = (hit.at_s - inserted.speech_end_s) * 1000
            score.latencies_ms.append(latency)
            if group == "safety":
                score.safety_latencies_ms.append(latency)
        elif window:
            for key in keys:
                score.wrong[key] += 1
            score.misses.append(f"{clip.text!r} ({clip.source}) heard as {window[0][1].command}")
        else:
            score.misses.append(f"{clip.text!r} ({clip.source}) missed")
    score.false_between += len([d for i, d in enumerate(kept) if i not in used])


# --- one engine, one condition --------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    engine: str
    model: str | None
    language: str
    condition: Condition
    routine: str
    clips: tuple[Clip, ...]
    narration_pass: bool
    seed: int
    max_narration_s: float | None
    spotter: tuple[tuple[str, float], ...] = ()
    """SpotterSettings fields to override (tuning experiments)."""


def make_recognizer(engine: str, model: str | None, vocabulary: Any) -> Any:
    """The engine as voice mode makes it."""
    from voicecoach.listening.engines import make_recognizer as live_recognizer
    from voicecoach.settings import RecognizerSettings

    settings = RecognizerSettings(engine=engine, model_dir=Path(model) if model else None,
                                  language=vocabulary.language)
    return live_recognizer(settings, vocabulary)


def run_job(job: Job) -> tuple[Job, Score]:
    """Both passes for one engine and condition (in a worker process)."""
    from voicecoach.core.commands import load_vocabulary
    from voicecoach.listening.rules import SpotterSettings

    logging.basicConfig(level=logging.WARNING)
    vocabulary = load_vocabulary(job.language)
    spotter = dataclasses.replace(SpotterSettings(), **dict(job.spotter))
    recognizer = make_recognizer(job.engine, job.model, vocabulary)
    voice = NarrationVoice()
    score = Score()
    echo = job.condition.echo_db is not None
    if job.narration_pass:
        narration = lay_out(voice, routine_lines(job.routine))
        if job.max_narration_s is not None:
            narration = [s for s in narration if s.end_s <= job.max_narration_s]
        length_s = narration[-1].end_s + 2.0
        mic, _ = microphone_signal(narration, [], job.condition, length_s, job.seed)
        found, cpu_s = listen(mic, narration, echo, recognizer, vocabulary, spotter)
        score.false_narration = [d for d in found if not d.dropped_as_own]
        score.own_dropped += len(found) - len(score.false_narration)
        score.narration_s, score.audio_s, score.cpu_s = length_s, length_s, cpu_s
    if job.clips:
        insertions = schedule(list(job.clips), 2.0, job.seed)
        length_s = insertions[-1].speech_end_s + WINDOW_S + 1.0
        spoken_lines = [(0.4, text) for _, text in routine_lines(job.routine) if text]
        narration = lay_out(voice, spoken_lines, until_s=length_s) if echo else []
        mic, talking = microphone_signal(narration, insertions, job.condition, length_s, job.seed)
        found, cpu_s = listen(mic, narration, echo, recognizer, vocabulary, spotter)
        score_insertions(score, insertions, talking, found)
        score.audio_s += length_s
        score.cpu_s += cpu_s
    return job, score


# --- report ----------------------------------------------------------------------------------------


def _ratio(score: Score, key: str) -> str:
    n = score.inserted.get(key, 0)
    return f"{score.detected.get(key, 0)}/{n} ({100 * score.detected.get(key, 0) / n:.0f}%)" if n else "-"


def _percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return f"{statistics.median(ordered):.0f} / {p95:.0f}"


def report(results: list[tuple[Job, Score]], verbose: bool) -> None:
    """One table per engine: a row per condition."""
    sources = sorted({k.split("/", 1)[1] for _, s in results for k in s.inserted if "/" in k})
    for engine in sorted({job.engine for job, _ in results}):
        print(f"\n== {engine} ==")
        header = ("condition", "safety", "safety over narration", "other commands", "wrong", "distractor->cmd",
                  "false/h narration", "false between", "own-voice drops", "latency ms med/p95 (safety)", "CPU RT")
        rows = []
        for job, s in (r for r in results if r[0].engine == engine):
            false_h = f"{len(s.false_narration) / (s.narration_s / 3600):.1f} ({len(s.false_narration)})" \
                if s.narration_s else "-"
            rows.append((job.condition.label, _ratio(s, "safety"), _ratio(s, "safety over narration"),
                         _ratio(s, "other"), str(sum(s.wrong[k] for k in ("safety", "other"))),
                         _ratio(s, "distractor"), false_h, str(s.false_between), str(s.own_dropped),
                         f"{_percentiles(s.latencies_ms)} ({_percentiles(s.safety_latencies_ms)})",
                         f"{s.cpu_s / s.audio_s:.3f}" if s.audio_s else "-"))
        _table(header, rows)
        by_source = [(job.condition.label, *(_ratio(s, f"{g}/{src}") for src in sources for g in ("safety", "other")))
                     for job, s in results if job.engine == engine]
        print("\nby source (detected/inserted):")
        _table(("condition", *(f"{g} {src}" for src in sources for g in ("safety", "other"))), by_source)
        for job, s in results:
            if job.engine != engine:
                continue
            per = ", ".join(f"{c} {d}/{n}" for c, (d, n) in sorted(s.per_command.items()))
            print(f"\n[{job.condition.label}] per command: {per}")
            for d in s.false_narration:
                print(f"  false during narration at {d.at_s:7.1f} s: {d.command} ({d.text!r})")
            if verbose:
                for line in s.misses:
                    print(f"  {line}")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", action="append", choices=("spotter", "pocketsphinx", "vosk"),
                        help="engine to evaluate (repeatable; default pocketsphinx)")
    parser.add_argument("--model", help="Vosk model folder")
    parser.add_argument("--language", default="en", help="vocabulary language (ko for the Korean Vosk model)")
    parser.add_argument("--conditions", default="quiet,-6/20,0/20,0/10",
                        help="comma-separated: quiet, ECHO_DB/SNR_DB (default: %(default)s)")
    parser.add_argument("--routine", default="lower-back")
    parser.add_argument("--clips", type=Path, action="append",
                        help=f"folder of <word>/*.wav clips (repeatable; default {DEFAULT_CLIPS} if present)")
    parser.add_argument("--no-clips", action="store_true", help="no clip folder, TTS voices only")
    parser.add_argument("--no-tts", action="store_true", help="no TTS voices, clip folders only")
    parser.add_argument("--no-narration-pass", action="store_true", help="skip the false-command pass")
    parser.add_argument("--jobs", type=int, default=min(2, multiprocessing.cpu_count()))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 60 s of narration, one voice, two clips per word")
    parser.add_argument("--spotter", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a listener.SpotterSettings field, e.g. stable_partials_multiword=2")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss and false command")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    from voicecoach.core.commands import load_vocabulary

    try:
        conditions = [parse_condition(c) for c in args.conditions.split(",")]
    except argparse.ArgumentTypeError as exc:
        parser.error(str(exc))
    vocabulary = load_vocabulary(args.language)
    spotter = tuple(_spotter_override(text, parser) for text in args.spotter)
    engines = args.engine or ["pocketsphinx"]
    clips = _gather_clips(args, vocabulary)
    if not clips and args.no_narration_pass:
        parser.error("nothing to evaluate: no clips and no narration pass")
    jobs = [Job(engine, args.model, args.language, condition, args.routine, tuple(clips),
                not args.no_narration_pass, args.seed, 60.0 if args.quick else None, spotter)
            for engine in engines for condition in conditions]
    print(f"{len(clips)} clips ({', '.join(f'{k} {v}' for k, v in sorted(Counter(c.source for c in clips).items()))})"
          f", {len(jobs)} runs on {args.jobs} processes", flush=True)
    started = time.monotonic()
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            results = pool.map(run_job, jobs, chunksize=1)
    else:
        results = [run_job(job) for job in jobs]
    report(results, args.verbose)
    print(f"\nwall time {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps([_figures(job, s) for job, s in results], indent=2))
    return 0


def _spotter_override(text: str, parser: argparse.ArgumentParser) -> tuple[str, float]:
    """'FIELD=VALUE' for a SpotterSettings field."""
    from voicecoach.listening.rules import SpotterSettings

    name, _, value = text.partition("=")
    fields = {f.name for f in dataclasses.fields(SpotterSettings)}
    if name not in fields:
        parser.error(f"--spotter {text!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(fields))}")
    try:
        number = float(value)
    except ValueError:
        parser.error(f"--spotter {text!r}: {value!r} is not a number")
    return name, int(number) if number.is_integer() and name != "min_coverage" else number


def _gather_clips(args: argparse.Namespace, vocabulary: Any) -> list[Clip]:
    """The TTS clips and the clip folders' clips the arguments ask for."""
    clips: list[Clip] = []
    if not args.no_tts:
        if args.language == "ko":
            clips += tts_clips(vocabulary, KOREAN_VOICES[:1] if args.quick else KOREAN_VOICES, "tts-held")
        else:
            clips += tts_clips(vocabulary, TUNED_VOICES[:1] if args.quick else TUNED_VOICES, "tts-tuned")
            clips += tts_clips(vocabulary, HELD_VOICES[:1] if args.quick else HELD_VOICES, "tts-held")
    folders = [] if args.no_clips else (args.clips or ([DEFAULT_CLIPS] if DEFAULT_CLIPS.is_dir() else []))
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"eval_commands: clip folder {folder} does not exist (expected <word>/*.wav)")
        clips += folder_clips(folder, vocabulary, 2 if args.quick else None)
    return clips


def _figures(job: Job, s: Score) -> dict[str, Any]:
    """The figures of one run, for --json."""
    return {
        "engine": job.engine, "condition": job.condition.label, "echo_db": job.condition.echo_db,
        "snr_db": job.condition.snr_db, "inserted": dict(s.inserted), "detected": dict(s.detected),
        "wrong": dict(s.wrong), "per_command": {k: list(v) for k, v in s.per_command.items()},
        "false_narration": [dataclasses.asdict(d) for d in s.false_narration], "narration_s": s.narration_s,
        "false_between": s.false_between, "own_dropped": s.own_dropped,
        "latency_ms": s.latencies_ms, "safety_latency_ms": s.safety_latencies_ms,
        "cpu_rt": s.cpu_s / s.audio_s if s.audio_s else None,
    }


if __name__ == "__main__":
    sys.exit(main())
