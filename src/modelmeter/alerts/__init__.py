"""Alert rules over the rollups, their state (pending → firing → resolved) and webhook notifications."""
