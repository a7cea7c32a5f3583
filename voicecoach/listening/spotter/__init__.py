"""Keyword spotter: openWakeWord front end and a small trained head over the command vocabulary."""

from voicecoach.listening.spotter.model import (
    SAMPLE_RATE,
    Detection,
    SpotterModel,
    SpotterModelError,
    StreamingSpotter,
    score_clip,
)

__all__ = ["SAMPLE_RATE", "Detection", "SpotterModel", "SpotterModelError", "StreamingSpotter", "score_clip"]
