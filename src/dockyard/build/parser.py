"""The Dockerfile parser: text in, instructions out. Pure (no I/O), as BuildKit's
``frontend/dockerfile/parser`` and ``shell/lex.go``.

What it understands:

- parser directives at the very top (``# syntax=…``, ``# escape=`` \\ or `````, ``# check=…``);
  a directive after the first comment, blank line or instruction is a plain comment;
- comments (a ``#`` line, also inside a continued instruction), blank lines;
- line continuations with the escape character (blank and comment lines inside are dropped);
- heredocs (``RUN <<EOF``, ``COPY <<EOF /dst``, ``<<-EOF`` strips leading tabs, a quoted
  terminator turns expansion off) for RUN, COPY and ADD;
- ``--flag=value`` options of FROM, RUN, COPY, ADD, HEALTHCHECK;
- JSON ("exec") form versus shell form (``json`` is True for an array of strings).

Variable substitution is a separate, equally pure step (`ShellLex`), done by the executor
with the environment of the moment: ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR-word}``,
``${VAR:+word}``, ``${VAR+word}``, quotes and escapes as Docker's ``ProcessWord(s)``.

Errors: `ParseError` (an ``InvalidArgument``) carrying the line number; its message reads
like Docker's (``dockerfile parse error line 3: unknown instruction: FROMM``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from dockyard.errors import InvalidArgument

__all__ = [
    "INSTRUCTIONS",
    "Dockerfile",
    "Heredoc",
    "Instruction",
    "ParseError",
    "ShellLex",
    "parse",
    "parse_key_values",
]

INSTRUCTIONS = frozenset(
    {
        "add",
        "arg",
        "cmd",
        "copy",
        "entrypoint",
        "env",
        "expose",
        "from",
        "healthcheck",
        "label",
        "maintainer",
        "onbuild",
        "run",
        "shell",
        "stopsignal",
        "user",
        "volume",
        "workdir",
    }
)
_FLAGGED = frozenset({"from", "run", "copy", "add", "healthcheck"})
_HEREDOC_OK = frozenset({"run", "copy", "add"})
_JSON_OK = frozenset({"run", "cmd", "entrypoint", "shell", "copy", "add", "volume"})
_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_RE = re.compile(r"<<(-?)\s*(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\2")
_FLAG_RE = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


class ParseError(InvalidArgument):
    """A Dockerfile that cannot be parsed; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"dockerfile parse error line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Heredoc:
    name: str
    content: str
    expand: bool
    chomp: bool  # <<- : leading tabs stripped


@dataclass(frozen=True)
class Instruction:
    """One instruction. ``cmd`` lower case; ``args`` the text after the flags (heredoc
    markers kept); ``json`` with ``words`` the parsed array for the exec form."""

    cmd: str
    args: str
    line: int
    original: str
    flags: tuple[tuple[str, str | None], ...] = ()
    json: bool = False
    words: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    def flag(self, name: str) -> str | None:
        for key, value in self.flags:
            if key == name:
                return value if value is not None else "true"
        return None

    def flag_all(self, name: str) -> list[str]:
        return [v if v is not None else "true" for k, v in self.flags if k == name]


@dataclass(frozen=True)
class Dockerfile:
    instructions: tuple[Instruction, ...]
    escape: str = "\\"
    directives: Mapping[str, str] = field(default_factory=dict)


def _strip_comments_and_directives(lines: list[str]) -> tuple[dict[str, str], int]:
    """Directives at the top; returns (directives, index of the first non-directive line)."""
    directives: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _DIRECTIVE_RE.match(lines[i].strip())
        if not m:
            break
        key = m.group(1).lower()
        if key not in ("syntax", "escape", "check"):
            break
        if key in directives:
            raise ParseError(i + 1, f"only one {key} parser directive can be used")
        directives[key] = m.group(2)
        i += 1
    return directives, i


