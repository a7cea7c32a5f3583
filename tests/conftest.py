"""Shared pytest fixtures."""

from __future__ import annotations

import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicecoach.audio.virtual_server import VirtualAudio, missing_tools


@pytest.fixture(scope="session")
def virtual_audio() -> Iterator[VirtualAudio]:
    """A private PulseAudio server with a virtual speaker and microphone, for the whole test session."""
    missing = missing_tools()
    if missing:
        pytest.skip(
            "pulseaudio not installed (apt-get install pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins):"
            f" missing {', '.join(missing)}"
        )
    if ctypes.util.find_library("portaudio") is None:
        pytest.skip("PortAudio not installed (apt-get install libportaudio2)")
    root = Path(tempfile.mkdtemp(prefix="vc-audio-"))  # short: the server's socket path must fit 108 bytes
    audio = VirtualAudio(root)
    audio.start()
    try:
        yield audio
    finally:
        audio.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI (CI=true) every component a test needs must exist: a skip there is a failure, not a pass."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() in ("1", "true", "yes") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every component must be installed: {reason}"


_KINDS = ("unit", "engine", "audio")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test is of one kind: `audio` if it uses the virtual audio server, else `engine` where its module says
    so (a real TTS engine, recognizer, canceller, spotter or a subprocess), else `unit` (pure, runs in seconds)."""
    for item in items:
        if "virtual_audio" in getattr(item, "fixturenames", ()):
            kind = "audio"
        elif item.get_closest_marker("engine") is not None:
            kind = "engine"
        else:
            kind = "unit"
        for other in _KINDS:
            if other not in (kind, "engine") and item.get_closest_marker(other) is not None:
                raise pytest.UsageError(f"{item.nodeid}: marked {other} but it is a {kind} test")
        item.add_marker(kind)
