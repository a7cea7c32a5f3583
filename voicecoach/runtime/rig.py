"""Assembling voice mode: speaker, microphone, narrator and the listening pipeline on its listener thread."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from voicecoach.core.commands import Vocabulary
from voicecoach.core.events import DeviceProblem
from voicecoach.runtime.clock import EventQueue
from voicecoach.runtime.player import SpeechDone
from voicecoach.settings import ListeningSettings, MicSettings, VoiceSettings
from voicecoach.store.levels import Devices, LevelMemory

_LOGGER = logging.getLogger(__name__)
_FIXED_PHRASES = ("One.", "Two.", "Three.", "Four.", "Five.", "Halfway.", "And release.", "Paused.")


class LiveError(RuntimeError):
    """Voice mode cannot start (device, engine, model): one clear line."""


class DeviceTrouble(LiveError):
    """An audio device cannot be found, opened or started; the command line adds what to do about it."""


DEVICE_HELP = ("`voicecoach doctor` says what is missing; `voicecoach devices` lists the devices, to choose with "
               "--input-device and --output-device (or [audio] in the config file)")  # fmt: skip
"""What to do when a device fails, for every command that uses one."""


@dataclass
class VoiceRig:
    """Everything voice mode opens, closed together."""

    speaker: Any
    mic: Any
    narrator: Any
    listener: Any
    level: Any = None
    """The narrator's level remembered for these devices (a _Level), or None."""

    def start(self) -> None:
        """Start capturing and listening; DeviceTrouble if the microphone does not start."""
        from voicecoach.audio.devices import AudioDeviceError

        try:
            self.mic.start()
        except AudioDeviceError as exc:
            raise DeviceTrouble(str(exc)) from None
        self.listener.start()

    def counters(self) -> dict[str, int]:
        """What went wrong or was worked around while it ran (shown with --debug when voice mode ends)."""
        pipeline = getattr(self.listener, "pipeline", None)
        return {
            "speaker underflows": getattr(self.speaker, "underflows", 0),
            "microphone overflows": getattr(self.mic, "overflows", 0),
            "microphone blocks dropped": getattr(self.mic, "dropped", 0),
            "listener errors": getattr(self.listener, "errors", 0),
            "own-voice commands ignored": getattr(pipeline, "ignored_own_voice", 0),
            "narrator fades": getattr(pipeline, "fades", 0),
            "fades no command followed": getattr(pipeline, "false_fades", 0),
            "narrator turned down, dB (its voice clipped the microphone)":
                round(getattr(getattr(pipeline, "clip_guard", None), "down_db", 0)),
        }

    def close(self) -> None:
        """Stop listening and speaking; release the devices."""
        _LOGGER.info("voice mode counters: %s", ", ".join(f"{k} {v}" for k, v in self.counters().items()))
        for part in (self.listener, self.narrator):
            try:
                part.close() if hasattr(part, "close") else part.stop()
            except Exception:
                _LOGGER.exception("closing %r", part)
        if self.level is not None:  # the listener has stopped: no step can come after this
            self.level.session_ended()
        self.mic.close()
        self.speaker.close()


def open_rig(settings: VoiceSettings, vocabulary: Vocabulary, events: EventQueue,
             levels: LevelMemory | None = None) -> VoiceRig:  # fmt: skip
    """Open speaker, microphone, narrator and the listening pipeline; what it hears is posted into events.

    levels: where the narrator's level is remembered per devices (the clip guard's steps, voicecoach.store.levels);
    None (benches, tests) starts at full level and remembers nothing."""
    from voicecoach.audio.devices import AudioDeviceError
    from voicecoach.audio.speaker import Speaker
    from voicecoach.listening.listener import Listener
    from voicecoach.listening.recognizer import RecognizerError
    from voicecoach.narration.narrator import SoundNarrator
    from voicecoach.narration.synthesis import CachedSynthesizer, Pyttsx3Synthesizer, TtsError
    from voicecoach.runtime.mic_watch import MicWatch

    try:
        pipeline = open_pipeline(settings.listening, vocabulary)
        speaker = Speaker(settings.narrator.output_device)
        mic = open_mic(settings.mic, on_failure=speaker.close)
        synthesizer = CachedSynthesizer(Pyttsx3Synthesizer(settings.narrator))
        synthesizer.warm(_FIXED_PHRASES)
    except AudioDeviceError as exc:
        raise DeviceTrouble(str(exc)) from None
    except (TtsError, RecognizerError, ValueError) as exc:
        raise LiveError(str(exc)) from None
    narrator = SoundNarrator(synthesizer, speaker, SpeechDone(events), _device_reporter(events), pipeline.own_voice)
    pipeline.floor = narrator
    listener = Listener(MicWatch(mic, events.post), pipeline, events.post, played=speaker.played)
    devices = Devices(speaker.device_name, mic.device_name, settings.narrator.volume)
    level = _Level.start(levels, devices, pipeline) if levels is not None else None
    return VoiceRig(speaker, mic, narrator, listener, level)


@dataclass
class _Level:
    """The narrator's level for these devices: where a session starts, what is remembered after it."""

    memory: LevelMemory
    devices: Devices
    pipeline: Any
    remembered_db: float

    @classmethod
    def start(cls, memory: LevelMemory, devices: Devices, pipeline: Any) -> _Level | None:
        """Start the pipeline's narrator one step louder than the last session on these devices ended (None with
        the clip guard off: nothing is remembered)."""
        guard = getattr(pipeline, "clip_guard", None)
        if guard is None:
            return None
        level = cls(memory, devices, pipeline, memory.recall(devices))
        down_db = pipeline.start_turned_down(guard.settings.first_step_db(level.remembered_db))
        if level.remembered_db > 0:
            _LOGGER.info("The narrator's voice clipped the microphone on %s and %s before (it ended %.0f dB down): "
                         "it starts at -%.0f dB", devices.speaker, devices.microphone, level.remembered_db,
                         down_db)  # fmt: skip
        pipeline.on_turned_down = level.keep
        return level

    def keep(self, down_db: float) -> None:
        """Remember a step as it is taken (a crash or power cut later keeps it)."""
        self.remembered_db = max(self.remembered_db, down_db)
        self._write(self.remembered_db)

    def session_ended(self) -> None:
        """Remember where the session ended (see ClipGuard.level_to_keep)."""
        self._write(self.pipeline.clip_guard.level_to_keep(self.remembered_db))

    def _write(self, down_db: float) -> None:
        try:
            self.memory.keep(self.devices, down_db)
        except OSError as exc:
            _LOGGER.warning("cannot remember the narrator's level in %s: %s", self.memory.path, exc)


def open_pipeline(settings: ListeningSettings, vocabulary: Vocabulary) -> Any:
    """The listening pipeline the settings ask for."""
    from voicecoach.listening.pipeline import ListeningPipeline

    return ListeningPipeline.from_settings(settings, vocabulary)


def open_mic(settings: MicSettings, on_failure: Any = None) -> Any:
    """The microphone the settings name; on_failure runs if it cannot be opened."""
    from voicecoach.audio.microphone import Microphone

    try:
        return Microphone(settings.input_device, settings.sample_rate, settings.block_frames)
    except Exception:
        if on_failure is not None:
            on_failure()
        raise


def _device_reporter(events: EventQueue) -> Any:
    def report(message: str) -> None:
        events.post(DeviceProblem(message))

    return report
