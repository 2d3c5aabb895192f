"""What every ``manage.py`` command of ours shares (``apikey``, ``runjob``, ``audit``,
``unlock_login``, ``seed_demo``): errors are one line on stderr and a non-zero exit, never a
usage block or a traceback, and standard output that fails is handled, not crashed on.

- ``OneLineParser``: argparse prints the whole usage before an argument error (5-10 lines);
  ours prints ``prog: error: MESSAGE (see prog --help)`` and exits 2. ``--help`` is unchanged.
- ``Command`` writes stdout through ``Output``: a write that fails (a full disk, a closed
  stdout, a reader that went away) raises ``StdoutError``. A reader that stopped early
  (``| head``) ends the command quietly with the status of a command stopped by SIGPIPE (141);
  any other failure is one line and exit 1.
- ``Command.deliver``: a secret is printed inside the transaction that creates it and flushed
  there, so a key nobody received is rolled back instead of left active with its value lost.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

SIGPIPE_STATUS = 128 + 13  # what a shell reports for a command stopped by SIGPIPE
_NEEDS_VALUE = re.compile(r"^argument (-\S+?)(?:/\S+)?: expected one argument$")


def one_line(message: str) -> str:
    """A message as one printable line (values echoed in it may hold newlines)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class OneLineParser(CommandParser):
    """An argument error as one line naming --help (exit 2); from ``call_command``, as
    Django's parser does, a CommandError."""

    def error(self, message: str) -> NoReturn:
        option = _NEEDS_VALUE.match(message)
        if option:  # argparse takes "-5d" or "-inf" for an option, not a value
            message += f"; a value starting with '-' is written {option.group(1)}=VALUE"
        message = one_line(message)
        if not self.called_from_command_line:
            raise CommandError(f"Error: {message}")
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line_parsers(parser: CommandParser) -> None:
    """Make ``parser`` and every subparser under it a OneLineParser. Django builds the parser
    (and ``add_subparsers`` its children) from a fixed class; ours only replaces ``error``."""
    parser.__class__ = OneLineParser
    for action in parser._subparsers._group_actions if parser._subparsers else ():
        for child in getattr(action, "choices", {}).values():
            _one_line_parsers(child)


class StdoutError(Exception):
    """Standard output could not be written; ``broken_pipe``: its reader went away."""

    def __init__(self, reason: str, broken_pipe: bool = False) -> None:
        super().__init__(reason)
        self.broken_pipe = broken_pipe


def _silence(stream: Any) -> None:
    """Point a failed stdout at /dev/null, so the interpreter's last flush of what is still
    buffered there cannot fail again (and print "Exception ignored ... BrokenPipeError")."""
    with contextlib.suppress(AttributeError, OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class Output(OutputWrapper):
    """Django's stdout wrapper, whose failures are a StdoutError (once failed, silenced)."""

    def _guarded(self, do: Any) -> None:
        if self._out is None:  # started with stdout closed (`>&-`): Python has no sys.stdout
            raise StdoutError("standard output is closed")
        try:
            do()
        except BrokenPipeError:
            _silence(self._out)
            raise StdoutError("broken pipe: its reader has gone", broken_pipe=True) from None
        except (OSError, ValueError) as exc:
            _silence(self._out)
            reason = os.strerror(exc.errno) if getattr(exc, "errno", None) else str(exc)
            raise StdoutError(reason) from None

    def write(self, msg: str = "", style_func: Any = None, ending: str | None = None) -> None:
        self._guarded(lambda: OutputWrapper.write(self, msg, style_func, ending))

    def flush(self) -> None:
        if self._out is not None and hasattr(self._out, "flush"):
            self._guarded(self._out.flush)


class Command(BaseCommand):
    """The base of our management commands (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stdout = Output(self.stdout._out)

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        _one_line_parsers(parser)
        return parser

    def execute(self, *args: Any, **options: Any) -> Any:
        if options.get("stdout"):  # call_command(..., stdout=...): guarded the same way
            self.stdout = Output(options.pop("stdout"))
        return super().execute(*args, **options)

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
            self.stdout.flush()  # what is still buffered fails here, not at interpreter exit
        except StdoutError as exc:
            if exc.broken_pipe:
                sys.exit(SIGPIPE_STATUS)
            self.stderr.write(f"CommandError: Could not write to standard output: {exc}.")
            sys.exit(1)
        except SystemExit:
            # An error already reported (one line): output still buffered for a reader that
            # has gone must not add a second report when the interpreter flushes it at exit.
            with contextlib.suppress(StdoutError):
                self.stdout.flush()
            raise

    def deliver(self, secret: str, *, undone: str) -> None:
        """Print ``secret`` (inside the transaction that made it) and make sure it left the
        process; if it cannot, raise, so the transaction rolls back: ``undone`` says what."""
        try:
            self.stdout.write(secret)
            self.stdout.flush()
        except StdoutError as exc:
            raise CommandError(
                f"Could not write the key to standard output ({exc}); {undone}."
            ) from None
