"""One module per report section view; each takes a RunView and returns template data."""
