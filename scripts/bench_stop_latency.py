"""Stop latency through real (virtual) audio devices: from the end of a spoken "stop" to the narrator's silence.

At a random moment while the narrator reads a long step, a person's "stop" (a TTS voice the narrator does not use)
is played into the virtual microphone. The time the word ends is found in what the microphone captured (PortAudio
capture times); the time the narration ends is found in an in-process capture of the speaker's monitor (also
PortAudio capture times), so both ends are measured on one clock, in the audio itself. With --echo-db the
narrator's own voice also reaches the microphone (a PulseAudio loopback from the speaker to the microphone).

    .venv/bin/python scripts/bench_stop_latency.py --trials 30
    .venv/bin/python scripts/bench_stop_latency.py --trials 30 --echo-db -6
    .venv/bin/python scripts/bench_stop_latency.py --trials 30 --echo-db 0 --people ../shared/data/speech_commands

By default the person is a flite voice. With --people FOLDER the person is real: one "stop" (FOLDER/stop/*.wav) from
each of 30 speakers held out from the spotter's training (its validation split, seed 1), each scaled to the active
level of the narration, so that --echo-db is the echo's level relative to the person's voice.

Prints every trial, then median, p95 and worst, and the listener thread's CPU time per second of audio.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voicecoach.audio.acoustics import active_level  # noqa: E402
from voicecoach.audio.virtual_server import MonitorCapture, VirtualAudio  # noqa: E402
from voicecoach.audio.wavfile import read_wav, resample  # noqa: E402
from voicecoach.core.commands import load_vocabulary  # noqa: E402
from voicecoach.core.events import Command, CommandHeard  # noqa: E402
from voicecoach.core.routine import Exercise, Routine  # noqa: E402
from voicecoach.core.session import Session, State  # noqa: E402
from voicecoach.narration.stand_in_voices import FLITE_VOICES, HELD_OUT_VOICES, Voice, pad, synthesize, write_wav  # noqa: E402
from voicecoach.narration.synthesis import Pyttsx3Synthesizer  # noqa: E402
from voicecoach.runtime.clock import EventQueue, RealClock  # noqa: E402
from voicecoach.runtime.player import Player  # noqa: E402
from voicecoach.runtime.rig import open_rig  # noqa: E402
from voicecoach.runtime.transcript import Transcript  # noqa: E402
from voicecoach.settings import ENGINES, ListeningSettings, NarratorSettings, RecognizerSettings, VoiceSettings  # noqa: E402
from voicecoach.training.sources import held_out  # noqa: E402

_STEP = (
    "Lie face up on the mat with both knees bent and your feet flat, then let your arms rest by your sides, "
    "soften your shoulders, and notice how your lower spine settles a little more with each slow breath out, "
    "and keep that easy rhythm while your whole body grows heavy and calm against the floor, letting the hips "
    "sink and the jaw soften, breathing in through the nose and out through the mouth."
)
_MIC_RATE = 16000
_LOUD = 800
"""Sample magnitude that counts as speech in the speaker monitor."""


@dataclass
class Trial:
    """One stop: when the word ended at the microphone and when the narration went silent at the speaker."""

    word_end_s: float | None = None
    silent_s: float | None = None
    heard: bool = False

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from the end of the word to silence."""
        if self.word_end_s is None or self.silent_s is None:
            return None
        return (self.silent_s - self.word_end_s) * 1000


class MicTee:
    """Keeps every block the product's microphone delivers, with its capture time."""

    def __init__(self, mic: object) -> None:
        self._read_block = mic.read_block  # type: ignore[attr-defined]
        self.blocks: list[tuple[float, bytes]] = []
        mic.read_block = self.read_block  # type: ignore[attr-defined]

    def read_block(self, timeout_s: float | None = None) -> object:
        block = self._read_block(timeout_s)
        if block is not None:
            self.blocks.append((block.adc_s, block.pcm))
        return block

    def around(self, t0: float, t1: float) -> tuple[np.ndarray, float]:
        """Samples captured between two monotonic times, and the time of the first."""
        chosen = [(t, pcm) for t, pcm in self.blocks if t0 <= t <= t1]
        if not chosen:
            return np.zeros(0, np.int16), t0
        return np.frombuffer(b"".join(pcm for _, pcm in chosen), dtype="<i2"), chosen[0][0]


def word_end_in_mic(tee: MicTee, clip: np.ndarray, clip_word_end_s: float, played_at: float) -> float | None:
    """Where the clip landed in the mic capture (cross-correlation), plus where its word ends."""
    mic, first_s = tee.around(played_at - 0.2, played_at + 2.5)
    if len(mic) < len(clip):
        return None
    a = mic.astype(np.float64)
    b = clip.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)[: len(a) - len(b) + 1]
    onset = int(np.argmax(corr))
    return first_s + onset / _MIC_RATE + clip_word_end_s


