"""Errors that mean "the user's input is wrong" and are reported as one line, not a traceback."""

import logging


class UserError(Exception):
    """A problem in what the user gave us (recipe, input files): report it in one line."""


class RecipeError(UserError):
    """The recipe file is missing, not YAML, or does not validate."""


class InputError(UserError):
    """An input file is missing, unreadable or corrupt."""


class EnvironmentProblem(UserError):
    """The machine cannot run the build as configured: a full or read-only disk, a workdir
    it may not write, a model file that is not there. Retrying cannot help."""


class StageError(Exception):
    """A stage broke one of its own contracts (for example kept + rejected != input)."""


class UserErrorTracebacks(logging.Filter):
    """For log records of a UserError: strip the traceback (the one-line message says it
    all), or drop the record (`drop`: the error is reported again where it is handled)."""

    def __init__(self, drop: bool = False):
        super().__init__()
        self.drop = drop

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], UserError):
            if self.drop:
                return False
            record.exc_info = None
            record.exc_text = None
        return True
