"""What every entry point's command line shares, so each behaves the same way when a user gets something wrong.

- ``OneLineArgumentParser``: a bad flag is one ``error:`` line ending "(see PROG --help)" and exit status 2, not a
  usage dump; it records which flags the command line actually gave (``given_flags``), so a saved configuration
  (``run_main.py --config``) is overridden only by those; a flag spelled two ways (``--batch_size``,
  ``--batch-size``) is one flag, so an abbreviation of both is not "ambiguous".
- ``run_cli``: runs an entry point's body: a ``LLMTimeError`` is one line and status 2, Ctrl-C prints what survives
  and returns 130; the warnings set-up (``setup_warnings``) happens first.
- ``parse_bool`` / ``split_list`` / ``seed_list``: the 0/1, comma-list and ``--seeds`` values the scripts pass.
- ``HelpFormatter``: each flag's default shown once, booleans as 0/1, the hyphenated twin of a flag left out.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable, Optional

from utils.errors import INTERRUPTED_EXIT, USER_ERROR_EXIT, LLMTimeError

_GIVEN = "_given_flags"  # namespace attribute: the dests set from the command line


def spellings(name: str, *aliases: str) -> list[str]:
    """The option strings of flag ``name``: Time-LLM's underscore spelling first, its hyphenated twin, then the
    other spellings in use (``aliases``, without dashes)."""
    names = [name, name.replace("_", "-"), *aliases]
    return [f"--{n}" for n in dict.fromkeys(names)]


def parse_bool(text: str) -> bool:
    """1/0, true/false, yes/no (any case): how Time-LLM's scripts pass switches (``--use_prompt 0``)."""
    if str(text).lower() in ("1", "true", "yes"):
        return True
    if str(text).lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0/1, got {text!r}")


def split_list(text: str, unique: bool = False) -> list[str]:
    """Comma-separated items, stripped, empty ones dropped (and repeats, with ``unique``)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    return list(dict.fromkeys(items)) if unique else items


def seed_list(text: str) -> list[int]:
    """``--seeds``: comma-separated integers, in the order given, repeats dropped; a one-line error otherwise."""
    try:
        seeds = [int(s) for s in split_list(text, unique=True)]
    except ValueError:
        raise LLMTimeError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise LLMTimeError("--seeds is empty: give at least one seed")
    return list(dict.fromkeys(seeds))


def given_flags(ns: argparse.Namespace) -> frozenset[str]:
    """The dests the command line set (not defaults) in a namespace parsed by ``OneLineArgumentParser``."""
    return frozenset(getattr(ns, _GIVEN, ()))


def _recording(base: type[argparse.Action]) -> type[argparse.Action]:
    """``base`` that also notes its dest in the namespace as given."""

    class Recording(base):  # type: ignore[valid-type, misc]
        def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
            super().__call__(parser, namespace, values, option_string)
            setattr(namespace, _GIVEN, given_flags(namespace) | {self.dest})

    Recording.__name__ = f"Recording{base.__name__}"
    return Recording


_RECORDED_ACTIONS = {
    None: argparse._StoreAction, "store": argparse._StoreAction, "store_const": argparse._StoreConstAction,
    "store_true": argparse._StoreTrueAction, "store_false": argparse._StoreFalseAction,
    "append": argparse._AppendAction, "extend": argparse._ExtendAction,
}


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose bad-flag reports are a ``LLMTimeError`` (one line, exit 2 through ``run_cli``) pointing at the
    command's --help, and which records the flags given (``given_flags``)."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, exit_on_error=False, **kwargs)
        for name, action in _RECORDED_ACTIONS.items():  # argument groups share the parser's registry
            self.register("action", name, _recording(action))

    def parse_known_args(self, args=None, namespace=None):  # noqa: ANN001, ANN201
        try:
            return super().parse_known_args(args, namespace)
        except argparse.ArgumentError as e:  # named by its first spelling, not "--seq_len/--seq-len"
            name = (e.argument_name or "").split("/")[0]
            self.error(f"argument {name}: {e.message}" if name else e.message)

    def error(self, message: str) -> None:  # noqa: D401
        raise LLMTimeError(f"{message} (see {self.prog} --help)")

    def _get_option_tuples(self, option_string: str) -> list:
        # an abbreviation matching both spellings of one flag names that flag, not two
        return list({id(found[0]): found for found in super()._get_option_tuples(option_string)}.values())


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default once (not where its help already says it, nor for None: unset, the help explains),
    booleans as 0/1, and each flag by its underscore spelling (the hyphenated twin works too)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        if "default" in (action.help or "") or action.default is None:
            return action.help
        if isinstance(action.default, bool) and action.option_strings and action.nargs == "?":
            return f"{action.help} (default: {int(action.default)})"
        return super()._get_help_string(action)

    def _format_action_invocation(self, action: argparse.Action) -> str:
        strings = action.option_strings
        if len(strings) > 1:
            twin = strings[0].replace("_", "-")
            shown = [s for s in strings if s == strings[0] or s != twin]
            action = argparse.Action(shown, action.dest, nargs=action.nargs, metavar=action.metavar,
                                     choices=action.choices)
        return super()._format_action_invocation(action)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Warnings (rejected readings, ignored flags) read as one line each, like errors."""
    return f"warning: {message}\n"


def setup_warnings() -> None:
    """One-line warnings, and silence for setuptools' pkg_resources notice that DeepSpeed's import triggers."""
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
    warnings.formatwarning = _one_line_warning


def run_cli(body: Callable[[], int], interrupted: str) -> int:
    """Run an entry point's ``body`` after ``setup_warnings``; a user error becomes one ``error:`` line on stderr and
    status 2, Ctrl-C the ``interrupted`` line (what survives and how to continue) and status 130. Other exceptions
    are bugs and propagate."""
    setup_warnings()
    try:
        return body()
    except LLMTimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return INTERRUPTED_EXIT
