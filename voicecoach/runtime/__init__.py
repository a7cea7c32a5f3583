"""Running a routine: clock and event queue, the player, assembling the parts, serve, dry runs, the event log."""
