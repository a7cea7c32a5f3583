"""The audio boundary: devices, the speaker with its playback log, the microphone, WAV files."""
