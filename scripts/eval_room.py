#!/usr/bin/env python3
"""Closed-loop barge-in and own-voice figures in the virtual living room: a front for eval_commands.py.

Held-out people of ../shared/data saying "stop" over the lower-back routine at --echo-db and --snr-db, "resume"
--auto-resume seconds after each stop; then the whole routine with nobody speaking (every command false).

    scripts/eval_room.py --engine auto --echo-db 0 --snr-db 20
is
    scripts/eval_commands.py --engine auto --conditions 0/20 --narration-echo 0 --narration-snr 20 --words stop --no-tts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_commands  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", default="auto", choices=("auto", "spotter", "pocketsphinx", "vosk"))
    parser.add_argument("--model", help="Vosk model folder")
    parser.add_argument("--echo-db", type=float, default=0.0)
    parser.add_argument("--snr-db", type=float, default=20.0)
    parser.add_argument("--stops", type=int, help="at most this many held-out stop clips (default all)")
    parser.add_argument("--auto-resume", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-own-voice", action="store_true", help="no narration-only pass")
    options, rest = parser.parse_known_args(argv)
    forwarded = ["--engine", options.engine, f"--conditions={options.echo_db:g}/{options.snr_db:g}",
                 f"--narration-echo={options.echo_db:g}", "--narration-snr", f"{options.snr_db:g}",
                 "--words", "stop", "--no-tts", "--auto-resume", f"{options.auto_resume:g}",
                 "--seed", str(options.seed)]  # fmt: skip
    forwarded += ["--model", options.model] if options.model else []
    forwarded += ["--per-command", str(options.stops)] if options.stops else []
    forwarded += ["--no-narration-pass"] if options.skip_own_voice else []
    return eval_commands.main(forwarded + rest)


if __name__ == "__main__":
    sys.exit(main())
