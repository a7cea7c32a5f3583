"""Augmentation: rooms and microphones around a clean clip, and the narrator's echo through the product's canceller.

Per clip: a speed change (resampling, so the word's position stays known), a level, silence around it, then one
seeded `audiomentations.Compose` (pitch, EQ, a measured or synthetic room, a cheap USB microphone's band, background
noise, coloured noise, gain). With echo, the narrator's voice comes back through the product's simulated living room
(a seeded room, 25-120 ms late, at -6, 0 or +6 dB relative to the person) and the product's own echo removal (its
aligner, Speex canceller and do-no-harm check, block by block) takes it out again: what it leaves is what the
spotter hears.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

SAMPLE_RATE = 16000
VOICE_DBFS = -26.0
"""Active-speech level of the person's voice at the microphone (as in scripts/eval_commands.py)."""
ECHO_LEAD_S = 2.5
"""Narration the canceller hears before a narration-only stream's first sample counts (its filter has adapted)."""
COLD_LEAD_S = (2.5, 4.0)
WARM_LEAD_S = (8.0, 14.0)
COLD_SHARE = 0.25
"""Narration the canceller hears before a clip: a quarter just after a (re)start, when its filter is still learning
the room (about 10 dB of echo removed), the rest well into a session (about 20 dB), as the product hears it."""
_SYNTHETIC_ROOMS = 24


@dataclass(frozen=True)
class Layout:
    """A clip placed in silence: where the word is, in samples."""

    samples: np.ndarray
    """float32, int16 units."""
    word_start: int
    word_end: int


