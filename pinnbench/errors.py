"""The exceptions of bad user input: the CLI prints their message on one line and exits 2."""


class PinnbenchError(Exception):
    """Bad input: an unknown name, a malformed budget or protocol, a plugin that fails to import."""


class HyperparameterError(PinnbenchError, ValueError):
    """A hyperparameter an optimizer does not accept: an unknown name, a value of the wrong type (checked against
    the constructor's annotations) or one the constructor rejects. The one kind of error for bad hyperparameters."""
