"""Small Go-isms shared by the formatters (kept apart so ``ps`` need not load the template
engine): the template error type, Go's "no value", and ``strconv.Quote``."""

from __future__ import annotations

from typing import Any

__all__ = ["MISSING", "TemplateError", "go_quote"]


class TemplateError(Exception):
    """A template that does not parse, or fails while executing (Go's wording)."""


class _Missing:
    """Go's invalid ``reflect.Value``: what a missing map key evaluates to."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``: double-quoted, Go escapes, printable runes kept."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code == 0xFFFD or ch.isprintable() or ch == " ":
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)
