"""voicecoach: a hands-free, voice-guided stretching routine player."""

__version__ = "0.1.0"
