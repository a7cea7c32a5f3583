"""Yield the floor on the person's voice? The near-end detector on the narration alone and with people over it.

The lower-back routine's first spoken lines (the narrator's real voice) play as echo through the room
(audio/acoustics.py: 45 ms delay, synthetic room, pink noise at 20 dB SNR) at the given echo level; in the second
pass a held-out person's "stop" (Speech Commands, speakers the spotter never trained on) comes every 7 s. The
product's EchoRemover cleans each 20 ms block and its NearEndDetector says whether the person is speaking.

Printed per setting: detector onsets on narration alone (each would be a false fade), and stops with an onset
within 0.8 s of the clip's start (each a fade that comes before any score rises).

    .venv/bin/python scripts/eval_near_end.py                                  # the default settings, 0 dB
    .venv/bin/python scripts/eval_near_end.py --setting 10/3 --setting 15/4 --setting 15/6 --echo-db -6
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from voicecoach.audio.acoustics import RoomAcoustics, RoomSettings, active_level
from voicecoach.audio.wavfile import read_wav, resample
from voicecoach.core.plan import build_plan
from voicecoach.echo.clean_mic import EchoRemover
from voicecoach.echo.near_end import NearEndSettings
from voicecoach.files.library import find_routine
from voicecoach.files.routine_file import load_routine_file
from voicecoach.narration.synthesis import Pyttsx3Synthesizer
from voicecoach.settings import NarratorSettings
from voicecoach.training.sources import held_out

RATE, BLOCK = 16000, 320
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class _Played:
    """The whole narration as one played buffer from t = 0."""

    def __init__(self, samples: np.ndarray) -> None:
        self.start_s, self.sample_rate, self.samples = 0.0, RATE, samples


def narration(lines: int) -> np.ndarray:
    """The routine's first spoken lines in the narrator's voice, 0.5 s apart, at 16 kHz."""
    synthesizer = Pyttsx3Synthesizer(NarratorSettings())
    texts = [segment.text for segment in build_plan(load_routine_file(find_routine("lower-back"))) if segment.text]
    parts = []
    for text in texts[:lines]:
        parts += [resample(synthesizer.synthesize(text), synthesizer.sample_rate, RATE), np.zeros(RATE // 2)]
    return np.concatenate(parts).astype(np.int16)


def people(narrated: np.ndarray, data: Path) -> tuple[np.ndarray, list[int]]:
    """A track of held-out people's stops every 7 s, each at the narration's active level; their start samples."""
    clips = sorted(p for p in (data / "speech_commands_v2" / "stop").glob("*.wav")
                   if held_out(p.name.split("_nohash_")[0], seed=1))  # fmt: skip
    track, starts, level = np.zeros(len(narrated)), [], active_level(narrated)
    for number, start in enumerate(range(3 * RATE, len(narrated) - RATE, 7 * RATE)):
        samples, rate = read_wav(clips[number % len(clips)])
        clip = resample(samples, rate, RATE).astype(np.float64)
        clip *= level / (active_level(clip) or 1.0)
        track[start : start + len(clip)] += clip[: len(track) - start]
        starts.append(start)
    return track, starts


def onsets(narrated: np.ndarray, person: np.ndarray, echo_db: float, settings: NearEndSettings) -> np.ndarray:
    """Block indices where the detector turns on."""
    room = RoomAcoustics(RoomSettings(echo_db=echo_db, snr_db=20.0, seed=1), person, active_level(narrated))
    remover, played, timeline = EchoRemover(near_end=settings), [_Played(narrated)], narrated.astype(np.float64)
    flags = []
    for offset in range(0, len(narrated) - BLOCK + 1, BLOCK):
        remover.clean(room.mic_block(offset, BLOCK, timeline), offset / RATE, played)
        flags.append(remover.near_end)
    on = np.array(flags)
    return np.flatnonzero(on[1:] & ~on[:-1]) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", action="append", metavar="MARGIN_DB/BLOCKS",
                        help="detector settings to try (default: the shipped defaults)")
    parser.add_argument("--echo-db", type=float, default=0.0)
    parser.add_argument("--lines", type=int, default=60, help="spoken lines of the routine (60: about 6 minutes)")
    parser.add_argument("--data", type=Path, default=DATA)
    options = parser.parse_args(argv)
    defaults = NearEndSettings()
    settings = [NearEndSettings(float(s.split("/")[0]), int(s.split("/")[1])) for s in options.setting or []]
    narrated = narration(options.lines)
    person, starts = people(narrated, options.data)
    hours = len(narrated) / RATE / 3600
    print(f"{len(narrated) / RATE:.0f} s of narration at {options.echo_db:+.0f} dB echo, 20 dB SNR; "
          f"{len(starts)} held-out stops over it\n")
    print("| margin / blocks | onsets on narration alone (false fades / hour) | stops with an early onset |")
    print("|---|---|---|")
    for setting in settings or [defaults]:
        alone = onsets(narrated, np.zeros(len(narrated)), options.echo_db, setting)
        mixed = onsets(narrated, person, options.echo_db, setting)
        early = sum(1 for s in starts if any(s // BLOCK <= o <= s // BLOCK + 40 for o in mixed))
        print(f"| {setting.margin_db:.0f} dB / {setting.blocks} | {len(alone)} ({len(alone) / hours:.0f}) | "
              f"{early}/{len(starts)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
