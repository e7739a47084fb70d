""".dockerignore: Docker's pattern rules (moby/patternmatcher). Pure.

- One pattern per line; blank lines and lines starting with ``#`` are ignored; each
  pattern is trimmed and cleaned like Go's ``filepath.Clean`` (a leading ``/`` dropped).
- ``*`` matches any run of non-``/`` characters, ``?`` one, ``[a-z]`` a class, ``**``
  any number of directories (also none), ``\\`` escapes.
- A pattern matching a directory excludes everything under it.
- ``!pattern`` re-includes; the LAST matching pattern decides.
- The Dockerfile and ``.dockerignore`` themselves are always sent (the CLI adds them back).
"""

from __future__ import annotations

import posixpath
import re

__all__ = ["Matcher", "Pattern", "parse_dockerignore"]


class Pattern:
    """One .dockerignore line: its cleaned text, whether it is a ``!`` exception, its regex.

    A plain class (not a dataclass): ``dockyard build`` imports this module at start-up.
    """

    __slots__ = ("exclusion", "regex", "text")

    def __init__(self, text: str, exclusion: bool, regex: re.Pattern[str]) -> None:
        self.text = text
        self.exclusion = exclusion
        self.regex = regex

    def __repr__(self) -> str:
        return f"Pattern(text={self.text!r}, exclusion={self.exclusion!r})"


def _clean(path: str) -> str:
    cleaned = posixpath.normpath(path)
    cleaned = cleaned.lstrip("/")
    return "." if cleaned in ("", ".") else cleaned


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.S)


def parse_dockerignore(text: str) -> list[Pattern]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
            if not line:
                continue
        cleaned = _clean(line)
        patterns.append(Pattern(cleaned, exclusion, _compile(cleaned)))
    return patterns


class Matcher:
    """Decides whether a context path (``a/b/c``, relative, ``/``-separated) is excluded."""

    def __init__(self, patterns: list[Pattern]) -> None:
        self.patterns = patterns
        self.has_exclusions = any(p.exclusion for p in patterns)

    @classmethod
    def from_text(cls, text: str) -> Matcher:
        return cls(parse_dockerignore(text))

    def excluded(self, path: str) -> bool:
        path = _clean(path)
        parents = _parents(path)
        matched = False
        for p in self.patterns:
            if p.exclusion != matched:
                continue  # cannot change the outcome
            hit = bool(p.regex.match(path)) or any(p.regex.match(par) for par in parents)
            if hit:
                matched = not p.exclusion
        return matched

    def may_contain_included(self, directory: str) -> bool:
        """When an excluded directory must still be walked: an exception pattern could
        re-include something under it."""
        if not self.has_exclusions:
            return False
        directory = _clean(directory)
        for p in self.patterns:
            if p.exclusion and (
                p.text.startswith(directory + "/") or "*" in p.text or "?" in p.text
            ):
                return True
        return False


def _parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
