"""Background jobs for rotation and expiry (called by keys.tasks). To be completed."""
