"""Measure the PocketSphinx recognizer + spotter: detection, false commands, speed, stop latency.

Synthesizes command phrases, non-command words and ordinary sentences with several TTS voices (tuning voices
and held-out voices), and optionally runs a folder of real recordings laid out as WORD/*.wav (Speech Commands).

    .venv/bin/python scripts/eval_pocketsphinx.py [--sets tune,held,human] [--set garbage_weight=0.2] [-v]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT / "tests"))
sys.path.insert(0, str(_ROOT))

import speech  # noqa: E402

from voicecoach.core.commands import Match, Vocabulary, load_vocabulary  # noqa: E402
from voicecoach.core.events import Command  # noqa: E402
from voicecoach.listening.listener import SpotterSettings, spot_samples  # noqa: E402
from voicecoach.listening.pocketsphinx import PocketSphinxRecognizer, PocketSphinxSettings  # noqa: E402
from voicecoach.audio.wavfile import read_wav  # noqa: E402

_LOGGER = logging.getLogger(__name__)


def _words(text: str) -> list[str]:
    """Whitespace-separated words."""
    return text.split()


TUNE_WORDS = _words(
    """
apple water garden yellow morning table window coffee music people little number happy family breathe relax
shoulder gently slowly knee arm leg hip spine stretch reach inhale exhale feel body floor chair forward lower
raise bend twist turn breath position steady hello thanks sorry maybe really great fine nice hold bottle cat dog
bird tree paper phone green river mountain dinner kitchen stopped stock pulse post toast muscle bus goes low
show tall lunch stuff rest release seconds count ten twenty thirty side other minute hands feet
"""
)
HELD_WORDS = _words(
    """
orange sister winter summer pencil doctor basket candle forest ocean station money letter picture evening silver
copper blanket pillow rabbit turtle dollar button jacket ticket rocket stopping stomach office poster toss cause
laws nose slow blow tough punch lap map top shop spot bed marvin sheila wow yes
"""
)
TUNE_SENTENCES = (
    "The weather today is warm and sunny with a light breeze from the west.",
    "I like to cook pasta with tomatoes, garlic and fresh basil for dinner.",
    "Tomorrow it may rain in the afternoon, so bring an umbrella.",
    "She baked bread in the oven while the soup was simmering.",
    "Breathe in slowly and feel your shoulders relax.",
    "Keep your knees soft and your spine long.",
    "Lift your arms above your head and reach toward the ceiling.",
    "Let your chin drop gently toward your chest.",
)
HELD_SENTENCES = (
    "The forecast says clouds will clear by the evening and the night will be cold.",
    "Chop the onions finely, fry them in butter, then add the rice and the stock.",
    "My grandmother grew carrots and potatoes in a small garden behind her house.",
    "Sit tall with both feet flat on the floor and your hands resting on your thighs.",
    "We walked along the beach and watched the boats sail past the harbour.",
    "Slowly roll your shoulders in a circle, breathing calmly as you move.",
)
SPEECH_COMMANDS = Path("/work/shared/data/speech_commands")


@dataclass(frozen=True)
class Clip:
    """One test item: audio, what it is, and the command it should give (None for none)."""

    source: str
    kind: str
    """'command', 'word' or 'sentence'."""
    text: str
    expected: Command | None
    samples: np.ndarray
    speech_end_s: float | None = None
    """Where the speech ends in samples, for latency."""


@dataclass
class Tally:
    """Counts for one group of clips."""

    commands: int = 0
    detected: int = 0
    safety: int = 0
    safety_detected: int = 0
    others: int = 0
    false_any: int = 0
    false_safety: int = 0
    false_by_kind: dict[str, list[int]] = dataclasses.field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    """kind -> [false commands, clips], for words and sentences apart."""
    latencies: list[float] = dataclasses.field(default_factory=list)
    misses: list[str] = dataclasses.field(default_factory=list)


def tts_clips(
    vocabulary: Vocabulary, voices: tuple[speech.Voice, ...], words: list[str], sentences: tuple[str, ...]
) -> list[Clip]:
    """Synthesize every command phrase, word and sentence with every available voice."""
    clips: list[Clip] = []
    lead, tail = 0.5, 0.8
    for voice in (v for v in voices if speech.available(v)):
        for phrase in vocabulary.all_phrases():
            expected = vocabulary.match(phrase)
            raw = speech.synthesize(voice, phrase)
            end = lead + _last_loud_s(raw)
            clips.append(Clip(voice.label, "command", phrase, _command(expected), speech.pad(raw, lead, tail), end))
        for text in words:
            clips.append(Clip(voice.label, "word", text, None, speech.pad(speech.synthesize(voice, text), lead, tail)))
        for text in sentences:
            clips.append(
                Clip(voice.label, "sentence", text, None, speech.pad(speech.synthesize(voice, text), lead, tail))
            )
    return clips


def _command(match: Match | None) -> Command | None:
    """The command of a match, if any."""
    return match.command if match is not None else None


def _last_loud_s(samples: np.ndarray) -> float:
    """Time of the last sample above -40 dBFS."""
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > 328)[0]
    return float(loud[-1]) / speech.RATE if len(loud) else 0.0


def folder_clips(folder: Path, vocabulary: Vocabulary) -> list[Clip]:
    """WORD/*.wav recordings; a WORD that is a command phrase is expected to give that command."""
    clips: list[Clip] = []
    for path in sorted(folder.glob("*/*.wav")):
        word = path.parent.name
        samples, rate = read_wav(path)
        match = vocabulary.match(word)
        kind = "command" if match else "word"
        clips.append(Clip("human", kind, word, _command(match), speech_samples(samples, rate)))
    return clips


