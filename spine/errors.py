"""Exceptions with messages a user can act on: each names the file and what is wrong."""


class SpineError(Exception):
    """Base class of every error that ``spine`` raises on purpose."""


class DataError(SpineError, ValueError):
    """A data file or folder that cannot be used: corrupt, inconsistent or of the wrong layout."""

    def __init__(self, path, problem):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(SpineError, ValueError):
    """An unknown name or an invalid setting (the message lists the valid choices)."""