def frame_db(samples: np.ndarray, frame: int = 320) -> np.ndarray:
    """Energy of each 20 ms frame, dBFS."""
    count = max(1, len(samples) // frame)
    frames = samples[: count * frame].astype(np.float64).reshape(count, -1) / 32768.0
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def speech_span(samples: np.ndarray) -> tuple[int, int]:
    """First and last sample of the speech (20 ms frames within 35 dB of the loudest)."""
    db = frame_db(samples)
    loud = np.nonzero(db > db.max() - 35.0)[0]
    if len(loud) == 0:
        return 0, len(samples)
    return int(loud[0]) * 320, min(len(samples), (int(loud[-1]) + 1) * 320)


def active_level_db(samples: np.ndarray) -> float:
    """RMS of the frames within 30 dB of the loudest, dBFS."""
    db = frame_db(samples)
    active = db[db > db.max() - 30.0]
    return float(10 * np.log10(np.mean(10 ** (active / 10)))) if len(active) else -120.0


def at_level(samples: np.ndarray, level_db: float) -> np.ndarray:
    """float32 samples scaled to an active-speech level."""
    return (samples.astype(np.float64) * 10 ** ((level_db - active_level_db(samples)) / 20)).astype(np.float32)


def lay_out(samples: np.ndarray, rng: random.Random, *, speed: tuple[float, float], pre_s: tuple[float, float],
            post_s: tuple[float, float], level_db: tuple[float, float]) -> Layout:  # fmt: skip
    """The clip sped up or slowed down, at a level, with silence before and after."""
    factor = rng.uniform(*speed)
    clip = samples.astype(np.float32)
    if abs(factor - 1.0) > 1e-3:
        clip = soxr.resample(clip, SAMPLE_RATE * factor, SAMPLE_RATE).astype(np.float32)
    start, end = speech_span(clip)
    clip = clip[max(0, start - 1600) : end + 1600]
    start, end = speech_span(clip)
    clip = at_level(clip, rng.uniform(*level_db))
    pre, post = int(rng.uniform(*pre_s) * SAMPLE_RATE), int(rng.uniform(*post_s) * SAMPLE_RATE)
    out = np.concatenate([np.zeros(pre, np.float32), clip, np.zeros(post, np.float32)])
    return Layout(out, pre + start, pre + end)


def synthetic_room(rt60_s: float, direct_to_reverb_db: float, rng: np.random.Generator) -> np.ndarray:
    """An impulse response: the direct sound, then exponentially decaying diffuse reflections from 3 ms on."""
    length = int(rt60_s * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.normal(0.0, 1.0, length) * 10 ** (-3 * t / rt60_s)
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0
    tail *= 10 ** (-direct_to_reverb_db / 20) / np.sqrt(np.sum(tail**2))
    tail[0] = 1.0
    return tail / np.max(np.abs(tail))


def write_synthetic_rooms(folder: Path, seed: int) -> Path:
    """Seeded synthetic room responses as WAV files (for audiomentations), written once."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(_SYNTHETIC_ROOMS):
        path = folder / f"room_{seed}_{index:02d}.wav"
        response = synthetic_room(rng.uniform(0.15, 0.8), rng.uniform(-3.0, 12.0), rng)
        if not path.is_file():
            soundfile.write(path, response.astype(np.float32), SAMPLE_RATE)
    return folder


class Augmenter:
    """One seeded chain of rooms, microphones and noise (audiomentations), applied clip by clip."""

    def __init__(self, noise_paths: list[Path], rir_paths: list[Path], synthetic_rooms: Path,
                 strength: str = "full") -> None:  # fmt: skip
        import audiomentations as am

        rooms = [str(p) for p in rir_paths] + sorted(str(p) for p in synthetic_rooms.glob("*.wav"))
        mild = strength == "mild"
        steps = [
            am.PitchShift(min_semitones=-1.5, max_semitones=1.5, p=0.0 if mild else 0.25),
            am.SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=0.3),
            am.ApplyImpulseResponse(ir_path=rooms, p=0.4 if mild else 0.7, leave_length_unchanged=True),
            am.HighPassFilter(min_cutoff_freq=80.0, max_cutoff_freq=400.0, p=0.5),
            am.LowPassFilter(min_cutoff_freq=3000.0, max_cutoff_freq=7500.0, p=0.5),
            am.TanhDistortion(min_distortion=0.01, max_distortion=0.2, p=0.1),
        ]
        if noise_paths:
            steps.append(am.AddBackgroundNoise(sounds_path=[str(p) for p in noise_paths], min_snr_db=5.0 if not mild
                                               else 15.0, max_snr_db=30.0, p=0.6))  # fmt: skip
        steps.append(am.AddColorNoise(min_snr_db=10.0 if not mild else 20.0, max_snr_db=40.0, p=0.3))
        self._compose = am.Compose(steps)

    def __call__(self, samples: np.ndarray, seed: int) -> np.ndarray:
        """The augmented clip (float32, int16 units), the same for the same seed."""
        random.seed(seed)
        np.random.seed(seed % 2**32)
        scale = max(1.0, float(np.max(np.abs(samples))))
        out = self._compose(samples=(samples / 32768.0).astype(np.float32), sample_rate=SAMPLE_RATE)
        out = np.nan_to_num(out) * 32768.0
        del scale
        return out.astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Rounded and clipped to int16."""
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


def with_floor(samples: np.ndarray, level_dbfs: float, seed: int) -> np.ndarray:
    """int16 samples with a seeded white noise floor at level_dbfs (RMS re full scale) under them: what the product's
    listening pipeline lays under every block before the spotter hears it (its _Dither), so no clip is digital
    silence anywhere."""
    noise = np.random.default_rng(seed).standard_normal(len(samples)) * 32768 * 10 ** (level_dbfs / 20)
    return to_int16(samples.astype(np.float64) + noise)


def echo_lead_s(rng: random.Random) -> float:
    """Seconds of narration before a clip (see COLD_SHARE)."""
    return rng.uniform(*(COLD_LEAD_S if rng.random() < COLD_SHARE else WARM_LEAD_S))


def echo_residue(person: np.ndarray, narration: np.ndarray, echo_db: float, seed: int,
                 snr_db: float = 20.0, lead_s: float = ECHO_LEAD_S) -> np.ndarray:  # fmt: skip
    """What the product hears of (person + the narration's echo + noise) after its own echo removal.

    The microphone is the product's simulated living room (voicecoach.audio.acoustics, as `run --room` and
    scripts/eval_commands.py use it) with a seeded room response and playback-to-microphone delay; the product's
    EchoRemover (the aligner estimating that delay from the playback log, the Speex canceller, its do-no-harm
    check) cleans it block by block, exactly as the listening pipeline does.

    person: float32 at VOICE_DBFS (zeros for narration alone); narration: int16 at least lead_s longer than person
    (the canceller adapts over it first); echo_db: the echo's active level relative to the person's voice. Returns
    int16 of len(person).
    """
    from voicecoach.audio.acoustics import RoomAcoustics, RoomSettings, active_level
    from voicecoach.audio.speaker import PlayedBuffer
    from voicecoach.echo.clean_mic import EchoRemover

    rng = np.random.default_rng(seed)
    lead = int(lead_s * SAMPLE_RATE)
    block = 320
    total = -(-(lead + len(person)) // block) * block
    reference = np.zeros(total, np.int16)
    reference[: min(total, len(narration))] = narration[:total]
    track = np.zeros(total)
    track[lead : lead + len(person)] = person
    response = synthetic_room(rng.uniform(0.25, 0.6), rng.uniform(0.0, 8.0), rng)
    settings = RoomSettings(echo_db=echo_db, snr_db=snr_db, delay_ms=float(rng.uniform(25.0, 120.0)),
                            seed=int(rng.integers(2**31)))  # fmt: skip
    room = RoomAcoustics(settings, track, active_level(reference), response,
                         person_level=10 ** (VOICE_DBFS / 20) * 32768)  # fmt: skip
    mic = room.mic_track(total, reference)
    remover = EchoRemover(SAMPLE_RATE)
    played = [PlayedBuffer(0.0, SAMPLE_RATE, reference)]
    out = np.concatenate([remover.clean(mic[at : at + block], at / SAMPLE_RATE, played)
                          for at in range(0, total, block)])  # fmt: skip
    return out[lead : lead + len(person)]

