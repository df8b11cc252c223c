"""Errors in what a user gave (a config value, a file, a checkpoint): the message names it and the fix.

Entry points print such an error as one line and exit non-zero; anything else is a bug and keeps its
traceback. They subclass the built-in errors they stand for, so `except ValueError` still catches them.
No heavy imports here: the data pipeline's worker processes import this module too.
"""

import contextlib
import functools
import os
import sys


class UserError(ValueError):
    """A bad value or file given by the user; the message says what is wrong and what to do."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist (or is not the kind of path expected)."""


class ConfigError(UserError):
    """A bad setting: `key=value: must be <what is allowed>`.

    Code that knows where the setting sits in the config puts the path in front of the key with
    `config_key` (a constructor raises `lr=-1`, the entry point reports `model.lr=-1`).
    """

    def __init__(self, key: str, value, allowed: str):
        super().__init__(f"{key}={value!r}: must be {allowed}")
        self.key, self.value, self.allowed = key, value, allowed

    def under(self, prefix: str, sep: str = ".") -> "ConfigError":
        return type(self)(f"{prefix}{sep}{self.key}", self.value, self.allowed)


class MissingPathError(ConfigError, MissingFileError):
    """A setting names a file or folder that does not exist."""


@contextlib.contextmanager
def config_key(prefix: str, sep: str = "."):
    """Report a ConfigError raised inside as one of the settings under `prefix` (`model` + `lr=-1`)."""
    try:
        yield
    except ConfigError as err:
        raise err.under(prefix, sep) from err


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
