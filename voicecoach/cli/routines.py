"""The commands about routine files: list, show, check."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from voicecoach.cli.text import plural
from voicecoach.core.plan import build_plan, exercise_estimate_s, segment_estimate_s
from voicecoach.core.routine import Routine
from voicecoach.files.config import ConfigError
from voicecoach.files.library import find_routine, list_routines, routine_files
from voicecoach.files.routine_check import Finding, Level, check_routine
from voicecoach.files.routine_file import RoutineFileError, load_routine_file
from voicecoach.settings import AppSettings

_EXIT_USER_ERROR = 2
_EXIT_STRICT_WARNINGS = 1


def cmd_list(args: argparse.Namespace, settings: AppSettings) -> int:
    """Print every routine with where it comes from."""
    refs = list_routines()
    if not refs:
        print("No routines found.")
        return 0
    width = max(len(ref.name) for ref in refs)
    for ref in refs:
        origin = "built-in" if ref.builtin else "user"
        try:
            routine = load_routine_file(ref.path)
        except RoutineFileError as exc:
            summary = f"INVALID ({plural(len(exc.problems), 'problem')}; run: voicecoach check {ref.path})"
        else:
            summary = f"{routine.title} ({plural(len(routine.exercises), 'exercise')}, {_minutes(routine)})"
        print(f"{ref.name:<{width}}  {origin:<8}  {summary}")
    return 0


def cmd_show(args: argparse.Namespace, settings: AppSettings) -> int:
    """Print a routine's exercises with hold, reps, sides, rest and estimated time."""
    routine = load_routine_file(find_routine(args.routine))
    print(f"{routine.name}: {routine.title}")
    if routine.description:
        print(routine.description)
    print()
    plan = build_plan(routine)
    header = f"{'#':>2}  {'exercise':<40} {'equipment':<22} {'hold':>6} {'reps':>4} {'sides':<5} {'rest':>5}"
    header += f" {'time':>6}"
    print(header)
    print("-" * len(header))
    for index, ex in enumerate(routine.exercises):
        print(
            f"{index + 1:>2}  {ex.name:<40.40} {', '.join(ex.equipment) or '-':<22.22} {ex.hold_s:>5g}s"
            f" {ex.reps:>4} {ex.sides.value:<5} {ex.rest_s:>4g}s {_clock(exercise_estimate_s(plan, index)):>6}"
        )
    print("-" * len(header))
    print(f"Total: {plural(len(routine.exercises), 'exercise')}, {_minutes(routine)}")
    return 0


def cmd_check(args: argparse.Namespace, settings: AppSettings) -> int:
    """Validate each routine; print problems, warnings and notes one per line.

    Exit 2 if any routine has problems, else 1 if --strict and any has warnings, else 0.
    """
    failed = warned = False
    for name_or_path in args.routines:
        try:
            paths = routine_files(name_or_path)
        except RoutineFileError as exc:
            failed = print_problems(exc)
            continue
        for path in paths:
            try:
                routine, findings = check_routine(path)
            except RoutineFileError as exc:
                failed = print_problems(exc)
                continue
            for finding in findings:
                print(finding, file=sys.stderr)
            warned = warned or any(finding.level is Level.WARNING for finding in findings)
            exercises = plural(len(routine.exercises), "exercise")
            print(f"{path}: ok ({exercises}, {_minutes(routine)}{_finding_counts(findings)})")
    if failed:
        return _EXIT_USER_ERROR
    return _EXIT_STRICT_WARNINGS if warned and args.strict else 0


def print_problems(exc: RoutineFileError | ConfigError) -> bool:
    """Print each problem on its own line on stderr; True (something failed)."""
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    return True


def _finding_counts(findings: list[Finding]) -> str:
    counts = Counter(finding.level for finding in findings)
    parts = [plural(counts[level], level.value) for level in Level if counts[level]]
    return f"; {', '.join(parts)}" if parts else ""


def _minutes(routine: Routine) -> str:
    total_s = sum(segment_estimate_s(s) for s in build_plan(routine))
    return f"about {max(1, round(total_s / 60))} min"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}:{rest:02d}"
