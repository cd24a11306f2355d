"""Where a command's output goes, and how an error is shown (text, or one JSON document)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from autoops.cli import render
from autoops.errors import AutoopsError
from autoops.exits import ExitStatus

if TYPE_CHECKING:
    from autoops.engine import Autoops


class Output:
    """Where a command's output goes: text lines, or one JSON document at the end."""

    def __init__(self, json_mode: bool, out: TextIO, err: TextIO) -> None:
        self.json_mode, self.out, self.err = json_mode, out, err

    def text(self, text: str) -> None:
        """Print rendered text; any control character left in it is shown, not obeyed."""
        if not self.json_mode:
            self.out.write(render.terminal_text(text) + "\n")
            self.out.flush()

    def document(self, doc: Any) -> None:
        if self.json_mode:
            self.out.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")

    def progress(self, line: str) -> None:
        """A progress line: with --json it goes to stderr, so stdout stays one document."""
        if self.json_mode:
            self.err.write(render.terminal_text(line) + "\n")
        else:
            self.text(line)


def report_error(exc: AutoopsError, output: Output) -> ExitStatus:
    if output.json_mode:
        output.document({"error": exc.to_dict(), **exc.details})
    else:
        output.err.write(render.terminal_text(render.error_text(exc)) + "\n")
    return exc.status


Handler = Callable[["Autoops", argparse.Namespace, Output, TextIO], ExitStatus]
"""A command: the library, its parsed arguments, where output goes, and stdin."""
