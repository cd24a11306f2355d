"""Argument plumbing every command group shares: the raising parser, value types, options."""

from __future__ import annotations

import argparse
from typing import NoReturn

from autoops.errors import BadInputError


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors get our exit status."""

    def error(self, message: str) -> NoReturn:
        raise BadInputError(f"{self.prog}: {message}", remedy=f"Run `{self.prog} --help`.")


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 86400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 to 86400)")
    return value


def positive(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return int(text)


def actor_option() -> Parser:
    actor = Parser(add_help=False)
    actor.add_argument("--actor", help="who is acting (default: the OS user)")
    return actor


def reason_option() -> Parser:
    why = Parser(add_help=False)
    why.add_argument("--reason", required=True, help="why, for the audit log (one line)")
    return why
