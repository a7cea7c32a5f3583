"""Test helpers: fixtures' parts, synthetic speech, the virtual audio server, session drivers."""
