"""The run folder: writing it (folder), reading it (view), naming its numbers (keys), provenance."""
