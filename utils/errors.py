"""The one exception type for errors a user can cause (paths, formats, names, shapes, flag combinations).

Entry points catch it (``utils.cli.run_cli``), print its message as one line on stderr and exit with status 2, so a
researcher sees what to fix instead of a traceback. Code raises it only where the fix is on the user's side; bugs
stay ordinary exceptions.
"""


class LLMTimeError(Exception):
    """A user-fixable problem; the message says what is wrong and what to do."""


USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130  # the shell's status for a process stopped by Ctrl-C (128 + SIGINT)
