"""Errors in what a user gave (a config value, a file, a checkpoint): the message names it and the fix.

Entry points print such an error as one line and exit non-zero; anything else is a bug and keeps its
traceback. They subclass the built-in errors they stand for, so `except ValueError` still catches them.
No heavy imports here: the data pipeline's worker processes import this module too.
"""

import functools
import os
import sys


class UserError(ValueError):
    """A bad value or file given by the user; the message says what is wrong and what to do."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (or is not the kind of path expected)."""


def exit_on_user_error(main):
    """Wrap an entry point's main: a UserError prints `error: <message>` on one line and exits 2.

    HYDRA_FULL_ERROR=1 lets it through with its traceback, as Hydra does for every other error; bugs
    (any other exception) always keep theirs.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except Exception as err:
            user_error = find_user_error(err)
            if user_error is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {user_error}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def find_user_error(err: BaseException | None) -> UserError | None:
    """The UserError behind `err`, also when a wrapper (Hydra's instantiate) re-raised it as another type."""
    while err is not None and not isinstance(err, UserError):
        err = err.__cause__
    return err
