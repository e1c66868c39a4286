"""What the command prints: its one-line messages on stderr, and its tables.

Every line of run data goes through ``printable`` (control characters and bidirectional
overrides escaped: run names, params and ids are other people's text) and every message through
``tracking.redact`` (credentials of URIs replaced by ``***``). ``MLFLOW_PLATEAU_DEBUG=1``
(``debug``) shows tracebacks instead of one line, still redacted (``redact_uncaught``). Tables are
drawn by rich, 140 columns wide when stdout is not a terminal.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def debug() -> bool:
    """``MLFLOW_PLATEAU_DEBUG`` is set: tracebacks instead of one-line messages."""
    return os.environ.get("MLFLOW_PLATEAU_DEBUG", "") not in ("", "0", "false", "False")


# Bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source").
_BIDI = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"}


def printable(text: str) -> str:
    """``text`` with control characters escaped: run names, params and ids are other people's
    text, and an escape sequence printed raw can rewrite the terminal (title, colours, lines)."""
    out = []
    for ch in str(text):
        if ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append(ch)
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def err(message: str) -> None:
    """``message`` as one line on stderr, prefixed, credentials redacted, control characters
    escaped."""
    from ..tracking import redact

    print(f"mlflow-plateau: {printable(redact(message))}", file=sys.stderr)  # ids come from users


def first_line(exc: BaseException) -> str:
    """The exception as the one line ``err`` prints (``tracking.one_line``)."""
    from ..tracking import one_line

    return one_line(exc)


def redact_uncaught() -> None:
    """In debug mode the exception propagates; if nothing catches it, Python prints its traceback.
    Make that traceback credential-free too (MLflow's messages carry the tracking URI)."""
    if sys.excepthook is not sys.__excepthook__:
        return  # someone else's hook (an IDE, a test runner): leave it alone

    def hook(kind, value, tb) -> None:
        import traceback

        from ..tracking import redact

        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))

    sys.excepthook = hook


@contextmanager
def notices_as_lines() -> Iterator[None]:
    """What the tracking layer did to read a store (``FileStoreNotice``) as one line of ours on
    stderr, not Python's two-line warning with a source line."""
    import warnings

    from ..tracking.file_store import FileStoreNotice

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, FileStoreNotice):
            err(str(message))
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", FileStoreNotice)
        warnings.showwarning = show
        yield


def fmt(value: Any, digits: int = 4) -> str:
    """A table cell: ``-`` for None, ``digits`` significant digits for a float."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def table_width() -> int | None:
    """The terminal's width; not a terminal: wide enough for 32-character run ids."""
    return None if sys.stdout.isatty() else 140


def print_table(title: str, header: Sequence[str], rows: list[list[str]]) -> None:
    """A table on stdout: the first column never wrapped, the first two left-aligned (the run and
    its verdict), the numbers right-aligned."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, name in enumerate(header):
        table.add_column(name, no_wrap=i == 0, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row, style=None)
    console = Console(width=table_width(), highlight=False)
    console.print(table)