def parse(text: str) -> Dockerfile:
    """Parse a Dockerfile. ``ParseError`` names the line of the first problem."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    directives, i = _strip_comments_and_directives(lines)
    escape = directives.get("escape", "\\")
    if escape not in ("\\", "`"):
        raise ParseError(1, f"invalid escape token '{escape}' does not match ` or \\")
    out: list[Instruction] = []
    n = len(lines)
    while i < n:
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        start = i
        parts: list[str] = []
        current = raw.lstrip()
        while True:
            body = current.rstrip()
            if body.endswith(escape):
                parts.append(body[: -len(escape)])
                i += 1
                # skip blank and comment lines inside a continuation
                while i < n and (not lines[i].strip() or lines[i].strip().startswith("#")):
                    i += 1
                if i >= n:
                    break
                current = lines[i]
                continue
            parts.append(body)
            i += 1
            break
        logical = "".join(parts).strip()
        word, _, rest = logical.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = more + " " + rest if rest else more
        cmd = word.lower()
        rest = rest.strip()
        if cmd not in INSTRUCTIONS:
            raise ParseError(start + 1, f"unknown instruction: {word.upper()}")
        flags: list[tuple[str, str | None]] = []
        if cmd in _FLAGGED:
            while rest.startswith("--"):
                token, _, remainder = rest.partition(" ")
                m = _FLAG_RE.match(token)
                if not m:
                    raise ParseError(start + 1, f"invalid flag: {token}")
                flags.append((m.group(1), m.group(2)))
                rest = remainder.lstrip()
        heredocs: list[Heredoc] = []
        if cmd in _HEREDOC_OK:
            for m in _HEREDOC_RE.finditer(rest):
                name = m.group(3)
                chomp = m.group(1) == "-"
                body_lines: list[str] = []
                while True:
                    if i >= n:
                        raise ParseError(start + 1, f"unterminated heredoc {name}")
                    line = lines[i]
                    i += 1
                    check = line.lstrip("\t") if chomp else line
                    if check == name:
                        break
                    body_lines.append(check if chomp else line)
                content = "\n".join(body_lines) + ("\n" if body_lines else "")
                heredocs.append(Heredoc(name, content, expand=not m.group(2), chomp=chomp))
        is_json = False
        words: tuple[str, ...] = ()
        if cmd in _JSON_OK and rest.startswith("[") and not heredocs:
            try:
                value = json.loads(rest)
            except json.JSONDecodeError:
                value = None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                is_json = True
                words = tuple(value)
        if not rest and cmd not in ("cmd", "entrypoint") and not heredocs:
            raise ParseError(start + 1, f"{cmd.upper()} requires at least one argument")
        out.append(
            Instruction(
                cmd=cmd,
                args=rest,
                line=start + 1,
                original=logical,
                flags=tuple(flags),
                json=is_json,
                words=words,
                heredocs=tuple(heredocs),
            )
        )
    return Dockerfile(tuple(out), escape, directives)


# -- variable substitution (BuildKit shell/lex.go) ------------------------------------------


class ShellLex:
    """Docker's word processing: quotes, escapes and ``$`` expansion, no globbing."""

    def __init__(self, escape: str = "\\") -> None:
        self.escape = escape

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """One word (quotes removed, variables expanded, no splitting)."""
        words = self._process(word, env, split=False)
        return words[0] if words else ""

    def process_words(self, text: str, env: Mapping[str, str]) -> list[str]:
        """Split on unquoted whitespace, then expand (EXPOSE, VOLUME, shell-form COPY…)."""
        return self._process(text, env, split=True)

    def _process(self, text: str, env: Mapping[str, str], *, split: bool) -> list[str]:
        words: list[str] = []
        current: list[str] = []
        have = False
        i = 0
        n = len(text)
        esc = self.escape
        while i < n:
            ch = text[i]
            if split and ch in " \t\n":
                if have:
                    words.append("".join(current))
                    current = []
                    have = False
                i += 1
                continue
            have = True
            if ch == esc:
                if i + 1 < n:
                    current.append(text[i + 1])
                    i += 2
                else:
                    current.append(ch)
                    i += 1
                continue
            if ch == "'":
                end = text.find("'", i + 1)
                if end < 0:
                    raise InvalidArgument(
                        f"unexpected end of statement while looking for matching single-quote in {text!r}"
                    )
                current.append(text[i + 1 : end])
                i = end + 1
                continue
            if ch == '"':
                i += 1
                while i < n and text[i] != '"':
                    c = text[i]
                    if c == esc and i + 1 < n and text[i + 1] in ('"', "$", esc):
                        current.append(text[i + 1])
                        i += 2
                    elif c == "$":
                        value, i = self._dollar(text, i, env)
                        current.append(value)
                    else:
                        current.append(c)
                        i += 1
                if i >= n:
                    raise InvalidArgument(
                        f"unexpected end of statement while looking for matching double-quote in {text!r}"
                    )
                i += 1
                continue
            if ch == "$":
                value, i = self._dollar(text, i, env)
                current.append(value)
                continue
            current.append(ch)
            i += 1
        if have:
            words.append("".join(current))
        return words

    def _dollar(self, text: str, i: int, env: Mapping[str, str]) -> tuple[str, int]:
        """Expand the ``$`` at ``text[i]``; return (value, index after it)."""
        n = len(text)
        i += 1
        if i >= n:
            return "$", i
        if text[i] == "{":
            end = _matching_brace(text, i)
            if end < 0:
                raise InvalidArgument(f"missing '}}' in {text!r}")
            inner = text[i + 1 : end]
            m = re.match(r"^([a-zA-Z_][a-zA-Z0-9_]*)(.*)$", inner, re.S)
            if not m:
                raise InvalidArgument(f"bad substitution: ${{{inner}}}")
            name, op = m.group(1), m.group(2)
            value = env.get(name)
            if not op:
                return value or "", end + 1
            for mod in (":-", ":+", "-", "+", ":?", "?"):
                if op.startswith(mod):
                    word = self.process_word(op[len(mod) :], env)
                    if mod == ":-":
                        return (value if value else word), end + 1
                    if mod == "-":
                        return (value if value is not None else word), end + 1
                    if mod == ":+":
                        return (word if value else ""), end + 1
                    if mod == "+":
                        return (word if value is not None else ""), end + 1
                    if (mod == ":?" and not value) or (mod == "?" and value is None):
                        raise InvalidArgument(f"{name}: {word or 'is not allowed to be unset'}")
                    return value or "", end + 1
            raise InvalidArgument(f"unsupported modifier ({op[:1]}) in substitution")
        m = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", text[i:])
        if not m:
            return "$", i
        return env.get(m.group(0), ""), i + m.end()


