"""The routine's pure logic: events and actions, the routine model, the plan, the session, the command vocabulary,
progression. No I/O."""
