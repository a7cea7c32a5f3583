"""The one listening pipeline: microphone blocks and the speaker's playback log in, CommandHeard out.

    microphone block -> clip guard (turns the narrator down when its voice clips the microphone)
                     -> EchoRemover (aligned playback as reference) -> the engine's noise floor, if it asks for one
                     -> recognizer -> spotting rules -> own-voice filter (non-safety commands only) -> CommandHeard

Everything that listens (run, serve, listen, the evaluation and the benchmarks) builds its chain here, with
`ListeningPipeline.from_settings`, and feeds it with `process`; nothing else assembles these parts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from voicecoach.audio.wavfile import read_wav, resample
from voicecoach.core.commands import Vocabulary
from voicecoach.core.events import CommandHeard
from voicecoach.echo.aligner import PlayedAudio, played_within
from voicecoach.echo.clean_mic import EchoRemover
from voicecoach.echo.clipping import ClipGuard, ClipGuardSettings
from voicecoach.echo.near_end import NearEndSettings
from voicecoach.listening.engines import make_recognizer
from voicecoach.listening.own_voice import OwnVoice
from voicecoach.listening.recognizer import Hypothesis, Recognizer
from voicecoach.listening.rules import CommandSpotter, SpotterSettings
from voicecoach.settings import ListeningSettings, YieldSettings

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE = 16000
"""Hz: what the echo canceller and every engine take."""
_FILE_BLOCK_MS = 20
_NARRATING_CONFIDENCE = 0.9
"""While the narrator talks, a non-safety command needs at least this confidence (its echo residue is the most
common source of false commands; stop and too much are never held back). An engine that can (the spotter's
set_floors) is told so before it decides, and fires on the first frame that reaches it; other engines' commands
below it are set aside after the fact."""
_NARRATION_TAIL_S = 0.5
_DITHER_TABLE_S = 1.0
"""Seconds of noise in the table an engine's noise floor repeats."""
_SETTLING_CONFIDENCE = 0.8
"""While the narrator talks and the echo canceller has not yet learned the room (its first seconds, or after a
reset; see EchoRemover.settled), stop and too much need at least this confidence too: until then the spotter hears
more of the narrator's own voice than it was trained on, and the main head's too much at 0.55 and stop at 0.65 fired
on it (live, 2 and 3 of 30 trials stopped before the person spoke; in 10-minute narration-only runs too much at
0.59, 0.66, 0.69, 0.72 and 0.74 in the first 15 s, and 1.00 on an intro line since reworded). The safety head's own
threshold is 0.9, so what it hears still acts. It was 0.9 until people's stops at a session's start were measured
(scripts/bench_stop_latency.py --fresh-rig, 30 held-out speakers at 0 dB echo, every stop within the first seconds
of playback): 20/30 heard at 0.9, 25/30 with no such floor (five heard at 0.66-0.86); see docs/eval/room-eval.md
for 0.8."""
_SETTLING_OTHER_CONFIDENCE = 0.99
"""While the narrator talks and the canceller is still learning the room, a command other than stop and too much
needs at least this (instead of _NARRATING_CONFIDENCE): live at 0 dB echo the narrator's start-up residue fired
repeat at 0.96 and 0.97 at 12 and 12.7 s of two 10-minute runs (2026-12-07). At most 15 s of narration a session;
a person's command that is missed then can be said again, and stop and too much are not affected by this."""


class FloorControl(Protocol):
    """What the pipeline may do to the narrator by itself: fade it (0 dB: back to its level), and turn it down."""

    def fade(self, gain_db: float) -> None:
        """Play on at this gain."""
        ...

    def turn_down(self, step_db: float) -> None:
        """Play quieter by step_db from now on, for good."""
        ...


@dataclass(frozen=True)
class PipelineRun:
    """What a run over recorded audio found, and how fast."""

    commands: tuple[CommandHeard, ...]
    hypotheses: tuple[Hypothesis, ...]
    audio_s: float
    """Seconds of audio."""
    cpu_s: float
    """Seconds of this thread's CPU time spent in the pipeline."""

    @property
    def real_time_factor(self) -> float:
        """CPU seconds per audio second."""
        return self.cpu_s / self.audio_s if self.audio_s else 0.0