def _matching_brace(text: str, i: int) -> int:
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return -1


def parse_key_values(
    ins: Instruction, lex: ShellLex, env: Mapping[str, str], *, expand: bool = True
) -> list[tuple[str, str]]:
    """ENV / LABEL / ARG arguments: ``k=v k2="v 2"`` pairs, or the legacy ``ENV k v v``."""
    empty: dict[str, str] = {}
    words = _split_raw(ins.args, lex.escape)
    if not words:
        raise ParseError(ins.line, f"{ins.cmd.upper()} requires at least one argument")
    if "=" not in words[0] or words[0].startswith("="):
        if ins.cmd == "arg":
            return [(lex.process_word(w, env if expand else empty), "\0unset") for w in words]
        key = words[0]
        rest = ins.args[len(key) :].strip()
        if not rest:
            raise ParseError(ins.line, f"{ins.cmd.upper()} must have two arguments")
        return [(key, lex.process_word(rest, env) if expand else rest)]
    pairs: list[tuple[str, str]] = []
    for w in words:
        if "=" not in w:
            if ins.cmd == "arg":
                pairs.append((w, "\0unset"))
                continue
            raise ParseError(
                ins.line, f'Syntax error - can\'t find = in "{w}". Must be of the form: name=value'
            )
        k, _, v = w.partition("=")
        key = lex.process_word(k, env) if expand else k
        value = lex.process_word(v, env) if expand else v
        pairs.append((key, value))
    return pairs


def _split_raw(text: str, escape: str) -> list[str]:
    """Split on unquoted whitespace, keeping quotes and escapes for later processing."""
    words: list[str] = []
    cur: list[str] = []
    quote = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == escape and i + 1 < len(text) and quote != "'":
            cur.append(ch + text[i + 1])
            i += 2
            continue
        if quote:
            if ch == quote:
                quote = ""
            cur.append(ch)
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch in " \t\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        words.append("".join(cur))
    return words
