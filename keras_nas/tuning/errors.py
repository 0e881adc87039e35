"""Errors of the keras-tuner layer that the CLI reports; importable without keras-tuner."""


class StateFileError(RuntimeError):
    """A saved search file is unreadable or damaged; the message names the file and how to recover."""
