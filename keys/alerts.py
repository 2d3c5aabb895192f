"""Usage alerts (called by keys.tasks). To be completed."""
