"""The engine's own error: a line the lab cannot carry out."""


class LabError(Exception):
    """A line the lab cannot carry out (nothing was sent to any process)."""
