"""Byte-exact helpers for what Go programs put on the wire.

- ``go_json``: JSON as Go's ``encoding/json`` writes it (compact; ``<``, ``>``, ``&``
  escaped when ``escape_html``; U+2028/U+2029 always escaped; non-ASCII kept as UTF-8).
- ``encode_query``: Go's ``url.Values.Encode`` (keys sorted, ``+`` for spaces).
- ``encode_filters``: docker's filter JSON (``{"name":{"x":true}}``), keys sorted.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # not typing's: the CLI's start-up path imports this module
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any, TypeAlias

__all__ = [
    "encode_filters",
    "encode_query",
    "go_json",
    "parse_filter_args",
    "quote",
    "quote_plus",
]

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def go_json(
    value: Any,
    *,
    escape_html: bool = True,
    sort_keys: bool = False,
    indent: str | None = None,
) -> str:
    """Serialise like Go's ``json.Marshal`` (or ``MarshalIndent`` with ``indent``)."""
    text = json.dumps(
        value,
        ensure_ascii=False,
        sort_keys=sort_keys,
        separators=(",", ":") if indent is None else (",", ": "),
        indent=indent,
    )
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    if escape_html and any(c in text for c in "<>&"):
        text = _escape_html_in_strings(text)
    return text


def _escape_html_in_strings(text: str) -> str:
    # json.dumps only emits <, > and & inside string literals, so a plain replace is safe.
    for raw, escaped in _HTML_ESCAPES.items():
        text = text.replace(raw, escaped)
    return text


if TYPE_CHECKING:
    QueryValue: TypeAlias = str | int | bool | Sequence[str] | None

# RFC 3986 unreserved characters: never percent-encoded (as urllib.parse.quote).
_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "/") -> str:
    """``urllib.parse.quote`` (UTF-8, ``%XX`` upper case) without importing urllib."""
    keep = _ALWAYS_SAFE.union(safe.encode("ascii"))
    data = text.encode("utf-8")
    if all(b in keep for b in data):
        return text
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in data)


def quote_plus(text: str, safe: str = "") -> str:
    """``urllib.parse.quote_plus``: like ``quote`` with spaces as ``+``."""
    if " " in text:
        return quote(text, safe + " ").replace(" ", "+")
    return quote(text, safe)


def encode_query(params: Mapping[str, QueryValue]) -> str:
    """Encode like Go's ``url.Values``: sorted keys, ``True`` → ``1``, ``None``/``False`` dropped.

    A sequence value repeats the key (``names=a&names=b``).
    """
    parts: list[str] = []
    for key in sorted(params):
        value = params[key]
        if value is None or value is False:
            continue
        if value is True:
            values: Iterable[str] = ["1"]
        elif isinstance(value, int):
            values = [str(value)]
        elif isinstance(value, str):
            values = [value]
        else:
            values = list(value)
        for item in values:
            parts.append(f"{quote_plus(key, safe='')}={quote_plus(item, safe='')}")
    return "&".join(parts)


def encode_filters(filters: Mapping[str, Iterable[str]]) -> str:
    """Docker's filter map: ``{"label":{"a=b":true},"name":{"x":true}}`` (keys sorted)."""
    body = {key: {value: True for value in sorted(set(values))} for key, values in filters.items()}
    return go_json(body, sort_keys=True)


def parse_filter_args(args: Iterable[str]) -> dict[str, list[str]]:
    """``["name=x", "label=a=b"]`` → ``{"name": ["x"], "label": ["a=b"]}``.

    Raises ``ValueError`` with docker's wording for an argument without ``=``.
    """
    out: dict[str, list[str]] = {}
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ValueError("bad format of filter (expected name=value)")
        out.setdefault(key.strip().lower(), []).append(value.strip())
    return out
