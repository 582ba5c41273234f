"""How `legacy-share` reports a failure: one line on stderr (and JSON on stdout with --json),
usage errors that --json also prints as JSON, and a stdout whose reader went away.
"""

import argparse
import json
import os
import signal
import sys

from legacy_share import errors

__all__ = ["PROG", "UsageExit", "Parser", "fail", "print_json", "asks_json", "stdout_closed"]

PROG = "legacy-share"


class UsageExit(SystemExit):
    """A usage error (exit 2), after argparse printed its usage and message on stderr."""

    def __init__(self, message):
        super().__init__(2)
        self.message = message


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors raise UsageExit, so `main` can also print them as JSON."""

    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise UsageExit(f"{self.prog}: {message}")


def fail(exc, args, unexpected=False):
    """Prints `exc` as one line on stderr (with --json also as JSON on stdout) -> exit code 1."""
    if getattr(args, "debug", False):
        import traceback  # pylint: disable=import-outside-toplevel
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = errors.first_line(exc)
    if isinstance(exc, OSError) and exc.filename and exc.filename not in message:
        message = f"{exc.filename}: {message}"
    if unexpected:
        message = (f"unexpected {type(exc).__name__}{_raised_in(exc)}: {message} (an input "
                   f"legacy_share does not check yet, or a bug: rerun with --debug and report "
                   f"the traceback)")
    written = getattr(args, "written", None)
    if written:  # the command had finished writing: what failed is printing what it did
        if isinstance(exc, OSError):
            message = f"cannot print to stdout: {exc.strerror or message}"
        message += f"; {written} had been written in full and is complete"
    elif getattr(args, "json", False) and not getattr(args, "json_printed", False):
        file = (getattr(exc, "file", None) or getattr(exc, "filename", None)
                or getattr(args, "src", None) or getattr(args, "ckpt", None))
        print_json(message, file, getattr(exc, "tensor", None))
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _raised_in(exc):
    """" in keras" / " in numpy" ...: the top-level package of the innermost frame of `exc`."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return f" in {module.split('.')[0]}" if module else ""


def print_json(message, file, tensor):
    """{"error", "file", "tensor"} on stdout; nothing if stdout itself is what fails."""
    try:
        print(json.dumps({"error": message, "file": file, "tensor": tensor}, sort_keys=True))
        sys.stdout.flush()
    except (OSError, ValueError):
        pass


def asks_json(argv):
    """True when the command line has --json (or an abbreviation argparse accepts), before --."""
    for token in argv:
        if token == "--":
            return False
        if len(token) > 3 and "--json".startswith(str(token)):
            return True
    return False


def stdout_closed(args):
    """stdout's reader went away (`legacy-share inspect ... | head -1`) -> 141.

    Quiet, as `cat` or `grep` are: the default SIGPIPE action ends them without a word and the
    shell sees 128 + SIGPIPE = 141 (the status `set -o pipefail` scripts already expect from
    a pipe's writer). Python ignores SIGPIPE and raises BrokenPipeError instead; this returns
    the same status and points stdout at /dev/null, so the exit's flush does not fail again.
    Only what was written to a file is mentioned: that it is complete.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # no file descriptor (an embedding program's stdout)
        pass
    written = getattr(args, "written", None)
    if written:
        print(f"{PROG}: stdout was closed; {written} had been written in full and is complete.",
              file=sys.stderr)
    return 128 + signal.SIGPIPE
