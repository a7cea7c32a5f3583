"""The closed-loop living room: the routine on virtual time, the real narrator's audio as it is actually played
(cut when it stops) echoing into a virtual microphone with a recorded person and noise, block by block through the
one listening pipeline, and the session reacting. Faster than real time, and the same seed gives the same events.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from voicecoach.audio.acoustics import RATE, RoomAcoustics, RoomSettings, active_level
from voicecoach.audio.speaker import PlayedBuffer
from voicecoach.audio.wavfile import read_wav, resample
from voicecoach.core.commands import Vocabulary
from voicecoach.core.events import SpeechFinished, Tick, Utterance
from voicecoach.core.session import Session
from voicecoach.narration.synthesis import CachedSynthesizer, Synthesizer
from voicecoach.runtime.clock import EventQueue
from voicecoach.runtime.player import Player
from voicecoach.runtime.transcript import Transcript

_LOGGER = logging.getLogger(__name__)
_BLOCK = 320
_HANDED_OVER_S = 0.03
"""How far past the microphone block the pipeline sees the playback log, as a real speaker's log runs ahead of what
the microphone hears by its output latency. The room knows each utterance in full, but a later fade rescales what is
left of it: a log with the future in it would hand the echo canceller a reference the room then does not play."""
"""20 ms microphone blocks."""
_TAIL_S = 2.0
"""The room keeps listening this long after the person's recording ends."""
_LEVEL_PHRASE = "Breathe in slowly, and let your shoulders relax."
"""Sets the narrator's speech level, once, so that cuts keep their level."""


@dataclass(frozen=True)
class RoomRun:
    """What the room is given besides its acoustics."""

    person: Path | None = None
    """A recording of the person (any rate), placed on the routine's timeline from t = 0."""
    impulse_response: Path | None = None
    """A room impulse response WAV; None: a synthetic room."""
    auto_resume_s: float | None = None
    """Say "resume" this long after each stop, so every stop in a long recording is a fresh barge-in."""
    acoustics: RoomSettings = field(default_factory=RoomSettings)
    until_s: float | None = None
    """End the run at this room time even if the routine goes on; None: play the routine to its end."""
    muted: bool = False
    """The speaker plays nothing (the person alone in a quiet room); the routine keeps its timing."""


class RoomTimeUp(Exception):
    """The room reached RoomRun.until_s."""


class RoomClock:
    """Virtual time that advances one microphone block at a time, running the room for each block."""

    virtual = True

    def __init__(self, until_s: float | None = None) -> None:
        self._now_s = 0.0
        self.room: Room | None = None
        self.until_s = until_s

    def now(self) -> float:
        """The current room time."""
        return self._now_s

    def wait(self, cond: threading.Condition, timeout_s: float) -> None:
        """Advance up to timeout_s in whole blocks (at least one, for any wait: a deadline a hair after now, from
        rounding, would otherwise never come); return early once the room heard something."""
        end_s = self._now_s + max(0.0, timeout_s)
        first = timeout_s > 0
        while first or self._now_s < end_s - 1e-9:
            first = False
            if self.until_s is not None and self._now_s >= self.until_s - 1e-9:
                raise RoomTimeUp
            heard = self.room.advance() if self.room is not None else False
            self._now_s = round(self._now_s + _BLOCK / RATE, 6)
            if heard:
                return


class RoomNarrator:
    """The narrator in the room: real synthesized speech placed on the playback timeline, cut at once by stop()."""

    def __init__(self, synthesizer: Synthesizer, events: EventQueue, room: Room) -> None:
        self._cache = synthesizer if isinstance(synthesizer, CachedSynthesizer) else CachedSynthesizer(synthesizer)
        self._events = events
        self._room = room
        self._busy_until = 0
        """Timeline sample where queued speech ends."""
        self._pending: dict[int, int] = {}
        """Utterance id -> the sample where it ends."""

    def say(self, utterance_id: int, text: str, cacheable: bool) -> None:
        """Place the utterance after whatever is queued; its end is a SpeechFinished event."""
        speech = self._cache.synthesize_words(text)
        samples = resample(speech.samples, self._cache.sample_rate, RATE)
        start = max(self._room.position, self._busy_until)
        self._room.play(start, samples, text, speech.words)
        self._busy_until = start + len(samples)
        self._pending[utterance_id] = self._busy_until
        self._events.post(SpeechFinished(utterance_id), at_s=self._busy_until / RATE)

    def stop(self) -> None:
        """Silence now: cut what plays, drop what is queued."""
        pending = set(self._pending)
        self._events.cancel(lambda e: isinstance(e, SpeechFinished) and e.utterance_id in pending)
        self._pending.clear()
        self._busy_until = self._room.position
        self._room.cut()

    def fade(self, gain_db: float) -> None:
        """Play the rest of the current utterance at gain_db (0 dB: full level again)."""
        self._room.fade(gain_db)

    def turn_down(self, step_db: float) -> None:
        """Play quieter by step_db from now on (the microphone clipped on the narrator's voice)."""
        self._room.turn_down(step_db)

    def chime(self, name: str) -> None:
        """Chimes are not simulated (their echo is a tone the spotter never confuses with speech)."""

    def idle(self) -> bool:
        """True once the queued speech has played."""
        return self._room.position >= self._busy_until


