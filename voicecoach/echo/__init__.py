"""Echo cancellation: the narrator's own playback taken out of the microphone signal."""
