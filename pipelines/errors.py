"""Errors that mean "the user's input is wrong" and are reported as one line, not a traceback."""


class UserError(Exception):
    """A problem in what the user gave us (recipe, input files): report it in one line."""


class RecipeError(UserError):
    """The recipe file is missing, not YAML, or does not validate."""


class InputError(UserError):
    """An input file is missing, unreadable or corrupt."""


class StageError(Exception):
    """A stage broke one of its own contracts (for example kept + rejected != input)."""
