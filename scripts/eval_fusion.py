"""Which detector may stop the narrator alone? The spotter, PocketSphinx, and the two combined, on held-out people.

Every real-person clip of speakers (or files) held out from the spotter's training (its validation split, seed 1) goes
through the product's listening pipeline once per engine, in a quiet room: Speech Commands "stop" (a safety
command) and "go" (resume), every other Speech Commands word, the wake-word recordings and the sentences (none of
which is a command). Then the fusion rules are scored from the same detections:

  spotter          the spotter alone (today's default)
  pocketsphinx     PocketSphinx alone
  either (OR)      a command from either engine acts
  both (AND)       a command acts only when both engines heard it in the clip

For each: recall of stop and of go, and the share of non-command clips turned into any command (with the estimated
false commands per hour of such speech).

    .venv/bin/python scripts/eval_fusion.py                      # all held-out clips (about 10 minutes)
    .venv/bin/python scripts/eval_fusion.py --limit 40           # at most 40 clips per word: a quick look
    .venv/bin/python scripts/eval_fusion.py --engines spotter    # one engine (its row alone)
    .venv/bin/python scripts/eval_fusion.py --pad-s 0.5          # half a second of silence around each clip
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from voicecoach.audio.wavfile import read_wav
from voicecoach.core.commands import load_vocabulary
from voicecoach.listening.pipeline import ListeningPipeline
from voicecoach.settings import ListeningSettings, RecognizerSettings
from voicecoach.training.sources import HumanClip, held_out, human_clips

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ENGINES = ("spotter", "pocketsphinx")
COMMAND_WORDS = {"stop": "stop", "go": "resume"}
"""Speech Commands words that are commands of the vocabulary, and which command."""
PAD_S = 0.0
"""Silence before and after each clip by default: none, as `voicecoach listen --wav FILE` hears a file (the pipeline
itself completes the decision over a word the file ends with)."""


@dataclass(frozen=True)
class Outcome:
    """What each engine heard in one clip."""

    clip: HumanClip
    seconds: float
    heard: dict[str, frozenset[str]]
    """engine -> the commands it heard in the clip."""


def held_out_clips(data: Path, limit: int | None) -> list[HumanClip]:
    """The validation split of every real-person clip, at most `limit` per word."""
    per_word: dict[str, list[HumanClip]] = defaultdict(list)
    for clip in human_clips(data):
        if held_out(clip.speaker, seed=1):
            per_word[clip.word].append(clip)
    return [c for clips in per_word.values() for c in (clips if limit is None else clips[:limit])]


def listen(clips: list[HumanClip], engines: tuple[str, ...] = ENGINES, pad_s: float = PAD_S) -> list[Outcome]:
    """Each clip through one pipeline per engine."""
    vocabulary = load_vocabulary("en")
    pipelines = {e: ListeningPipeline.from_settings(ListeningSettings(RecognizerSettings(engine=e)), vocabulary)
                 for e in engines}  # fmt: skip
    outcomes = []
    for clip in tqdm(clips, desc="clips", unit="clip"):
        samples, rate = read_wav(clip.path)
        pad = np.zeros(round(pad_s * rate), np.int16)
        audio = np.concatenate([pad, samples, pad])
        heard = {engine: frozenset(str(c.command) for c in pipeline.run_samples(audio, rate).commands)
                 for engine, pipeline in pipelines.items()}  # fmt: skip
        outcomes.append(Outcome(clip, len(samples) / rate, heard))
    return outcomes


RULES = {
    "spotter": lambda h: h["spotter"],
    "pocketsphinx": lambda h: h["pocketsphinx"],
    "either (OR)": lambda h: h["spotter"] | h["pocketsphinx"],
    "both (AND)": lambda h: h["spotter"] & h["pocketsphinx"],
}


def table(outcomes: list[Outcome]) -> str:
    """One row per rule (of the engines that ran): recall per command word, false commands on everything else."""
    lines = ["| rule | stop heard | go heard as resume | non-command clips → a command | false commands / hour |",
             "|---|---|---|---|---|"]  # fmt: skip
    ran = set(outcomes[0].heard) if outcomes else set()
    for name, rule in RULES.items():
        if name in ENGINES and name not in ran or name not in ENGINES and ran != set(ENGINES):
            continue
        cells = []
        for word, command in COMMAND_WORDS.items():
            mine = [o for o in outcomes if o.clip.word == word]
            hits = sum(1 for o in mine if command in rule(o.heard))
            cells.append(f"{hits}/{len(mine)} ({100 * hits / max(1, len(mine)):.1f}%)")
        others = [o for o in outcomes if o.clip.word not in COMMAND_WORDS]
        false = [o for o in others if rule(o.heard)]
        hours = sum(o.seconds for o in others) / 3600
        cells.append(f"{len(false)}/{len(others)} ({100 * len(false) / max(1, len(others)):.2f}%)")
        cells.append(f"{sum(len(rule(o.heard)) for o in others) / hours:.1f}" if hours else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="the team's data folder (default ../shared/data)")
    parser.add_argument("--limit", type=int, help="at most this many clips per word")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: both)")
    parser.add_argument("--pad-s", type=float, default=PAD_S, help="silence before and after each clip (default 0)")
    options = parser.parse_args(argv)
    clips = held_out_clips(options.data, options.limit)
    if not clips:
        print(f"{options.data}: no held-out clips found", file=sys.stderr)
        return 2
    engines = tuple(e.strip() for e in options.engines.split(",") if e.strip())
    if not engines or set(engines) - set(ENGINES):
        print(f"--engines: choose from {', '.join(ENGINES)}", file=sys.stderr)
        return 2
    outcomes = listen(clips, engines, options.pad_s)
    words = len({o.clip.word for o in outcomes})
    print(f"{len(outcomes)} held-out clips of {words} words/sources, quiet room, each engine through the pipeline, "
          f"{options.pad_s:g} s of silence around each clip\n")
    print(table(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
