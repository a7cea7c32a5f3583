"""Speech in: the recognizer protocol, the engines, the spotting rules, the own-voice filter and the one listening
pipeline."""