def silence_at_speaker(monitor: np.ndarray, rate: int, start_s: float, cut: tuple[float, float]) -> float | None:
    """The last loud speaker sample before the calm line starts (speaker monitor timeline)."""
    cut_guess_s, next_start_s = cut
    lo = int((cut_guess_s - 0.3 - start_s) * rate)
    hi = int((min(cut_guess_s + 0.15, next_start_s - 0.005) - start_s) * rate)
    if lo < 0 or hi > len(monitor):
        return None
    loud = np.flatnonzero(np.abs(monitor[lo:hi].astype(np.int32)) > _LOUD)
    return None if loud.size == 0 else start_s + (lo + int(loud[-1]) + 1) / rate


def run_trial(rig: object, events: EventQueue, clip_path: Path, rng: random.Random, audio: VirtualAudio
              ) -> tuple[Trial, float, tuple[float, float] | None]:
    """One narration interrupted by 'stop'; returns the trial, when the clip was played and the cut guess."""
    vocabulary = load_vocabulary("en")
    routine = Routine("bench", "Bench", "", (Exercise("Rest", "lying face up", (_STEP,), 20.0),))
    session = Session(routine)
    player = Player(session, rig.narrator, events, vocabulary, Transcript())  # type: ignore[attr-defined]
    thread = threading.Thread(target=player.run, daemon=True)
    thread.start()
    speaker = rig.speaker  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    while not any(b.duration_s > 1.0 and b.start_s > time.monotonic() - 20 for b in speaker.played()):
        if time.monotonic() > deadline:
            raise RuntimeError("the narration never started")
        time.sleep(0.02)
    time.sleep(rng.uniform(0.5, 6.0))
    played_at = time.monotonic()
    audio.play_into_mic(clip_path, wait=False)
    trial = Trial()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and session.state is not State.STOPPED:
        time.sleep(0.005)
    trial.heard = session.state is State.STOPPED
    time.sleep(1.0)
    played = speaker.played()
    aborted = [b for b in played if b.aborted and b.start_s + b.duration_s > played_at]
    cut_guess = aborted[0].start_s + aborted[0].duration_s if aborted else None
    if cut_guess is not None:
        following = [b.start_s for b in played if b.start_s > cut_guess]
        cut_guess = (cut_guess, min(following, default=cut_guess + 1.0))
    events.post(CommandHeard(Command.QUIT, "end workout"))
    events.post(CommandHeard(Command.STOP, "stop"))
    thread.join(timeout=20)
    rig.narrator.stop()  # type: ignore[attr-defined]
    time.sleep(0.5)
    return trial, played_at, cut_guess


def listener_cpu_s() -> float:
    """CPU seconds used so far by the listener thread(s)."""
    total = 0.0
    for thread in threading.enumerate():
        if "listen" in thread.name.lower() and thread.native_id is not None:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--engine", default="auto", choices=list(ENGINES))
    parser.add_argument("--model", help="Vosk model folder (with --engine vosk)")
    parser.add_argument("--echo-db", type=float, help="also feed the narration back into the microphone at this gain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--people", type=Path, metavar="FOLDER",
                        help="real people: FOLDER/stop/*.wav, one clip per held-out speaker (default: flite voices)")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    voices = [v for v in (*FLITE_VOICES, *HELD_OUT_VOICES) if v.engine == "flite"]
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as folder:
        audio = VirtualAudio(Path(folder))
        audio.start()
        try:
            return bench(options, rng, voices, audio, Path(folder))
        finally:
            audio.stop()


def bench(options: argparse.Namespace, rng: random.Random, voices: list[Voice], audio: VirtualAudio,
          folder: Path) -> int:
    if options.echo_db is not None:
        _add_echo_path(options.echo_db)
    recognizer = RecognizerSettings(engine=options.engine, model_dir=Path(options.model) if options.model else None)
    events = EventQueue(RealClock())
    rig = open_rig(VoiceSettings(listening=ListeningSettings(recognizer)), load_vocabulary("en"), events)
    tee = MicTee(rig.mic)
    monitor = MonitorCapture()
    rig.mic.start()
    rig.listener.start()
    started, cpu0 = time.monotonic(), listener_cpu_s()
    clips = []
    if options.people is not None:
        level = active_level(Pyttsx3Synthesizer(NarratorSettings()).synthesize(_STEP))  # the narrator's voice
        for number, speech in enumerate(people_stops(options.people, options.trials)):
            speech = pad(np.clip(speech * (level / active_level(speech)), -32768, 32767).astype(np.int16), 0.2, 0.6)
            clips.append((write_wav(folder / f"stop-person-{number}.wav", speech), speech, word_end_s(speech)))
    for voice in voices if options.people is None else ():
        speech = pad(synthesize(voice, "stop"), 0.2, 0.6)
        loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 300)
        clips.append((write_wav(folder / f"stop-{voice.name}.wav", speech), speech, loud[-1] / _MIC_RATE))
    results = []
    for index in range(options.trials):
        path, speech, word_end = clips[index % len(clips)]
        trial, played_at, cut_guess = run_trial(rig, events, path, rng, audio)
        results.append((trial, played_at, cut_guess, speech, word_end))
    cpu_s, wall_s = listener_cpu_s() - cpu0, time.monotonic() - started
    samples, rate, monitor_start = monitor.stop()
    rig.close()
    return report(results, tee, samples, rate, monitor_start, cpu_s, wall_s, options)