class Room:
    """The playback timeline, the acoustics and the listening pipeline, advanced one block at a time."""

    def __init__(self, acoustics: RoomAcoustics, pipeline: object, events: EventQueue, transcript: Transcript,
                 auto_resume_s: float | None, muted: bool = False) -> None:  # fmt: skip
        self.acoustics = acoustics
        self.pipeline = pipeline
        self.events = events
        self.transcript = transcript
        self.auto_resume_s = auto_resume_s
        self.position = 0
        """Timeline samples processed so far (the start of the next block)."""
        self.timeline = np.zeros(RATE * 60)
        """What the speaker played, float at 16 kHz (grown as needed)."""
        self.played: list[PlayedBuffer] = []
        self.mic: list[np.ndarray] = []
        """Every microphone block, for tests and evaluations."""
        self._playing_until = 0
        self._level = 1.0
        """The narrator's level (turn_down lowers it for good); fades are relative to it."""
        self._gain = 1.0
        self._faded_until = 0
        """End of the utterance a fade applies to."""
        self.muted = muted
        self.auto_resumes: list[float] = []
        """Room times at which the auto-resume says "resume" (for evaluations: not the person's)."""

    def play(self, start: int, samples: np.ndarray, text: str, words: tuple) -> None:  # type: ignore[type-arg]
        """Put an utterance on the playback timeline at sample start (nothing, when the speaker is muted)."""
        if self.muted:
            return
        end = start + len(samples)
        if end > len(self.timeline):
            self.timeline = np.concatenate([self.timeline, np.zeros(max(end - len(self.timeline), RATE * 60))])
        if self._level != 1.0:
            samples = np.round(samples * self._level)  # the reference below is exactly what the room plays
        self.timeline[start:end] = samples
        if start >= self._faded_until:
            self._gain = 1.0
        self.played.append(PlayedBuffer(start / RATE, RATE, samples.astype(np.int16)))
        self._playing_until = max(self._playing_until, end)
        self.pipeline.own_voice.record(start / RATE, text, words, len(samples) / RATE)  # type: ignore[attr-defined]

    def fade(self, gain_db: float) -> None:
        """Scale what is left of the utterance playing now (a later utterance starts at full level), from the
        playback not yet handed over: as a real speaker's fade, which reaches only the samples of its next callback,
        it leaves the _HANDED_OVER_S the pipeline was already shown as it was (else the echo canceller would be given
        a reference at one level that the room plays at another, 25 dB apart, at every fade and every return)."""
        now = self.position + round(_HANDED_OVER_S * RATE)
        gain = float(10 ** (gain_db / 20))
        current = next((b for b in self.played if b.start_s * RATE <= now < b.start_s * RATE + len(b.samples)), None)
        if gain_db < 0 and current is None:
            return
        if gain_db < 0 and current is not None:
            self._faded_until = round(current.start_s * RATE) + len(current.samples)
        end = self._faded_until
        if end > now and gain != self._gain:
            self.timeline[now:end] *= gain / self._gain
            self.played = [_scaled(b, now, end, gain / self._gain) for b in self.played]
        self._gain = gain
        self.transcript.record(now / RATE, "fade" if gain_db < 0 else "unfade", f"{gain_db:+.0f} dB")

    def turn_down(self, step_db: float) -> None:
        """Lower the narrator's level by step_db for good: what is not yet handed over (see fade) and every later
        utterance."""
        now = self.position + round(_HANDED_OVER_S * RATE)
        factor = float(10 ** (-abs(step_db) / 20))
        self._level *= factor
        end = self._playing_until
        if end > now:
            self.timeline[now:end] *= factor
            self.played = [_scaled(b, now, end, factor) for b in self.played]
        self.transcript.record(now / RATE, "quieter", f"{20 * math.log10(self._level):+.0f} dB")

    def cut(self) -> None:
        """Everything after now is not played; say when the narration stops reaching the microphone."""
        now = self.position
        if self._playing_until <= now:
            self.transcript.record(now / RATE, "quiet", "the narrator was already quiet")
            self._schedule_resume(now)
            return
        self.timeline[now : self._playing_until] = 0.0
        self.played = [_cut(buffer, now / RATE) for buffer in self.played if buffer.start_s < now / RATE]
        self._playing_until = now
        self.pipeline.own_voice.cut(now / RATE)  # type: ignore[attr-defined]
        quiet_s = self.acoustics.direct_end(now) / RATE
        self.transcript.record(quiet_s, "quiet", "the narration stops reaching the microphone")
        self._schedule_resume(now)

    def _schedule_resume(self, now: int) -> None:
        """With auto-resume, the person says resume a while after each stop (not after the cut that resume itself
        makes of the narrator's answer: that one was said twice, the second "ignored while running")."""
        if self.auto_resumes and abs(self.auto_resumes[-1] - now / RATE) < _BLOCK / RATE:
            return
        if self.auto_resume_s is not None:
            self.auto_resumes.append(now / RATE + self.auto_resume_s)
            self.events.post(Utterance("resume"), at_s=now / RATE + self.auto_resume_s)

    def advance(self) -> bool:
        """One microphone block through the pipeline; True if it heard a command (posted to the events)."""
        start = self.position
        block = self.acoustics.mic_block(start, _BLOCK, self.timeline[: self._playing_until])
        self.mic.append(block)
        self.position = start + _BLOCK
        horizon_s = self.position / RATE + _HANDED_OVER_S
        recent = [_played_by(b, horizon_s) for b in self.played
                  if b.start_s + b.duration_s > start / RATE - 10.0 and b.start_s < horizon_s]  # fmt: skip
        heard = self.pipeline.process(block, start / RATE, recent)  # type: ignore[attr-defined]
        for command in heard:
            self.events.post(command)
        return bool(heard)

    def microphone(self) -> np.ndarray:
        """Everything the virtual microphone heard, int16."""
        return np.concatenate(self.mic) if self.mic else np.zeros(0, np.int16)


