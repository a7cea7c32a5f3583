"""Stop latency through real (virtual) audio devices: from the end of a spoken "stop" to the narrator's silence.

At a random moment while the narrator reads a long step, a person's "stop" (a TTS voice the narrator does not use)
is played into the virtual microphone. The time the word ends is found in what the microphone captured (PortAudio
capture times; the clip located by GCC-PHAT, which holds under the narration's echo); the time the narration ends is
found in an in-process capture of the speaker's monitor (also PortAudio capture times), so both ends are measured on
one clock, in the audio itself. With --echo-db the narrator's own voice also reaches the microphone (a PulseAudio
loopback from the speaker to the microphone).

Silence is the first moment the narration that should have been heard is not: the monitor is lined up with the whole
sentence the narrator was reading (every buffer handed to the speaker is kept), and the cut is the first 5 ms of it
that should be loud and is 20 dB down or gone (a fade of 20 dB counts as silence). A cut inside a pause between words
cannot be seen in the audio before the pause ends, so that figure is an upper bound; the last narration heard before
the cut is the lower bound, and both are printed.

    .venv/bin/python scripts/bench_stop_latency.py --trials 30
    .venv/bin/python scripts/bench_stop_latency.py --trials 30 --echo-db -6
    .venv/bin/python scripts/bench_stop_latency.py --trials 30 --echo-db 0 --people ../shared/data/speech_commands_v2
    .venv/bin/python scripts/bench_stop_latency.py --narration-only 600 --echo-db 0   # nobody speaks: false commands
    .venv/bin/python scripts/bench_stop_latency.py --trials 30 --echo-db 0 --people DIR --fresh-rig  # at start-up

By default the person is a flite voice. With --people FOLDER the person is real: one "stop" (FOLDER/stop/*.wav) from
each speaker held out from the spotter's training (its validation split, seed 1), taken in turn (speech_commands_v2
holds 21 of them; ../shared/data/speech_commands only 2), each scaled to the active
level of the narration, so that --echo-db is the echo's level relative to the person's voice.

Prints every trial, then median, p95 and worst (of the upper bound, and of the lower), and the listener thread's
CPU time per second of audio. A trial is unmeasured when the clip is not found in the microphone (the GCC-PHAT peak
too weak), when the stop came between sentences (nothing was cut), or when the monitor does not line up with the
sentence.
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
from typing import Any

import numpy as np

from voicecoach.audio.acoustics import active_level, speech_bounds  # noqa: E402
from voicecoach.audio.virtual_server import SPEAKER_RATE, MonitorCapture, VirtualAudio  # noqa: E402
from voicecoach.audio.wavfile import read_wav, resample  # noqa: E402
from voicecoach.core.commands import load_vocabulary  # noqa: E402
from voicecoach.core.events import Command, CommandHeard  # noqa: E402
from voicecoach.core.routine import Exercise, Routine  # noqa: E402
from voicecoach.core.session import Session, State  # noqa: E402
from voicecoach.echo.delay import estimate_delay  # noqa: E402
from voicecoach.narration.stand_in_voices import FLITE_VOICES, HELD_OUT_VOICES, Voice, pad, synthesize, write_wav  # noqa: E402
from voicecoach.narration.synthesis import Pyttsx3Synthesizer  # noqa: E402
from voicecoach.runtime.clock import EventQueue, RealClock  # noqa: E402
from voicecoach.runtime.player import Player  # noqa: E402
from voicecoach.runtime.rig import open_rig  # noqa: E402
from voicecoach.runtime.transcript import Transcript  # noqa: E402
from voicecoach.settings import (  # noqa: E402
    ENGINES,
    ListeningSettings,
    NarratorSettings,
    RecognizerSettings,
    VoiceSettings,
    YieldSettings,
)
from voicecoach.training.sources import held_out  # noqa: E402

_STEP = (
    "Lie face up on the mat with both knees bent and your feet flat, then let your arms rest by your sides, "
    "soften your shoulders, and notice how your lower spine settles a little more with each slow breath out, "
    "and keep that easy rhythm while your whole body grows heavy and calm against the floor, letting the hips "
    "sink and the jaw soften, breathing in through the nose and out through the mouth."
)
_MIC_RATE = 16000
_MIN_PEAK = 0.03
"""GCC-PHAT peak strength below which the clip is not taken as found in the microphone (flite clips under 0 dB of
narration peaked at 0.06 to 0.26, all where plain correlation put them too)."""
_AGREE_S = 0.002
_FRAME_S = 0.005
_SILENT_DB = 20.0
"""How far below what it should be a loud narration frame must be to count as silenced."""
_LOUD_RMS = 300.0
"""int16 RMS a narration frame must have (as it should sound) to be judged: 20 dB below it is still above the noise."""


@dataclass
class Trial:
    """One stop: when the word ended at the microphone and when the narration went silent at the speaker."""

    word_end_s: float | None = None
    silent_s: float | None = None
    """The first narration frame missing (the upper bound of the cut)."""
    last_heard_s: float | None = None
    """The end of the last narration frame heard before it (the lower bound)."""
    heard: bool = False
    heard_as: str = ""
    """What the listener heard during the trial (text, command, confidence)."""
    false_stop: str = ""
    """What stopped the session before the word was played (the word is then not played)."""
    stopped_s: float | None = None
    """When the bench saw the session stopped (polled every 5 ms): the decision, before the speaker's own delay."""
    why_unmeasured: str = ""
    clip: str = ""
    """The file played (a person's: their Speech Commands file name)."""
    room_mark_s: float = 0.0
    """How much later the room's end of the word is (`acoustics.speech_bounds`: 30 dB under the loudest 10 ms and
    10 dB over the clip's noise, which keeps the vowel's decay and the /p/) than the bench's own (15 dB)."""

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from the end of the word to silence (upper bound)."""
        if self.word_end_s is None or self.silent_s is None:
            return None
        return (self.silent_s - self.word_end_s) * 1000

    @property
    def lower_ms(self) -> float | None:
        """Milliseconds from the end of the word to the last narration heard (lower bound)."""
        if self.word_end_s is None or self.last_heard_s is None:
            return None
        return (self.last_heard_s - self.word_end_s) * 1000


class SpeakerTee:
    """Keeps every buffer handed to the product's speaker, whole and at the speaker's rate (its log keeps only what
    was heard)."""

    def __init__(self, speaker: object) -> None:
        self.buffers: list[np.ndarray] = []
        self.attach(speaker)

    def attach(self, speaker: object) -> None:
        """Keep what this speaker (a new rig's) is handed too."""
        self._play = speaker.play  # type: ignore[attr-defined]
        self.rate = int(speaker.sample_rate)  # type: ignore[attr-defined]
        speaker.play = self.play  # type: ignore[attr-defined]

    def play(self, samples: np.ndarray, sample_rate: int) -> None:
        self.buffers.append(np.asarray(resample(samples, sample_rate, self.rate), dtype=np.int16))
        self._play(samples, sample_rate)

    def whole(self, heard: np.ndarray) -> np.ndarray | None:
        """The whole buffer of which `heard` is the beginning (the latest such), or None."""
        head = heard[: min(len(heard), 4800)]
        for samples in reversed(self.buffers):
            if len(samples) >= len(head) and np.array_equal(samples[: len(head)], head):
                return samples
        return None


class MicTee:
    """Keeps every block the product's microphone delivers, with its capture time."""

    def __init__(self, mic: object) -> None:
        self.blocks: list[tuple[float, bytes]] = []
        self.attach(mic)

    def attach(self, mic: object) -> None:
        """Keep what this microphone (a new rig's) delivers too."""
        self._read_block = mic.read_block  # type: ignore[attr-defined]
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
    """Where the clip landed in the mic capture (GCC-PHAT), plus where its word ends; None if not found."""
    mic, first_s = tee.around(played_at - 0.2, played_at + 2.5)
    return locate_clip(mic, first_s, clip, clip_word_end_s, _MIC_RATE)


def locate_clip(mic: np.ndarray, first_s: float, clip: np.ndarray, clip_word_end_s: float,
                rate: int) -> float | None:  # fmt: skip
    """The time the clip's word ends in a recording that starts at first_s (None: the clip is not clearly in it).

    Found where the GCC-PHAT peak is strong enough and plain cross-correlation puts the clip at the same place."""
    room = (len(mic) - len(clip)) / rate
    if room <= 0:
        return None
    delay, strength = estimate_delay(mic, clip, rate, max_delay_s=room, min_delay_s=0.0)
    a, b = np.asarray(mic, np.float64), np.asarray(clip, np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    plain = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)[: len(a) - len(b) + 1]
    agree = abs(int(np.argmax(plain)) / rate - delay) <= _AGREE_S
    return first_s + delay + clip_word_end_s if strength >= _MIN_PEAK and agree else None


def cut_bracket(monitor: np.ndarray, monitor_start_s: float, rate: int, sentence: np.ndarray, start_s: float,
                until_s: float) -> tuple[float, float] | str:  # fmt: skip
    """When the narration of `sentence` (due at start_s by the speaker's log; at the monitor's rate) fell silent in
    the monitor recording: (end of the last loud frame heard, start of the first loud frame missing), or why it
    cannot be told.

    Only the monitor before until_s (the next sentence) is judged; a sentence that played on to then counts as cut
    there."""
    lo = int(round((start_s - 0.1 - monitor_start_s) * rate))
    hi = int(round((until_s - monitor_start_s) * rate))
    if lo < 0 or hi > len(monitor) or hi - lo < rate // 10:
        return "outside the monitor recording"
    segment = monitor[lo:hi].astype(np.float64)
    template = sentence[: min(len(sentence), rate, len(segment))].astype(np.float64)
    delay, _ = estimate_delay(segment, template, rate, max_delay_s=0.3, min_delay_s=0.0)  # checked below
    offset = int(round(delay * rate))
    frame = max(1, int(round(_FRAME_S * rate)))
    count = min(len(sentence), len(segment) - offset) // frame
    if count <= 0:
        return "the sentence starts after the next one"
    expected = sentence[: count * frame].astype(np.float64).reshape(count, frame)
    got = segment[offset : offset + count * frame].reshape(count, frame)
    e_power, g_power = np.mean(expected**2, axis=1), np.mean(got**2, axis=1)
    loud = e_power >= _LOUD_RMS**2
    if not loud.any():
        return "the sentence has no loud frame before the next one"
    ratio = np.sqrt(g_power / np.maximum(e_power, 1e-9))
    gain = float(np.percentile(ratio[loud], 95))  # the level as played; the frames after a cut only lower the ratio
    for _ in range(2):  # then the level of what was heard before the cut alone
        missing = loud & (ratio < gain * 10 ** (-_SILENT_DB / 20))
        first = _first_missing_for_good(loud, missing)
        heard = loud[:first] & ~missing[:first]  # a fade it came back from is left out of the level
        if not heard.any():
            return "nothing of the sentence was heard"
        gain = float(np.median(ratio[:first][heard]))
    if np.mean(np.abs(20 * np.log10(np.maximum(ratio[:first][heard], 1e-9) / gain)) < 3.0) < 0.9:
        return "the monitor does not follow the sentence before the cut"
    before = loud[:first] & ~missing[:first]
    if not before.any():
        return "nothing of the sentence was heard"
    to_s = lambda index: monitor_start_s + (lo + offset + index * frame) / rate  # noqa: E731
    return to_s(int(np.flatnonzero(before)[-1]) + 1), to_s(first)


def _first_missing_for_good(loud: np.ndarray, missing: np.ndarray) -> int:
    """The first missing loud frame after the last loud frame heard (len(loud) if the last loud frame was heard).

    A narrator that faded and came back (yielding the floor to a sound that was no command) was not silenced
    there: the cut is where it went quiet and stayed quiet."""
    heard = np.flatnonzero(loud & ~missing)
    after = np.flatnonzero(missing[heard[-1] + 1 :]) + heard[-1] + 1 if len(heard) else np.flatnonzero(missing)
    return int(after[0]) if len(after) else len(loud)


@dataclass
class Cut:
    """The sentence the stop cut off: when it was due, the whole of it, and when the next buffer started."""

    start_s: float
    sentence: np.ndarray | None
    """The whole sentence at the monitor's rate (None: not among the buffers kept)."""
    until_s: float


def run_trial(rig: object, events: EventQueue, clip_path: Path, rng: random.Random, audio: VirtualAudio,
              speaker_tee: SpeakerTee) -> tuple[Trial, float, Cut | None]:  # fmt: skip
    """One narration interrupted by 'stop'; returns the trial, when the clip was played and the sentence it cut."""
    vocabulary = load_vocabulary("en")
    events.cancel(lambda event: True)  # what the last trial left queued (its closing stop) must not stop this one
    routine = Routine("bench", "Bench", "", (Exercise("Rest", "lying face up", (_STEP,), 20.0),))
    session = Session(routine)
    transcript = Transcript()
    player = Player(session, rig.narrator, events, vocabulary, transcript)  # type: ignore[attr-defined]
    thread = threading.Thread(target=player.run, daemon=True)
    thread.start()
    speaker = rig.speaker  # type: ignore[attr-defined]
    deadline = time.monotonic() + 15
    said_s = None  # when the step's text was handed to the narrator (not an earlier trial's sound, nor the title)
    trial = Trial()
    while said_s is None or not any(b.start_s > said_s - 0.05 for b in speaker.played()):
        if said_s is None and any(r["kind"] == "say" and _STEP[:40] in r["text"] for r in list(transcript.records)):
            said_s = time.monotonic()
        if session.state is State.STOPPED or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    else:
        time.sleep(rng.uniform(0.5, 6.0))
    if session.state is State.STOPPED:
        trial.false_stop = _heard(transcript)
    elif said_s is None or time.monotonic() > deadline:
        raise RuntimeError("the narration of the step never started")
    played_at = time.monotonic()
    if not trial.false_stop:
        audio.play_into_mic(clip_path, wait=False)
    deadline = time.monotonic() + 6 if not trial.false_stop else 0.0
    while time.monotonic() < deadline and session.state is not State.STOPPED:
        time.sleep(0.005)
    trial.heard = session.state is State.STOPPED and not trial.false_stop
    trial.heard_as = _heard(transcript)
    trial.stopped_s = time.monotonic() if trial.heard else None
    time.sleep(1.0)
    played = speaker.played()
    aborted = [b for b in played if b.aborted and b.start_s + b.duration_s > played_at]
    cut = None
    if aborted:
        end_s = aborted[0].start_s + aborted[0].duration_s
        following = [b.start_s for b in played if b.start_s > aborted[0].start_s + 0.01]
        sentence = speaker_tee.whole(aborted[0].samples)
        if sentence is not None:  # the monitor records at the virtual sink's rate, the speaker's stream may not
            sentence = resample(sentence, speaker_tee.rate, SPEAKER_RATE)
        cut = Cut(aborted[0].start_s, sentence, min(following, default=end_s + 1.0))
    events.post(CommandHeard(Command.QUIT, "end workout"))
    events.post(CommandHeard(Command.STOP, "stop"))
    thread.join(timeout=20)
    rig.narrator.stop()  # type: ignore[attr-defined]
    time.sleep(0.5)
    return trial, played_at, cut


def _heard(transcript: Transcript) -> str:
    """What the listener heard so far: text, command and confidence of each."""
    return "; ".join(f"{r['text']!r} -> {r.get('command')} {r.get('confidence', 0):.2f}"
                     for r in list(transcript.records) if r["kind"] == "heard")  # fmt: skip


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
    parser.add_argument("--yield", dest="yield_floor", action="store_true",
                        help="yield the floor (off by default in the product): the narrator fades 25 dB the moment a "
                             "stop or too-much score reaches 0.3, and comes back after a second without a command")
    parser.add_argument("--narration-only", type=float, metavar="SECONDS",
                        help="nobody speaks: the narrator reads the lower-back routine for SECONDS through the "
                             "virtual devices (with --echo-db, its echo in the microphone); every command heard is "
                             "false (a stop or pause is resumed after a second, so the routine goes on)")
    parser.add_argument("--fresh-rig", action="store_true",
                        help="a new voice rig for every trial, so every stop comes within the first seconds of "
                             "playback, while the echo canceller is still learning the room (stop and too much then "
                             "need 0.8): what the start-up caution costs a person (default: one rig for all trials)")
    parser.add_argument("--save-cleaned", type=Path, metavar="WAV",
                        help="also write what the echo canceller left of the microphone, as the engine got it "
                             "(before the spotter's noise floor), to WAV (16 kHz): `voicecoach listen --wav WAV` "
                             "then scores it again offline")
    options = parser.parse_args()
    if options.save_cleaned is not None and not options.save_cleaned.parent.is_dir():
        parser.error(f"--save-cleaned {options.save_cleaned}: there is no folder {options.save_cleaned.parent}")
    rng = random.Random(options.seed)
    voices = [v for v in (*FLITE_VOICES, *HELD_OUT_VOICES) if v.engine == "flite"]
    with tempfile.TemporaryDirectory(prefix="vc-bench-") as folder:
        audio = VirtualAudio(Path(folder))
        audio.start()
        try:
            if options.narration_only is not None:
                return narration_only(options, audio)
            return bench(options, rng, voices, audio, Path(folder))
        finally:
            audio.stop()


Cleaned = list[np.ndarray] | None


def _open_bench_rig(options: argparse.Namespace, echo_path: bool = True,
                    blocks: Cleaned = None) -> tuple[Any, EventQueue, Cleaned]:  # fmt: skip
    """The echo path (with --echo-db, unless echo_path is False: a later rig of --fresh-rig) and the product's voice
    rig on the virtual devices, with its event queue and (with --save-cleaned) the list the pipeline's cleaned blocks
    go to (blocks, if given)."""
    if options.echo_db is not None and echo_path:
        _add_echo_path(options.echo_db)
    recognizer = RecognizerSettings(engine=options.engine, model_dir=Path(options.model) if options.model else None)
    events = EventQueue(RealClock())
    listening = ListeningSettings(recognizer, yield_floor=YieldSettings(enabled=options.yield_floor))
    rig = open_rig(VoiceSettings(listening=listening), load_vocabulary("en"), events)
    if options.save_cleaned is not None:
        blocks = [] if blocks is None else blocks
        rig.listener.pipeline.on_cleaned = blocks.append  # type: ignore[attr-defined]
    return rig, events, blocks


def _save_cleaned(blocks: list[np.ndarray] | None, path: Path | None) -> None:
    """With --save-cleaned: what the echo canceller left, as one WAV."""
    if blocks is not None and path is not None:
        samples = np.concatenate(blocks) if blocks else np.zeros(0, np.int16)
        write_wav(path, samples, _MIC_RATE)
        print(f"what the echo canceller left: {path} ({len(samples) / _MIC_RATE:.1f} s)")


def bench(options: argparse.Namespace, rng: random.Random, voices: list[Voice], audio: VirtualAudio,
          folder: Path) -> int:
    rig, events, cleaned = _open_bench_rig(options)
    tee = MicTee(rig.mic)
    speaker_tee = SpeakerTee(rig.speaker)
    monitor = MonitorCapture()
    rig.mic.start()
    rig.listener.start()
    started, cpu0 = time.monotonic(), listener_cpu_s()
    clips = []
    if options.people is not None:
        level = active_level(Pyttsx3Synthesizer(NarratorSettings()).synthesize(_STEP))  # the narrator's voice
        for name, speech in people_stops(options.people, options.trials):
            speech = np.clip(speech * (level / active_level(speech)), -32768, 32767).astype(np.int16)
            room_end = speech_bounds(speech)[1] + 0.2
            speech = pad(speech, 0.2, 0.6)
            clips.append((write_wav(folder / name, speech), speech, word_end_s(speech), room_end))
    for voice in voices if options.people is None else ():
        spoken = synthesize(voice, "stop")
        speech = pad(spoken, 0.2, 0.6)
        loud = np.flatnonzero(np.abs(speech.astype(np.int32)) > 300)
        clips.append((write_wav(folder / f"stop-{voice.name}.wav", speech), speech, loud[-1] / _MIC_RATE,
                      speech_bounds(spoken)[1] + 0.2))
    results = []
    cpu_s = 0.0
    for index in range(options.trials):
        if options.fresh_rig and index > 0:  # the echo canceller learns the room again, as at a session's start
            cpu_s += listener_cpu_s() - cpu0
            rig.close()
            rig, events, cleaned = _open_bench_rig(options, echo_path=False, blocks=cleaned)
            tee.attach(rig.mic)
            speaker_tee.attach(rig.speaker)
            rig.mic.start()
            rig.listener.start()
            cpu0 = listener_cpu_s()
        path, speech, word_end, room_end = clips[index % len(clips)]
        trial, played_at, cut = run_trial(rig, events, path, rng, audio, speaker_tee)
        trial.room_mark_s = room_end - word_end
        trial.clip = path.name
        results.append((trial, played_at, cut, speech, word_end))
    cpu_s, wall_s = cpu_s + listener_cpu_s() - cpu0, time.monotonic() - started
    samples, rate, monitor_start = monitor.stop()
    pipeline = rig.listener.pipeline  # type: ignore[attr-defined]
    rig.close()
    _save_cleaned(cleaned, options.save_cleaned)
    code = report(results, tee, samples, rate, monitor_start, cpu_s, wall_s, options)
    if options.yield_floor:
        print(f"narrator fades: {pipeline.fades}, of which no command followed: {pipeline.false_fades} "
              f"({pipeline.false_fades / wall_s * 3600:.0f} an hour of the bench)")
    _print_clipping(pipeline)
    return code


def _print_clipping(pipeline: object) -> None:
    """What the clip guard saw and did (voicecoach.echo.clipping)."""
    guard = getattr(pipeline, "clip_guard", None)
    if guard is not None:
        print(f"microphone samples clipped while the narrator spoke: {guard.clipped_samples}; narrator turned down "
              f"{guard.down_db:.0f} dB")


_BENCH_RESUME = "(the bench resumes)"
"""The text of the resume the bench posts after a false stop or pause (not something the listener heard)."""


def narration_only(options: argparse.Namespace, audio: VirtualAudio) -> int:
    """The lower-back routine read for options.narration_only seconds with nobody speaking: the false commands."""
    from voicecoach.files.library import find_routine
    from voicecoach.files.routine_file import load_routine_file

    rig, events, cleaned = _open_bench_rig(options)
    vocabulary = load_vocabulary("en")
    rig.mic.start()
    rig.listener.start()
    session = Session(load_routine_file(find_routine("lower-back")))
    transcript = Transcript()
    player = Player(session, rig.narrator, events, vocabulary, transcript)  # type: ignore[attr-defined]
    thread = threading.Thread(target=player.run, daemon=True)
    started, cpu0 = time.monotonic(), listener_cpu_s()
    thread.start()
    speech: dict[float, float] = {}  # start of each buffer the speaker played -> its seconds
    held_since: float | None = None
    resumes = 0
    while time.monotonic() - started < options.narration_only and thread.is_alive():
        for buffer in rig.speaker.played():  # type: ignore[attr-defined]
            speech[buffer.start_s] = buffer.duration_s
        if session.state in (State.STOPPED, State.PAUSED):  # a false stop or pause: the routine goes on
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= 1.0:
                events.post(CommandHeard(Command.RESUME, _BENCH_RESUME))
                resumes += 1
                held_since = None
        else:
            held_since = None
        time.sleep(0.1)
    wall_s, cpu_s = time.monotonic() - started, listener_cpu_s() - cpu0
    false = [r for r in list(transcript.records)
             if r["kind"] == "heard" and r.get("command") and r["text"] != _BENCH_RESUME]  # fmt: skip
    events.post(CommandHeard(Command.QUIT, "end workout"))
    thread.join(timeout=20)
    rig.narrator.stop()  # type: ignore[attr-defined]
    time.sleep(0.3)
    pipeline = rig.listener.pipeline  # type: ignore[attr-defined]
    rig.close()
    _save_cleaned(cleaned, options.save_cleaned)
    talk_s = sum(speech.values())
    echo = "no echo" if options.echo_db is None else f"echo {options.echo_db:+g} dB"
    print(f"narration only, lower-back routine, engine {options.engine}, {echo}: {wall_s / 60:.1f} min of routine, "
          f"{talk_s / 60:.1f} min of narrator speech")  # fmt: skip
    records = list(transcript.records)
    for r in false:  # the line the narrator was reading when it was heard (not its answer to it, recorded after)
        line = next((x["text"] for x in reversed(records[: records.index(r)]) if x["kind"] == "say"), "")
        print(f"  false {r['command']} at {r['t']:.1f} s: {r['text']!r} {r.get('confidence', 0):.2f}, "
              f"over {line[:90]!r}")  # fmt: skip
    print(f"false commands: {len(false)} ({len(false) / max(talk_s, 1e-9) * 3600:.1f} an hour of narrator speech); "
          f"resumed after a false stop or pause: {resumes}")  # fmt: skip
    print(f"listener CPU: {cpu_s:.2f} s over {wall_s:.1f} s of audio = {cpu_s / wall_s:.3f} of real time")
    _print_clipping(pipeline)
    return 0


def people_stops(folder: Path, count: int) -> list[tuple[str, np.ndarray]]:
    """One 16 kHz "stop" from each of the first `count` held-out speakers (sorted by speaker id), with its file name."""
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
        clips.append((path.name, resample(samples, rate, _MIC_RATE).astype(np.float64)))
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
    latencies, lowers, reasons, decisions = [], [], [], []
    for number, (trial, played_at, cut, speech, word_end) in enumerate(results, 1):
        measure(trial, tee, speech, word_end, played_at, cut, samples, rate, monitor_start)
        if trial.false_stop:
            status = f"stopped before the word was played: {trial.false_stop}"
        elif not trial.heard:
            status = "missed"
        elif trial.latency_ms is None:
            status = f"unmeasured ({trial.why_unmeasured})"
            reasons.append(trial.why_unmeasured)
        else:
            decided = (trial.stopped_s - trial.word_end_s) * 1000 if trial.stopped_s is not None else float("nan")
            status = (f"{trial.latency_ms:7.1f} ms (last narration heard {trial.lower_ms:+.0f} ms; "
                      f"decided {decided:+.0f} ms; heard {trial.heard_as})")  # fmt: skip
            decisions.append(decided)
            latencies.append(trial.latency_ms)
            lowers.append(trial.lower_ms)
        print(f"trial {number:3d}: {status}")
    heard = sum(1 for r in results if r[0].heard)
    false_stops = sum(1 for r in results if r[0].false_stop)
    speakers = len({id(r[3]) for r in results})
    person = (f"people from {options.people} ({speakers} held-out speakers)" if options.people is not None
              else f"flite voices ({speakers})")  # fmt: skip
    echo = "none" if options.echo_db is None else f"{options.echo_db} dB"
    floor = (", yielding the floor" if options.yield_floor else "") + (", a new rig a trial" if options.fresh_rig
                                                                         else "")  # fmt: skip
    print(f"\nperson: {person}; engine {options.engine}{floor}, echo {echo}: {heard}/{len(results)} stops heard"
          + (f" ({false_stops} trials stopped by something else before the word was played)" if false_stops else ""))
    _print_missed([r[0] for r in results])
    if latencies:
        print(f"stop latency (end of word to the first narration missing at the speaker), {len(latencies)} of "
              f"{heard} heard measured: {_spread(latencies)}")  # fmt: skip
        print(f"  lower bound (end of word to the last narration heard): {_spread(lowers)}")
        print(f"  decision (end of word to the session stopped): {_spread(decisions)}")
        _print_room_mark([r[0] for r in results])
    if reasons:
        counts = {r: reasons.count(r) for r in sorted(set(reasons))}
        print("  unmeasured: " + "; ".join(f"{n} {r}" for r, n in counts.items()))
    print(f"listener CPU: {cpu_s:.2f} s over {wall_s:.1f} s of audio = {cpu_s / wall_s:.3f} of real time")
    return 0


def _print_missed(trials: list[Trial]) -> None:
    """Which clips were missed, and how often each was played: with more trials than clips the first ones are
    played twice, so one speaker the head does not hear weighs double."""
    played: dict[str, list[bool]] = {}
    for trial in trials:
        if not trial.false_stop:
            played.setdefault(trial.clip, []).append(trial.heard)
    missed = [f"{clip} {heard.count(False)} of {len(heard)}" for clip, heard in played.items() if not all(heard)]
    if missed:
        print(f"  missed, by clip: {', '.join(missed)}")


def _print_room_mark(trials: list[Trial]) -> None:
    """The same latencies from the room's end of the word (`scripts/eval_commands.py`), which keeps the vowel's
    decay and the /p/ that the bench's 15 dB mark often leaves out: the figures of the two scripts then compare."""
    silence, decided, shift = [], [], []
    for trial in trials:
        if trial.latency_ms is None or trial.word_end_s is None:
            continue
        shift.append(1000 * trial.room_mark_s)
        silence.append(trial.latency_ms - shift[-1])
        if trial.stopped_s is not None:
            decided.append((trial.stopped_s - trial.word_end_s) * 1000 - shift[-1])
    if not silence:
        return
    print(f"  from the room's end of word (eval_commands.py's mark, a median {statistics.median(shift):.0f} ms "
          f"later): silence {_spread(silence)}" + (f"; decision {_spread(decided)}" if decided else ""))


def measure(trial: Trial, tee: MicTee, speech: np.ndarray, word_end: float, played_at: float, cut: Cut | None,
            samples: np.ndarray, rate: int, monitor_start: float) -> None:  # fmt: skip
    """Fill in the trial's word end and silence, or why they cannot be told."""
    if trial.false_stop:
        return
    trial.word_end_s = word_end_in_mic(tee, speech, word_end, played_at)
    if trial.word_end_s is None:
        trial.why_unmeasured = "clip not found in the microphone"
        return
    if cut is None:
        trial.why_unmeasured = "no sentence was cut (the stop came between sentences)"
        return
    if cut.sentence is None:
        trial.why_unmeasured = "the cut sentence is not among the buffers played"
        return
    bracket = cut_bracket(samples, monitor_start, rate, cut.sentence, cut.start_s, cut.until_s)
    if isinstance(bracket, str):
        trial.why_unmeasured = bracket
        return
    trial.last_heard_s, trial.silent_s = bracket


def _spread(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return (f"median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, worst {max(values):.0f} ms, "
            f"best {min(values):.0f} ms")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
