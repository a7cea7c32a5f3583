"""Speech out: synthesis, the phrase cache, the narrator that plays and stops."""