class ListeningPipeline:
    """Echo removal, recognizer, spotting rules and own-voice filter, fed one microphone block at a time."""

    def __init__(
        self,
        recognizer: Recognizer,
        vocabulary: Vocabulary,
        *,
        echo_cancel: bool = True,
        rules: SpotterSettings | None = None,
        own_voice: OwnVoice | None = None,
        yield_floor: YieldSettings | None = None,
        clip_guard: ClipGuardSettings | None = ClipGuardSettings(),  # noqa: B008 (frozen: one shared default is fine)
    ) -> None:
        if recognizer.sample_rate != SAMPLE_RATE:
            raise ValueError(f"{recognizer.name} takes {recognizer.sample_rate} Hz; the pipeline runs at {SAMPLE_RATE}")
        self.recognizer = recognizer
        self.vocabulary = vocabulary
        self.own_voice = own_voice if own_voice is not None else OwnVoice(vocabulary)
        """What the narrator reports its playback to (a narration.narrator.PlaybackObserver)."""
        self._rules = CommandSpotter(vocabulary, rules)
        self.hypotheses: list[Hypothesis] = []
        """Every hypothesis so far, when keep_hypotheses is on (file runs)."""
        self.keep_hypotheses = False
        self.ignored_own_voice = 0
        """Commands dropped as the narrator's own words."""
        self.floor: FloorControl | None = None
        """The narrator, to fade when the person seems to start a safety command (set once it exists)."""
        self._yield = yield_floor or YieldSettings(enabled=False)
        watch = self._yield.enabled and self._yield.near_end  # the person's voice is looked for only when it is used
        self._echo = EchoRemover(SAMPLE_RATE, enabled=echo_cancel, near_end=NearEndSettings() if watch else None)
        self.clip_guard = ClipGuard(clip_guard) if clip_guard is not None else None
        """Turns the narrator down (through floor) when the microphone clips on its voice; None: off."""
        self.on_turned_down: Callable[[float], None] | None = None
        """Called with how far down the narrator is, dB, after each step the clip guard takes (on the listening
        thread): the rig remembers it for the devices (voicecoach.store.levels)."""
        floor_dbfs = getattr(recognizer, "noise_floor_dbfs", None)
        self._dither = _Dither(floor_dbfs) if floor_dbfs is not None else None
        """The seeded noise the engine asks to hear under every block (the spotter: see its noise_floor_dbfs)."""
        self.on_cleaned: Callable[[np.ndarray], None] | None = None
        """Called with each block as the echo canceller left it (before any noise floor), on the listening thread:
        for keeping what the engine was given (scripts/bench_stop_latency.py --save-cleaned)."""
        self._faded_at_s: float | None = None
        self._rearmed = True
        """False from a command until the safety score has fallen below the yield score: the word that was acted on
        must not fade the narrator's answer to it (it did: the answer, "Okay, I have stopped...", played faded and
        came back at full level a second later)."""
        self._set_floors = getattr(recognizer, "set_floors", None)
        """The engine's own floor (the spotter's set_floors), or None: looked up once, not every 20 ms block."""
        self._any_phrase = not getattr(recognizer, "hears_words", True)
        """The engine names the command, not the words said: the own-voice filter takes every phrase of it."""
        self._settling_confidence = _SETTLING_CONFIDENCE if callable(getattr(recognizer, "scores", None)) else 0.0
        """Only for an engine whose confidences are calibrated class probabilities (the spotter): PocketSphinx's
        and Vosk's are not comparable with 0.9."""
        self.fades = 0
        self.false_fades = 0
        """Fades that no command followed (each cost the listener about a second of quieter narration)."""

    @classmethod
    def from_settings(cls, settings: ListeningSettings, vocabulary: Vocabulary) -> ListeningPipeline:
        """The pipeline the settings describe (opens the engine and its model)."""
        recognizer = make_recognizer(settings.recognizer, vocabulary)
        return cls(recognizer, vocabulary, echo_cancel=settings.echo_cancel, rules=settings.rules,
                   yield_floor=settings.yield_floor, clip_guard=settings.clip_guard)

    @property
    def name(self) -> str:
        """The engine's name."""
        return self.recognizer.name

    def process(self, pcm: np.ndarray, capture_s: float, played: Iterable[PlayedAudio] = ()) -> list[CommandHeard]:
        """One int16 16 kHz block captured at capture_s (monotonic), with the playback log; the commands heard."""
        played = list(played)
        narrating = self._narrating(played, capture_s)
        guarding = narrating and self._faded_at_s is None  # faded 25 dB down, a clip is the person's, not the echo
        if self.clip_guard is not None and self.clip_guard.feed(pcm, capture_s + len(pcm) / SAMPLE_RATE, guarding):
            self._turn_down()
        cleaned = self._echo.clean(np.asarray(pcm, dtype=np.int16), capture_s, played)
        if self.on_cleaned is not None:
            self.on_cleaned(cleaned)
        if self._set_floors is not None:  # the engine itself waits for a sure enough frame (see _commands)
            learning = narrating and not self._echo.settled and self._settling_confidence > 0
            self._set_floors(_SETTLING_OTHER_CONFIDENCE if learning else _NARRATING_CONFIDENCE if narrating else 0.0,
                             self._settling_confidence if learning else 0.0)  # fmt: skip
        heard_pcm = cleaned if self._dither is None else self._dither.add(cleaned)
        hyps = self.recognizer.accept(heard_pcm.astype("<i2").tobytes())
        now_s = capture_s + len(pcm) / SAMPLE_RATE
        heard = self._commands(hyps, now_s, narrating)
        self._yield_floor(now_s, bool(heard), narrating and self._yield.near_end and self._echo.near_end)
        return heard

    def _turn_down(self) -> None:
        """The narrator's voice clips the microphone: one step quieter (see voicecoach.echo.clipping)."""
        assert self.clip_guard is not None
        step_db, down_db = self.clip_guard.settings.step_db, self.clip_guard.down_db
        turn_down = getattr(self.floor, "turn_down", None)
        if not callable(turn_down):  # a recording with its reference: there is nothing to turn down
            if down_db == step_db:
                _LOGGER.warning("The microphone clips on the narrator's voice: its echo cannot be fully cancelled.")
            return
        turn_down(step_db)
        _LOGGER.warning("The microphone clips on the narrator's voice: narrator turned down to -%.0f dB. A lower "
                        "volume (--volume, or volume in the config's [voice]) or the speaker farther from the "
                        "microphone avoids it.", down_db)  # fmt: skip
        if self.on_turned_down is not None:
            self.on_turned_down(down_db)

    def start_turned_down(self, down_db: float) -> float:
        """Begin with the narrator down_db down (a level remembered for these devices), as if the clip guard had
        taken those steps; how far down it is (0 with the guard off or no floor to turn down)."""
        turn_down = getattr(self.floor, "turn_down", None)
        if self.clip_guard is None or down_db <= 0 or not callable(turn_down):
            return 0.0
        self.clip_guard.start_down(down_db)
        turn_down(self.clip_guard.down_db)
        return self.clip_guard.down_db

    @staticmethod
    def _narrating(played: Iterable[PlayedAudio], capture_s: float) -> bool:
        """True if the narrator's playback reached into the last half second."""
        return played_within(played, capture_s, _NARRATION_TAIL_S)

    def _yield_floor(self, now_s: float, heard: bool, person_speaking: bool = False) -> None:
        """Fade the narrator on a rising safety score or the person's voice over it; bring it back when no command
        followed."""
        scores = getattr(self.recognizer, "scores", None)
        if self.floor is None or not self._yield.enabled or not callable(scores):
            return
        if heard:
            self._faded_at_s = None  # the command acts (a stop cuts; the next utterance plays at full level)
            self._rearmed = False
            return
        latest = scores()
        rising = person_speaking or max(latest.get("stop", 0.0), latest.get("too_much", 0.0)) >= self._yield.score
        if not self._rearmed:  # the score of the word just acted on must fall before it may fade anything again
            self._rearmed = not rising
            return
        if rising and self._faded_at_s is None:
            self.floor.fade(self._yield.fade_db)
            self._faded_at_s = now_s
            self.fades += 1
        elif self._faded_at_s is not None and not rising and now_s - self._faded_at_s >= self._yield.hold_s:
            self.floor.fade(0.0)
            self._faded_at_s = None
            self.false_fades += 1

    def flush(self, now_s: float) -> list[CommandHeard]:
        """End of input: the commands in audio still pending in the engine."""
        return self._commands(self.recognizer.flush(), now_s)

    def _commands(self, hyps: list[Hypothesis], now_s: float, narrating: bool = False) -> list[CommandHeard]:
        """Spotting rules and the own-voice filter over new hypotheses."""
        if self.keep_hypotheses:
            self.hypotheses.extend(hyps)
        heard: list[CommandHeard] = []
        for hyp in hyps:
            for command in self._rules.feed(hyp):
                if narrating and not command.command.is_safety and command.confidence < _NARRATING_CONFIDENCE:
                    self.ignored_own_voice += 1
                    _LOGGER.info("ignored over narration: %s (%.2f)", command.command.value, command.confidence)
                    continue
                if narrating and not self._echo.settled and command.confidence < self._settling_confidence:
                    self.ignored_own_voice += 1
                    _LOGGER.info("ignored while the echo canceller settles: %s (%.2f)", command.command.value,
                                 command.confidence)  # fmt: skip
                    continue
                if self.own_voice.is_own_echo(command, now_s, any_phrase=self._any_phrase):
                    self.ignored_own_voice += 1
                    _LOGGER.info("ignored own voice: %s (%r)", command.command.value, command.text)
                    continue
                heard.append(command)
        return heard

    def run_samples(self, samples: np.ndarray, rate: int, reference: np.ndarray | None = None,
                    block_ms: int = _FILE_BLOCK_MS) -> PipelineRun:  # fmt: skip
        """Recorded audio (any rate) through the pipeline as fast as the CPU allows; reference, if given, is what
        the speaker played, starting at the same instant (same rate as samples)."""
        mic = resample(samples, rate, SAMPLE_RATE).astype(np.int16)
        played: list[_Played] = []
        if reference is not None:
            played = [_Played(0.0, SAMPLE_RATE, resample(reference, rate, SAMPLE_RATE).astype(np.int16))]
        block = max(1, SAMPLE_RATE * block_ms // 1000)
        audio_s = len(mic) / SAMPLE_RATE
        mic = np.concatenate([mic, np.zeros(-len(mic) % block, dtype=np.int16)])  # whole blocks for the canceller
        self.recognizer.reset()
        if self._dither is not None:
            self._dither.reset()
        self.hypotheses, self.keep_hypotheses = [], True  # this run's hypotheses only
        commands: list[CommandHeard] = []
        start = time.thread_time()
        for offset in range(0, len(mic), block):
            commands += self.process(mic[offset : offset + block], offset / SAMPLE_RATE, played)
        commands += self.flush(len(mic) / SAMPLE_RATE)
        cpu_s = time.thread_time() - start
        return PipelineRun(tuple(commands), tuple(self.hypotheses), audio_s, cpu_s)

    def run_file(self, path: str | Path, reference: str | Path | None = None) -> PipelineRun:
        """A WAV file through the pipeline; see run_samples. A two-channel file is (microphone, reference)."""
        samples, rate, ref = _read_mic_and_reference(path, reference)
        return self.run_samples(samples, rate, ref)


class _Dither:
    """A fixed, seeded white noise floor added to each block: the same noise every run."""

    def __init__(self, level_dbfs: float) -> None:
        rms = 32768 * 10 ** (level_dbfs / 20)
        self._table = np.random.default_rng(0).standard_normal(round(_DITHER_TABLE_S * SAMPLE_RATE)) * rms
        self._at = 0

    def reset(self) -> None:
        """From the table's start again (a recording run from its first sample)."""
        self._at = 0

    def add(self, block: np.ndarray) -> np.ndarray:
        """The int16 block with the floor added."""
        index = (self._at + np.arange(len(block))) % len(self._table)
        self._at = (self._at + len(block)) % len(self._table)
        return np.clip(np.round(block + self._table[index]), -32768, 32767).astype(np.int16)


@dataclass(frozen=True)
class _Played:
    """A reference known in full: played from start_s."""

    start_s: float
    sample_rate: int
    samples: np.ndarray


def _read_mic_and_reference(
    path: str | Path, reference: str | Path | None
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """The microphone samples, their rate and the reference (None without one), from one or two WAV files."""
    from voicecoach.audio.wavfile import AudioFileError, read_wav_channels

    channels, rate = read_wav_channels(path)
    if reference is None:
        return channels[0], rate, (channels[1] if len(channels) >= 2 else None)
    if len(channels) >= 2:
        raise AudioFileError(f"{path}: has {len(channels)} channels (microphone, reference); give --reference "
                             "only with a one-channel microphone recording")  # fmt: skip
    ref, ref_rate = read_wav(reference)
    if len(ref) == 0:
        raise AudioFileError(f"{reference}: the reference holds no audio")
    return channels[0], rate, resample(ref, ref_rate, rate)
