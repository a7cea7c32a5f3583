"""`voicecoach record-test OUT.wav`: play a minute of the routine's narration through the speaker while recording
the microphone, and keep both, lined up, as a two-channel WAV (microphone, what was played).

A person whose Pi does not hear them can speak commands during it and hand the file over; `voicecoach listen --wav
OUT.wav` replays it offline through the whole listening chain, echo canceller included.
"""

from __future__ import annotations

import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicecoach.audio.wavfile import resample
from voicecoach.core.plan import build_plan
from voicecoach.core.routine import Routine
from voicecoach.settings import VoiceSettings

RATE = 16000


def narration_lines(routine: Routine, seconds: float) -> list[str]:
    """The routine's spoken lines, in order, enough for about `seconds` of speech."""
    from voicecoach.core.plan import estimate_speech_s

    lines = [segment.text for segment in build_plan(routine) if segment.text]
    chosen, total = [], 0.0
    for line in lines:
        chosen.append(line)
        total += estimate_speech_s(line) + 0.4
        if total >= seconds:
            break
    return chosen


@dataclass(frozen=True)
class RecordedTest:
    """What record_test wrote."""

    seconds: float
    clipped: int
    """Microphone samples at full scale while the narrator spoke (or within half a second of it): the echo
    canceller cannot remove a clipped echo (voicecoach.echo.clipping)."""


def record_test(out: Path, routine: Routine, settings: VoiceSettings, seconds: float = 60.0) -> RecordedTest:
    """Play and record; write OUT as (microphone, played) at 16 kHz."""
    from voicecoach.audio.microphone import Microphone
    from voicecoach.audio.speaker import Speaker
    from voicecoach.narration.synthesis import Pyttsx3Synthesizer

    synthesizer = Pyttsx3Synthesizer(settings.narrator)
    speeches = [synthesizer.synthesize(line) for line in narration_lines(routine, seconds)]
    speaker = Speaker(settings.narrator.output_device)
    try:
        mic = Microphone(settings.mic.input_device, RATE, settings.mic.block_frames)
    except Exception:
        speaker.close()
        raise
    blocks: list[tuple[float, bytes]] = []
    done = threading.Event()

    def capture() -> None:
        while not done.is_set():
            block = mic.read_block(0.1)
            if block is not None:
                blocks.append((block.adc_s, block.pcm))

    reader = threading.Thread(target=capture, name="record-test", daemon=True)
    played: dict[float, object] = {}
    try:
        mic.start()
        reader.start()
        for samples in speeches:
            speaker.play(samples, synthesizer.sample_rate)
            speaker.wait(len(samples) / synthesizer.sample_rate + 5.0)
            played.update({buffer.start_s: buffer for buffer in speaker.played()})
            done.wait(0.4)
        done.wait(0.5)
    finally:
        done.set()
        reader.join(2.0)
        mic.close()
        speaker.close()
    return _write(out, blocks, list(played.values()))


def clipped_over_narration(mic: np.ndarray, reference: np.ndarray) -> int:
    """Samples of the microphone at full scale while the reference plays, or up to half a second after it (the
    room's echo and the device's latency)."""
    from voicecoach.echo.clipping import CLIPPED

    playing = np.abs(reference.astype(np.int32)) > 0
    tail = RATE // 2
    since = np.cumsum(playing)  # the reference played within the last `tail` samples if the count rose
    before = np.concatenate([np.zeros(tail + 1, dtype=since.dtype), since[: -tail - 1]])[: len(since)]
    near = since - before > 0
    return int(np.count_nonzero(near & (np.abs(mic.astype(np.int32)) >= CLIPPED)))


def _write(out: Path, blocks: list[tuple[float, bytes]], played: list[object]) -> RecordedTest:
    """The microphone and the played buffers on the microphone's timeline, as a two-channel WAV."""
    if not blocks:
        raise OSError("the microphone gave no audio")
    mic = np.frombuffer(b"".join(pcm for _, pcm in blocks), dtype="<i2")
    start_s = blocks[0][0]
    reference = np.zeros(len(mic), dtype=np.int16)
    for buffer in played:
        samples = resample(buffer.samples, buffer.sample_rate, RATE)  # type: ignore[attr-defined]
        at = round((buffer.start_s - start_s) * RATE)  # type: ignore[attr-defined]
        lo, hi = max(at, 0), min(at + len(samples), len(reference))
        if hi > lo:
            reference[lo:hi] = samples[lo - at : hi - at]
    frames = np.stack([mic, reference], axis=1).astype("<i2")
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(frames.tobytes())
    return RecordedTest(len(mic) / RATE, clipped_over_narration(mic, reference))
