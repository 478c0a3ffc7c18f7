"""The one exception → exit-code table of every ``gvendi`` command, and how an error is printed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

__all__ = ["EXIT_CODES", "exit_code_of", "report_error"]

#: exit code by exception class (its module and name), the most specific class of an exception's MRO first; an
#: exception's own ``exit_code`` attribute wins. Anything else is a bug and keeps its traceback.
EXIT_CODES: dict[str, int] = {
    "builtins.KeyboardInterrupt": 130,  # Ctrl-C
    "builtins.BrokenPipeError": 141,  # the reader of stdout went away (`gvendi ... | head`): quiet, as 128 + SIGPIPE
    "gvendi.synthesis.backends.EndpointUnreachableError": 3,  # no server answers at the endpoint
    # user errors: bad flags, config, data, paths
    "builtins.ValueError": 2,
    "builtins.TypeError": 2,
    "builtins.FileNotFoundError": 2,
    "builtins.IsADirectoryError": 2,
    "builtins.NotADirectoryError": 2,
    # runtime failures: the work could not be done (Hub, endpoint, disk, memory, a missing optional package)
    "builtins.RuntimeError": 1,
    "builtins.OSError": 1,
    "builtins.ImportError": 1,
}


def exit_code_of(exc: BaseException) -> int | None:
    """The exit code of ``exc`` by :data:`EXIT_CODES` (or its ``exit_code``); ``None`` for a bug."""
    own = getattr(exc, "exit_code", None)
    if isinstance(own, int) and not isinstance(own, bool):
        return own
    for cls in type(exc).__mro__:
        code = EXIT_CODES.get(f"{cls.__module__}.{cls.__qualname__}")
        if code is not None:
            return code
    return None


def report_error(prog: str, exc: BaseException, args: argparse.Namespace | None = None) -> int | None:
    """Print ``exc`` as one ``{prog}: error: …`` line on stderr and return its exit code (``None``: not handled).

    A :class:`gvendi.config.ConfigFieldError` names its field as the flag (``--dim``) or, when the value came from
    ``--config FILE``, as the file's key; a command's ``scrub`` (``args.scrub``) cleans the text (tokens).
    """
    code = exit_code_of(exc)
    if code is None:
        return None
    if isinstance(exc, BrokenPipeError):
        _silence_stdout()
        return code
    if isinstance(exc, KeyboardInterrupt):
        hint: Callable | None = getattr(args, "interrupt_hint", None)
        print(f"{prog}: interrupted" + (f"; {hint(args)}" if hint else ""), file=sys.stderr)
        return code
    from .options import render_error

    text = render_error(exc, args)
    scrub: Callable[[str], str] | None = getattr(args, "scrub", None)
    if scrub is not None:
        text = scrub(text)
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit does not fail on the closed pipe again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor behind stdout (a test's capture)
        pass
