"""Files a person writes: config, routine files and the routine library, their problems and checks."""
