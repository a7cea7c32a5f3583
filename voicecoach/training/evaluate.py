"""Evaluation: per-clip detections with the runtime's own decision rule, thresholds chosen on validation, figures.

A command clip is heard when the first detection from the phrase's start (or HIT_WINDOW_S around its end) is its own
command; a negative clip is a false command when anything fires in it. Narration pieces count false commands per hour.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import numpy as np

from voicecoach.listening.spotter.model import (
    FRAME_S,
    NONE_LABEL,
    SAFETY_COMMANDS,
    Detection,
    SpotterModel,
    detect,
    detect_fused,
)
from voicecoach.training.features import Features
from voicecoach.training.train import WINDOW_FRAMES

HIT_WINDOW_S = (-0.3, 1.2)
"""A detection from this long before to this long after the phrase's end belongs to it; and any from the phrase's
start on, where the start is known. A clear stop often fires before the end the renderer marks (a real recording's
marked end takes in the breath and noise after the word): such a stop used to count only through its own second
detection 1.04 s later, which the decision rule no longer makes (one detection per rise of the score)."""
THRESHOLD_GRID = np.round(np.concatenate([np.arange(0.30, 0.90, 0.05), np.arange(0.90, 0.995, 0.01),
                                          [0.993, 0.996, 0.998, 0.999, 0.9995, 0.9998, 0.9999]]), 4)
"""Thresholds tried, finer near 1 (a confident head's scores crowd there)."""
OTHER_FLOOR = 0.5
"""Lowest threshold of a command other than stop and too_much: it fires only when more likely than all the rest
together (a lower bar let "start" fire on the rise of a "stop", and its refractory time held the stop back)."""
FALSE_BUDGET = {"default": 0.002, "stop": 0.002, "too_much": 0.002}
"""Most validation negative clips a command may fire on when its threshold is chosen."""
_NEGATIVE_TAGS = ("human_word", "wake", "sentence", "tts_confusable")
_NARRATION_TAGS = ("narr_other", "narr_routine", "narr_lower_back", "narr_lower_back_quiet", "narr_holds")
_SAFE_CONFUSION_TAGS = ("talk",)
"""Negatives that, with safety_confusion, count against that wider budget for stop and too_much (and against the
usual budget for every other command): someone else's ordinary talk that halts the narrator is the safe mistake."""


def clip_probabilities(model: SpotterModel, table: np.ndarray, starts: np.ndarray, features: Features,
                       clips: list[int]) -> dict[int, np.ndarray]:  # fmt: skip
    """Per-frame class probabilities of each clip, through the numpy head the runtime uses."""
    out = {}
    offsets = np.arange(WINDOW_FRAMES)
    for i in clips:
        rows = starts[i] + np.arange(int(features.lengths[i]))
        probabilities = [model.probabilities(table[rows[a : a + 4096, None] + offsets])
                         for a in range(0, len(rows), 4096)]  # fmt: skip
        out[i] = np.concatenate(probabilities) if probabilities else np.zeros((0, len(model.labels)))
    return out


def _run_peak(scores: np.ndarray, frames: int | np.ndarray) -> np.ndarray:
    """Per column, the highest value held for `frames` frames in a row (one count for all columns, or one each)."""
    if not isinstance(frames, int):
        out = np.zeros(scores.shape[1])
        for count in np.unique(frames):
            columns = np.nonzero(frames == count)[0]
            out[columns] = _run_peak(scores[:, columns], int(count))
        return out
    if len(scores) < frames:
        return np.zeros(scores.shape[1])
    view = np.lib.stride_tricks.sliding_window_view(scores, frames, axis=0)
    return view.min(axis=2).max(axis=0)


def frames_row(model: SpotterModel, frames: int | dict[str, int]) -> int | np.ndarray:
    """Frames in a row per label column (the "none" column gets 1): one count, or one per command."""
    if isinstance(frames, int):
        return frames
    return np.array([frames.get(label, 1) for label in model.labels])


def choose_thresholds(model: SpotterModel, probabilities: dict[int, np.ndarray], features: Features,
                      frames: int | dict[str, int], total_budget: float | None = None,
                      safety_confusion: float | None = None,
                      safety_budget: float | None = None) -> dict[str, float]:  # fmt: skip
    """Per command, the lowest grid threshold that keeps validation negatives within budget and narration silent.

    safety_budget, if given, replaces FALSE_BUDGET for stop and too_much.

    With safety_confusion, the clips of other commands count against their own, wider budget (that share of them
    may fire stop or too_much) for the safety commands: a "next" heard as "stop" halts the narrator, the safe way
    to be wrong, while a "stop" not heard is the failure the product exists to avoid. So do other people's
    synthesized talk clips (tag "talk": the same share, counted apart). Real people's non-commands (human words,
    wake words, sentences), confusables and the narration keep their budgets.

    With total_budget, thresholds of the commands firing most on validation negatives (other commands before
    stop and too_much) are then raised a grid step at a time until at most that share of the validation negative
    clips (human words, wake words, sentences) fires any command.
    """
    columns = {c: model.labels.index(c) for c in model.commands}
    neg_peaks, narr_peaks, other_cmd_peaks = [], [], []
    talk_peaks: list[np.ndarray] = []
    plain_peaks: list[np.ndarray] = []
    row = frames_row(model, frames)
    for i, probs in probabilities.items():
        meta = features.meta[i]
        if meta["split"] != "val":
            continue
        peak = _run_peak(probs, row)
        if meta["tag"] in _NARRATION_TAGS:
            narr_peaks.append(peak)
        elif meta["label"] == NONE_LABEL:
            neg_peaks.append(peak)
            (talk_peaks if meta["tag"] in _SAFE_CONFUSION_TAGS else plain_peaks).append(peak)
        else:
            other_cmd_peaks.append((meta["label"], peak))
    thresholds = {}
    for command, column in columns.items():
        apart = safety_confusion is not None and command in SAFETY_COMMANDS
        others = np.array([p[column] for lab, p in other_cmd_peaks if lab != command])
        talk = np.array([p[column] for p in talk_peaks])
        if apart:
            negatives = np.array([p[column] for p in plain_peaks])
        else:
            negatives = np.concatenate([np.array([p[column] for p in neg_peaks]), others])
        narration_max = max((p[column] for p in narr_peaks), default=0.0)
        budget = FALSE_BUDGET.get(command, FALSE_BUDGET["default"])
        if safety_budget is not None and command in SAFETY_COMMANDS:
            budget = safety_budget
        chosen = float(THRESHOLD_GRID[-1])
        for threshold in THRESHOLD_GRID[(0.0 if command in SAFETY_COMMANDS else OTHER_FLOOR) <= THRESHOLD_GRID]:
            confused = apart and any(len(group) and np.mean(group >= threshold) > (safety_confusion or 0.0)
                                     for group in (others, talk))  # fmt: skip
            if np.mean(negatives >= threshold) <= budget and narration_max < threshold and not confused:
                chosen = float(threshold)
                break
        thresholds[command] = chosen
    if total_budget is not None and plain_peaks:  # real people's words, wake words and sentences
        _within_total(thresholds, columns, np.array(plain_peaks), total_budget)
    return thresholds


def _within_total(thresholds: dict[str, float], columns: dict[str, int], peaks: np.ndarray, budget: float) -> None:
    """Raise thresholds (in place) until at most `budget` of the negative clips' peaks reach any of them."""
    grid = list(THRESHOLD_GRID)
    while True:
        above = np.stack([peaks[:, columns[c]] >= thresholds[c] for c in thresholds], axis=1)
        if np.mean(above.any(axis=1)) <= budget:
            return
        counts = dict(zip(thresholds, above.sum(axis=0), strict=True))
        movable = [c for c in thresholds if counts[c] and thresholds[c] < grid[-1]]
        others = [c for c in movable if c not in ("stop", "too_much")]
        pick = others or movable
        if not pick:
            return
        command = max(pick, key=lambda c: counts[c])
        thresholds[command] = float(grid[min(len(grid) - 1, grid.index(thresholds[command]) + 1)])


def clip_outcome(model: SpotterModel, probs: np.ndarray, meta: dict[str, Any], word_end_s: float,
                 thresholds: dict[str, float], word_start_s: float = float("nan")) -> dict[str, Any]:  # fmt: skip
    """What the decision rule made of one clip."""
    return _outcome(detect(model, probs, thresholds=thresholds), meta, word_end_s, word_start_s)


def _outcome(found: list[Detection], meta: dict[str, Any], word_end_s: float,
             word_start_s: float = float("nan")) -> dict[str, Any]:  # fmt: skip
    """A clip's detections as a hit or miss (commands) or a count of false commands (negatives)."""
    if meta["label"] == NONE_LABEL:
        return {"false": len(found), "commands": [d.command for d in found]}
    earliest = word_end_s + HIT_WINDOW_S[0]
    if not np.isnan(word_start_s):
        earliest = min(earliest, word_start_s)
    near = [d for d in found if earliest <= d.end_s <= word_end_s + HIT_WINDOW_S[1]]
    hit = bool(near) and near[0].command == meta["label"]
    return {"hit": hit, "heard": near[0].command if near else None,
            "latency_frames": round((near[0].end_s - word_end_s) / FRAME_S) if hit else None}  # fmt: skip


def _condition(meta: dict[str, Any], strength: str | None) -> str:
    if meta.get("echo_db") is not None:
        snr = f", SNR {meta['snr_db']:g} dB" if meta.get("snr_db") is not None else ""
        return f"echo {meta['echo_db']:+g} dB{snr}"
    return "quiet" if strength in (None, "none") else "augmented"


def figures(model: SpotterModel, probabilities: dict[int, np.ndarray], features: Features,
            jobs: list[dict[str, Any]], thresholds: dict[str, float],
            safety: tuple[SpotterModel, dict[int, np.ndarray]] | None = None) -> dict[str, Any]:  # fmt: skip
    """Recall per command and condition, false commands per clip and per hour, per split and source.

    safety: a second stop/too-much head and its probabilities, decided beside the main head as the streaming
    spotter does (model.detect_fused; the main head at its own thresholds)."""
    recall: dict[tuple[str, str, str, str], list[bool]] = defaultdict(list)
    heard_as: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    false_clips: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    hours: dict[tuple[str, str, str], float] = defaultdict(float)
    false_words: dict[str, int] = defaultdict(int)
    latencies: list[int] = []
    safety_latencies: list[int] = []
    for i, probs in probabilities.items():
        meta, job = features.meta[i], jobs[i]
        if safety is None:
            outcome = clip_outcome(model, probs, meta, float(features.word_end_s[i]), thresholds,
                                   float(features.word_start_s[i]))  # fmt: skip
        else:
            main = dataclasses.replace(model, thresholds=dict(thresholds))
            found = detect_fused(main, probs, safety[0], safety[1][i])
            outcome = _outcome(found, meta, float(features.word_end_s[i]), float(features.word_start_s[i]))
        condition = _condition(meta, job.get("strength"))
        if meta["label"] == NONE_LABEL:
            key = (meta["split"], meta["tag"], condition)
            false_clips[key].append(outcome["false"])
            hours[key] += len(probs) * FRAME_S / 3600
            for command in outcome["commands"]:
                false_words[f"{job.get('text', job.get('path', ''))[-40:]} -> {command}"] += 1
        else:
            recall[(meta["split"], meta["tag"], meta["label"], condition)].append(outcome["hit"])
            if not outcome["hit"]:
                heard_as[(meta["split"], meta["label"])][str(outcome["heard"])] += 1
                continue
            if condition == "quiet":
                latencies.append(outcome["latency_frames"])
            if meta["label"] in SAFETY_COMMANDS:
                safety_latencies.append(outcome["latency_frames"])
    return {
        "recall": [{"split": s, "source": t, "command": c, "condition": k, "clips": len(v), "heard": int(sum(v)),
                    "recall": float(np.mean(v))} for (s, t, c, k), v in sorted(recall.items())],  # fmt: skip
        "false": [{"split": s, "source": t, "condition": k, "clips": len(v),
                   "clips_firing": int(np.sum(np.array(v) > 0)),
                   "false_commands": int(sum(v)), "hours": hours[(s, t, k)],
                   "per_hour": float(sum(v) / hours[(s, t, k)]) if hours[(s, t, k)] else 0.0}
                  for (s, t, k), v in sorted(false_clips.items())],  # fmt: skip
        "misses": {f"{s}:{c}": dict(v) for (s, c), v in heard_as.items()},
        "false_examples": dict(sorted(false_words.items(), key=lambda kv: -kv[1])[:30]),
        "latency_frames_quiet": {"median": float(np.median(latencies)) if latencies else None,
                                 "p95": float(np.percentile(latencies, 95)) if latencies else None},  # fmt: skip
        "latency_frames_safety": {"mean": float(np.mean(safety_latencies)) if safety_latencies else None,
                                  "heard": len(safety_latencies)},  # fmt: skip
    }


def with_rule(model: SpotterModel, thresholds: dict[str, float], frames: int | dict[str, int]) -> SpotterModel:
    """The model with these thresholds and consecutive-frame rule (one count, or one per command)."""
    if isinstance(frames, int):
        return dataclasses.replace(model, thresholds=dict(thresholds), consecutive_frames=frames, command_frames={})
    common = max(set(frames.values()), key=list(frames.values()).count)
    return dataclasses.replace(model, thresholds=dict(thresholds), consecutive_frames=common,
                               command_frames={c: n for c, n in frames.items() if n != common})  # fmt: skip


def command_recall(figs: dict[str, Any], split: str = "val") -> dict[str, float]:
    """Mean recall of each command over its rows (sources and conditions) in one split."""
    rows: dict[str, list[float]] = defaultdict(list)
    for r in figs["recall"]:
        if r["split"] == split:
            rows[r["command"]].append(r["recall"])
    return {command: float(np.mean(v)) for command, v in rows.items()}


SAFETY_MAX_FRAMES = 2
"""Longest frames-in-a-row rule for stop and too_much: each frame is 80 ms more between the word's end and the
narrator's silence, and the latency target (p95 under 200 ms) leaves room for two."""


def per_command_rule(recalls: dict[int, dict[str, float]], commands: tuple[str, ...],
                     tolerance: float = 0.002) -> dict[str, int]:  # fmt: skip
    """Per command, the frames-in-a-row count (of those tried) with the best validation recall; the shorter rule
    (sooner to fire) unless a longer one beats it by more than `tolerance`; at most SAFETY_MAX_FRAMES for the
    safety commands."""
    chosen = {}
    for command in commands:
        best = None
        for frames in sorted(f for f in recalls if command not in SAFETY_COMMANDS or f <= SAFETY_MAX_FRAMES):
            recall = recalls[frames].get(command)
            if recall is not None and (best is None or recall > best[0] + tolerance):
                best = (recall, frames)
        chosen[command] = best[1] if best else min(recalls)
    return chosen


def headline(figs: dict[str, Any]) -> list[str]:
    """The figures the shipping rule looks at, one line each: safety recall on held-out people, false commands."""
    lines = []
    for r in figs["recall"]:
        pooled_tts = r["source"] == "tts_cmd" and r["split"] == "test" and r["condition"] == "quiet"
        if (r["source"] == "human_cmd" and r["split"] == "val") or pooled_tts:
            lines.append(f"recall {r['split']} {r['source']} {r['command']} {r['condition']}: "
                         f"{r['heard']}/{r['clips']} = {100 * r['recall']:.1f}%")  # fmt: skip
    for command in ("stop", "too_much"):
        rows = [r for r in figs["recall"] if r["split"] == "val" and r["source"] == "tts_cmd"
                and r["command"] == command]  # fmt: skip
        heard, clips = sum(r["heard"] for r in rows), sum(r["clips"] for r in rows)
        if clips:
            lines.append(f"recall val tts_cmd {command} all conditions: {heard}/{clips} = {100 * heard / clips:.1f}%")
    latency = figs.get("latency_frames_safety", {})
    if latency.get("mean") is not None:
        lines.append(f"latency of stop and too much heard (every split and condition, {latency['heard']} clips): "
                     f"mean {latency['mean']:.2f} frames of 80 ms from the phrase's end")  # fmt: skip
    for r in figs["false"]:
        lines.append(f"false {r['split']} {r['source']} {r['condition']}: {r['clips_firing']}/{r['clips']} clips = "
                     f"{100 * r['clips_firing'] / max(1, r['clips']):.2f}%, {r['false_commands']} commands, "
                     f"{r['per_hour']:.1f}/h")  # fmt: skip
    return lines


def paired(alone: dict[str, Any], fused: dict[str, Any]) -> tuple[list[tuple], list[tuple]]:
    """The rows of two figure sets of the same clips side by side: (key, alone row, fused row) for the safety
    commands' recall and every other recall that changed, then for every false-command row."""
    blank = {"heard": 0, "clips": 0, "clips_firing": 0, "false_commands": 0}
    before = {(r["split"], r["source"], r["command"], r["condition"]): r for r in alone["recall"]}
    recall = [(key, before.get(key, blank), r) for r in fused["recall"]
              for key in [(r["split"], r["source"], r["command"], r["condition"])]
              if r["command"] in SAFETY_COMMANDS or before.get(key, blank)["heard"] != r["heard"]]  # fmt: skip
    false_before = {(r["split"], r["source"], r["condition"]): r for r in alone["false"]}
    false = [(key, false_before.get(key, blank), r) for r in fused["false"]
             for key in [(r["split"], r["source"], r["condition"])]]  # fmt: skip
    return recall, false


def compare_lines(alone: dict[str, Any], fused: dict[str, Any]) -> list[str]:
    """Safety recall and false commands, main head alone against with the safety head, one line each."""
    recall, false = paired(alone, fused)
    lines = [f"recall {' '.join(key)}: {old['heard']}/{new['clips']} -> {new['heard']}/{new['clips']}"
             for key, old, new in recall]  # fmt: skip
    lines += [f"false {' '.join(key)}: clips firing {old['clips_firing']} -> {new['clips_firing']} of "
              f"{new['clips']}, commands {old['false_commands']} -> {new['false_commands']}"
              for key, old, new in false]  # fmt: skip
    return lines