def people_stops(folder: Path, count: int) -> list[np.ndarray]:
    """One 16 kHz "stop" from each of the first `count` held-out speakers (sorted by speaker id)."""
    by_speaker: dict[str, Path] = {}
    for path in sorted((folder / "stop").glob("*.wav")):
        speaker = path.name.split("_nohash_")[0]
        if held_out(speaker, seed=1):
            by_speaker.setdefault(speaker, path)
    if not by_speaker:
        raise SystemExit(f"{folder}/stop: no clips of held-out speakers")
    clips = []
    for path in [by_speaker[s] for s in sorted(by_speaker)][:count]:
        samples, rate = read_wav(path)
        clips.append(resample(samples, rate, _MIC_RATE).astype(np.float64))
    return clips


def word_end_s(speech: np.ndarray) -> float:
    """The end of the last 10 ms frame within 15 dB of the loudest one (the recordings carry some noise)."""
    frames = len(speech) // 160
    power = np.mean(speech[: frames * 160].astype(np.float64).reshape(frames, 160) ** 2, axis=1)
    loud = np.flatnonzero(power >= power.max() * 10 ** (-1.5))
    return (int(loud[-1]) + 1) * 160 / _MIC_RATE


def _add_echo_path(gain_db: float) -> None:
    """A loopback from the speaker's monitor into the microphone: the room's echo.

    With adjust_time=0: by default module-loopback resamples itself now and then to hold its latency, and so moved
    the echo path a fraction of a millisecond at a time under the canceller, as no room does (within a sentence the
    path wandered 5 samples a second; fixed, it holds still and the canceller removes over 30 dB)."""
    command = ["pactl", "load-module", "module-loopback", "source=spk.monitor", "sink=micfeed", "latency_msec=20",
               "adjust_time=0"]
    module = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    time.sleep(0.5)
    inputs = subprocess.run(["pactl", "list", "short", "sink-inputs"], capture_output=True, text=True).stdout
    for line in inputs.splitlines():
        if line.split()[2] == module:
            percent = round(100 * 10 ** (gain_db / 60))  # PulseAudio volumes are cubic
            subprocess.run(["pactl", "set-sink-input-volume", line.split()[0], f"{percent}%"], check=True)


def report(results: list, tee: MicTee, samples: np.ndarray, rate: int, monitor_start: float, cpu_s: float,
           wall_s: float, options: argparse.Namespace) -> int:
    latencies = []
    for number, (trial, played_at, cut_guess, speech, word_end) in enumerate(results, 1):
        trial.word_end_s = word_end_in_mic(tee, speech, word_end, played_at)
        if cut_guess is not None:
            trial.silent_s = silence_at_speaker(samples, rate, monitor_start, cut_guess)
        latency = trial.latency_ms
        status = "missed" if not trial.heard else f"{latency:7.1f} ms" if latency is not None else "unmeasured"
        print(f"trial {number:3d}: {status}")
        if trial.heard and latency is not None:
            latencies.append(latency)
    heard = sum(1 for r in results if r[0].heard)
    person = f"people from {options.people}" if options.people is not None else "flite voices"
    echo = "none" if options.echo_db is None else f"{options.echo_db} dB"
    print(f"\nperson: {person}; engine {options.engine}, echo {echo}: {heard}/{len(results)} stops heard")
    if latencies:
        ordered = sorted(latencies)
        p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
        print(f"stop latency (end of word to silence at the speaker), {len(latencies)} trials: "
              f"median {statistics.median(latencies):.0f} ms, p95 {p95:.0f} ms, worst {max(latencies):.0f} ms, "
              f"best {min(latencies):.0f} ms")
    print(f"listener CPU: {cpu_s:.2f} s over {wall_s:.1f} s of audio = {cpu_s / wall_s:.3f} of real time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
