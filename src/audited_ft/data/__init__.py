"""Data stage: records from files or the hub, cleaned and split into the run folder."""
