"""Decisions: the router and one module per reaction. No I/O here; side effects are activities."""
