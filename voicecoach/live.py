"""Voice mode: the narrator and listener on real audio devices (wired up in the real-voice work)."""

from __future__ import annotations

import argparse

from voicecoach.commands import Vocabulary
from voicecoach.routine import Routine


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the commands that need audio devices."""


def run_live(routine: Routine, vocabulary: Vocabulary, args: argparse.Namespace) -> int:
    """Play a routine by voice."""
    from voicecoach.cli import UserError

    raise UserError("voice mode is not wired up yet in this build; use --simulate")