def _scaled(buffer: PlayedBuffer, start: int, end: int, factor: float) -> PlayedBuffer:
    """The buffer with its timeline samples [start, end) scaled."""
    first = round(buffer.start_s * RATE)
    lo, hi = max(start - first, 0), min(end - first, len(buffer.samples))
    if hi <= lo:
        return buffer
    samples = buffer.samples.astype(np.float64)
    samples[lo:hi] *= factor
    return PlayedBuffer(buffer.start_s, buffer.sample_rate, np.round(samples).astype(np.int16), buffer.aborted)


def _played_by(buffer: PlayedBuffer, at_s: float) -> PlayedBuffer:
    """The buffer as handed to the speaker by at_s, as a real speaker's log shows it while it plays."""
    keep = max(0, round((at_s - buffer.start_s) * buffer.sample_rate))
    if keep >= len(buffer.samples):
        return buffer
    return PlayedBuffer(buffer.start_s, buffer.sample_rate, buffer.samples[:keep], buffer.aborted)


def _cut(buffer: PlayedBuffer, at_s: float) -> PlayedBuffer:
    """The buffer as heard up to at_s."""
    keep = max(0, round((at_s - buffer.start_s) * buffer.sample_rate))
    if keep >= len(buffer.samples):
        return buffer
    return PlayedBuffer(buffer.start_s, buffer.sample_rate, buffer.samples[:keep], aborted=True)


def run_room(session: Session, vocabulary: Vocabulary, pipeline: object, synthesizer: Synthesizer, run: RoomRun,
             transcript: Transcript, observers: list | None = None) -> Room:  # type: ignore[type-arg]  # fmt: skip
    """Play the session in the room until it finishes (or the person's recording and the narration are over, or
    the run reaches run.until_s)."""
    person = np.zeros(0, np.int16)
    if run.person is not None:
        samples, rate = read_wav(run.person)
        person = resample(samples, rate, RATE)
    response = None
    if run.impulse_response is not None:
        samples, rate = read_wav(run.impulse_response)
        response = resample(samples, rate, RATE).astype(np.float64)
    cache = synthesizer if isinstance(synthesizer, CachedSynthesizer) else CachedSynthesizer(synthesizer)
    level_speech = cache.synthesize(_LEVEL_PHRASE)
    narrator_level = active_level(resample(level_speech, cache.sample_rate, RATE))
    acoustics = RoomAcoustics(run.acoustics, person, narrator_level, response)
    clock = RoomClock(run.until_s)
    events = EventQueue(clock)
    room = Room(acoustics, pipeline, events, transcript, run.auto_resume_s, run.muted)
    clock.room = room
    narrator = RoomNarrator(cache, events, room)
    pipeline.floor = narrator  # type: ignore[attr-defined]
    events.post(Tick(len(person) / RATE + _TAIL_S), at_s=len(person) / RATE + _TAIL_S)
    try:
        Player(session, narrator, events, vocabulary, transcript, observers or []).run()
    except RoomTimeUp:
        _LOGGER.debug("the room stopped at %.1f s", clock.now())
    return room
