"""Everything with a side effect, one module per outside system."""
