"""Hardware probe, memory estimate, and fit verdicts for models not loaded yet."""
