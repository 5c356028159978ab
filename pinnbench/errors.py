"""The one exception type for bad user input: the CLI prints its message on one line and exits 2."""


class PinnbenchError(Exception):
    """Bad input: an unknown name, a malformed budget or protocol, a plugin that fails to import."""
