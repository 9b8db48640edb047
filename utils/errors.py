"""The one exception type for errors a user can cause (paths, formats, names, shapes, flag combinations).

Entry points catch it, print its message as one line on stderr and exit with status 2, so a researcher sees what to
fix instead of a traceback. Code raises it only where the fix is on the user's side; bugs stay ordinary exceptions.
"""

import argparse
import sys
from typing import Callable


class LLMTimeError(Exception):
    """A user-fixable problem; the message says what is wrong and what to do."""


USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130  # the shell's status for a process stopped by Ctrl-C (128 + SIGINT)


def run_cli(body: Callable[[], int], interrupted: str) -> int:
    """Run an entry point's ``body``; a user error becomes one ``error:`` line on stderr and status 2, Ctrl-C the
    ``interrupted`` line (what survives and how to continue) and status 130. Other exceptions are bugs and propagate."""
    try:
        return body()
    except LLMTimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return INTERRUPTED_EXIT


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose bad-flag reports are a ``LLMTimeError`` (one line, exit 2 through ``run_cli``), not a usage
    dump; the message points at the command's --help."""

    def error(self, message: str) -> None:  # noqa: D401
        raise LLMTimeError(f"{message} (see {self.prog} --help)")

