"""What every layer of reactor shares: the event model, settings, the Temporal connection."""