def speech_samples(samples: np.ndarray, rate: int) -> np.ndarray:
    """Resample to 16 kHz and add a little silence so the utterance closes as it would live."""
    from voicecoach.audio.wavfile import resample

    return speech.pad(resample(samples, rate, speech.RATE), 0.2, 0.6)


def evaluate(
    clips: list[Clip], recognizer: PocketSphinxRecognizer, vocabulary: Vocabulary, spotter: SpotterSettings
) -> tuple[Tally, float]:
    """Run every clip through one recognizer (its cepstral mean carries over, as live); tally and time it."""
    tally = Tally()
    cpu_s = audio_s = 0.0
    for clip in clips:
        result = spot_samples(clip.samples, speech.RATE, recognizer, vocabulary, 20, spotter)
        cpu_s, audio_s = cpu_s + result.cpu_s, audio_s + result.audio_s
        first = result.commands[0] if result.commands else None
        got = first.command if first else None
        _count(tally, clip, got, first.audio_time_s if first else None)
        if (got != clip.expected) and got is not None or (clip.expected is not None and got != clip.expected):
            tally.misses.append(
                f"{clip.source:28} {clip.text[:40]!r:44} -> {got and got.value} "
                f"{[h.text for h in result.hypotheses if h.final]}"
            )
    return tally, cpu_s / audio_s if audio_s else 0.0


def _count(tally: Tally, clip: Clip, got: Command | None, at_s: float | None) -> None:
    """Add one clip's outcome to the tally."""
    if clip.expected is None:
        tally.others += 1
        tally.false_any += got is not None
        tally.false_safety += got is not None and got.is_safety
        tally.false_by_kind[clip.kind][0] += got is not None
        tally.false_by_kind[clip.kind][1] += 1
        return
    tally.commands += 1
    tally.detected += got == clip.expected
    if clip.expected.is_safety:
        tally.safety += 1
        tally.safety_detected += got == clip.expected
        if got == clip.expected and at_s is not None and clip.speech_end_s is not None and len(clip.text.split()) == 1:
            tally.latencies.append(at_s - clip.speech_end_s)


def _pct(part: int, whole: int) -> str:
    """'12/40 (30%)'."""
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "-"


def report(name: str, tally: Tally, rtf: float, verbose: bool) -> None:
    """Print one line group for a set of clips."""
    print(f"== {name}")
    print(f"  commands detected      {_pct(tally.detected, tally.commands)}")
    print(f"  safety detected        {_pct(tally.safety_detected, tally.safety)}")
    print(f"  false command (any)    {_pct(tally.false_any, tally.others)}")
    print(f"  false safety command   {_pct(tally.false_safety, tally.others)}")
    for kind, (false, count) in sorted(tally.false_by_kind.items()):
        print(f"    false command, {kind + 's':9} {_pct(false, count)}")
    if tally.latencies:
        lat = sorted(tally.latencies)
        p95 = lat[min(len(lat) - 1, int(0.95 * len(lat)))]
        print(
            f"  one-word safety latency after speech end: median {statistics.median(lat) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms (n={len(lat)})"
        )
    print(f"  real-time factor       {rtf:.3f}")
    if verbose:
        for miss in tally.misses:
            print("   ", miss)


def _convert(kind: str, value: str) -> object:
    """A --set value as the setting's type."""
    if kind == "int":
        return int(value)
    if kind == "bool":
        return value.lower() in ("1", "true", "yes")
    if kind.startswith("tuple"):
        raise SystemExit(f"--set: {value!r}: tuple settings cannot be set here")
    return float(value)


def _parse_overrides(items: list[str]) -> dict[str, dict[str, object]]:
    """--set name=value pairs, routed to the recognizer or the spotter settings."""
    out: dict[str, dict[str, object]] = {"recognizer": {}, "spotter": {}}
    fields = {f.name: ("recognizer", f.type) for f in dataclasses.fields(PocketSphinxSettings)}
    fields |= {f.name: ("spotter", f.type) for f in dataclasses.fields(SpotterSettings)}
    for item in items:
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--set {item}: unknown setting (expected one of {', '.join(sorted(fields))})")
        where, kind = fields[name]
        out[where][name] = _convert(str(kind), value)
    return out


def main() -> None:
    """Run the chosen clip sets and print what was measured."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", default="tune,held,human", help="comma list of tune, held, human")
    parser.add_argument("--folder", type=Path, default=SPEECH_COMMANDS, help="WORD/*.wav recordings for 'human'")
    parser.add_argument("--set", action="append", default=[], help="override a setting, e.g. garbage_weight=0.3")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every miss and false command")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    overrides = _parse_overrides(args.set)
    vocabulary = load_vocabulary("en")
    recognizer = PocketSphinxRecognizer(vocabulary, PocketSphinxSettings(**overrides["recognizer"]))  # type: ignore[arg-type]
    spotter = SpotterSettings(**overrides["spotter"])  # type: ignore[arg-type]
    print(f"settings: {recognizer.settings}\nspotter: {spotter}")
    sets = {
        "tune": lambda: tts_clips(vocabulary, speech.ESPEAK_VOICES + speech.FLITE_VOICES, TUNE_WORDS, TUNE_SENTENCES),
        "held": lambda: tts_clips(vocabulary, speech.HELD_OUT_VOICES, HELD_WORDS, HELD_SENTENCES),
        "human": lambda: folder_clips(args.folder, vocabulary),
    }
    for name in args.sets.split(","):
        clips = sets[name]()
        by_source: dict[str, list[Clip]] = defaultdict(list)
        for clip in clips:
            by_source[clip.source.split(":")[0]].append(clip)
        for source, group in sorted(by_source.items()):
            tally, rtf = evaluate(group, recognizer, vocabulary, spotter)
            report(f"{name} / {source} ({len(group)} clips)", tally, rtf, args.verbose)


if __name__ == "__main__":
    main()
