"""A Go ``text/template`` subset, for ``--format`` (pure: no I/O, table-tested).

Supported, with Go's semantics where they show in output:

- text and actions, ``{{- …}}``/``{{… -}}`` whitespace trimming, ``{{/* comments */}}``;
- ``.``, field chains ``.A.B`` (on dicts: missing key → ``<no value>``; a field name that
  differs only in case matches too, so ``.ID`` finds ``Id`` as Go's typed structs do),
  ``$``/``$var``, ``(pipeline).Field``, ``{{$x := …}}``, ``{{$x = …}}``, pipes ``|``;
- ``if``/``else if``/``else``, ``range`` (lists, dicts in key order, ints; ``$i, $v :=``;
  ``break``/``continue``; ``else``), ``with``/``else``, ``end``;
- literals: strings (``"…"`` with Go escapes, raw ``\\`…\\```), chars, ints, floats,
  ``true``/``false``/``nil``;
- Go's builtins: ``and or not len index slice print printf println eq ne lt le gt ge
  html js urlquery``; docker's: ``json split join title lower upper pad truncate``.

Values print like Go's ``fmt.Print``: ``[a b]`` for lists, ``map[k:v]`` (sorted) for
dicts, ``<nil>`` for null, ``<no value>`` for a missing key. A null under a name Docker
types as a slice or map prints ``[]`` / ``map[]`` (see ``NIL_SLICE_FIELDS``).

Objects other than JSON values can take part through the ``TemplateObject`` protocol
(the ``ps``/``images`` row contexts): ``template_field(name)`` returns a value or a
callable (a method, called with the action's arguments), ``template_json()`` is what
``json`` renders.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote_plus

from .gofmt import MISSING, TemplateError, go_quote

__all__ = [
    "MISSING",
    "GoMap",
    "GoStruct",
    "Template",
    "TemplateError",
    "TemplateObject",
    "TypedNil",
    "go_format",
    "go_quote",
    "go_sprintf",
    "parse",
    "render",
]


@runtime_checkable
class TemplateObject(Protocol):
    def template_field(self, name: str) -> Any:
        """The field's value, or a callable for a method; ``KeyError`` if there is none."""
        ...

    def template_json(self) -> Any:
        """What ``{{json .}}`` encodes (Go: the object's ``MarshalJSON``)."""
        ...


class TypedNil:
    """A JSON ``null`` where Go has a nil slice (prints ``[]``) or nil map (``map[]``)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __bool__(self) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __eq__(self, other: object) -> bool:
        return other is None or isinstance(other, TypedNil)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"TypedNil({self.kind!r})"


class GoMap(dict):  # type: ignore[type-arg]
    """A JSON object that Docker's Go types hold as a map (not a struct): a missing key
    evaluates to ``<no value>`` instead of failing, and it prints as ``map[k:v]``."""


class GoStruct(dict):  # type: ignore[type-arg]
    """A JSON object standing for a Go struct named ``go_type`` (used in error messages).

    Fields in ``omitempty`` are left out of ``json`` output when empty or null, as Go's
    ``json:",omitempty"`` does, but stay visible to templates.
    """

    def __init__(
        self,
        data: Mapping[str, Any],
        go_type: str = "struct",
        omitempty: frozenset[str] = frozenset(),
        go_key: str = "",
    ) -> None:
        super().__init__(data)
        self.go_type = go_type
        self.omitempty = omitempty
        self.go_key = go_key


# Names whose null Docker's Go types hold as slices or maps (how they print).
NIL_SLICE_FIELDS = frozenset(
    [
        "Cmd",
        "Entrypoint",
        "Env",
        "Args",
        "Binds",
        "Links",
        "Dns",
        "DnsOptions",
        "DnsSearch",
        "ExtraHosts",
        "CapAdd",
        "CapDrop",
        "GroupAdd",
        "SecurityOpt",
        "VolumesFrom",
        "Mounts",
        "ExecIDs",
        "Aliases",
        "DNSNames",
        "OnBuild",
        "Shell",
        "RepoTags",
        "RepoDigests",
        "Layers",
        "Devices",
        "DeviceCgroupRules",
        "DeviceRequests",
        "Ulimits",
        "MaskedPaths",
        "ReadonlyPaths",
        "Warnings",
        "SecondaryIPAddresses",
        "SecondaryIPv6Addresses",
        "BlkioWeightDevice",
        "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps",
        "BlkioDeviceReadIOps",
        "BlkioDeviceWriteIOps",
        "Names",
        "Components",
        "DriverStatus",
        "SystemStatus",
        "ContainersDeleted",
        "ImagesDeleted",
    ]
)
NIL_MAP_FIELDS = frozenset(
    [
        "Labels",
        "Volumes",
        "ExposedPorts",
        "Ports",
        "Options",
        "DriverOpts",
        "Networks",
        "Tmpfs",
        "StorageOpt",
        "Sysctls",
        "Data",
        "Annotations",
        "Details",
        "Runtimes",
        "IndexConfigs",
        "EndpointsConfig",
        "PortBindings",
    ]
)


# Maps that share their name with a struct elsewhere: (parent field, field).
MAP_PATHS = frozenset([("LogConfig", "Config")])

# JSON keys whose Go field name differs (a typed template must use the Go name).
GO_FIELD_NAMES = {
    "Id": "ID",
    "ApiVersion": "APIVersion",
    "Dns": "DNS",
    "DnsOptions": "DNSOptions",
    "DnsSearch": "DNSSearch",
    "CpuShares": "CPUShares",
    "CpuPeriod": "CPUPeriod",
    "CpuQuota": "CPUQuota",
    "CpuRealtimePeriod": "CPURealtimePeriod",
    "CpuRealtimeRuntime": "CPURealtimeRuntime",
    "CpuCount": "CPUCount",
    "CpuPercent": "CPUPercent",
    "NanoCpus": "NanoCPUs",
    "HttpProxy": "HTTPProxy",
    "HttpsProxy": "HTTPSProxy",
    "HostIp": "HostIP",
}


def _typed(name: str, value: Any, parent: str = "") -> Any:
    """A JSON value as Docker's Go types hold it under field ``name`` (of ``parent``)."""
    if value is None:
        if name in NIL_SLICE_FIELDS:
            return TypedNil("slice")
        if name in NIL_MAP_FIELDS or (parent, name) in MAP_PATHS:
            return TypedNil("map")
    elif type(value) is dict:
        if name in NIL_MAP_FIELDS or (parent, name) in MAP_PATHS:
            return GoMap(value)
        return GoStruct(value, go_type=name or "struct", go_key=name)
    return value


# --------------------------------------------------------------------------- printing


def _go_float(value: float) -> str:
    """``%v`` of a float64: shortest repr, exponent when exp < -4 or >= 6 (Go's %g)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    digits = repr(value)
    mantissa, _, exp_text = digits.partition("e")
    exponent = int(exp_text) if exp_text else 0
    sign = ""
    if mantissa.startswith("-"):
        sign, mantissa = "-", mantissa[1:]
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = (int_part + frac_part).lstrip("0")
    # decimal exponent of the leading digit
    if int_part.strip("0"):
        lead_exp = len(int_part.lstrip("0")) - 1 + exponent
    else:
        lead_exp = -(len(frac_part) - len(frac_part.lstrip("0")) + 1) + exponent
    all_digits = all_digits.rstrip("0") or "0"
    if lead_exp < -4 or lead_exp >= 6:
        mant = all_digits[0] + ("." + all_digits[1:] if len(all_digits) > 1 else "")
        exp_sign = "+" if lead_exp >= 0 else "-"
        return f"{sign}{mant}e{exp_sign}{abs(lead_exp):02d}"
    if lead_exp >= 0:
        if len(all_digits) <= lead_exp + 1:
            return sign + all_digits + "0" * (lead_exp + 1 - len(all_digits))
        return sign + all_digits[: lead_exp + 1] + "." + all_digits[lead_exp + 1 :]
    return sign + "0." + "0" * (-lead_exp - 1) + all_digits


def go_format(value: Any, *, typed: bool = False) -> str:
    """``fmt.Sprint`` of one value, as a Go template action prints it.

    With ``typed``, JSON objects that are not ``GoMap`` print as Go structs
    (``{v1 v2}``, values in field order); otherwise every object is a map.
    """
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, TypedNil):
        return "[]" if value.kind == "slice" else "map[]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_format_nested(v, typed) for v in value) + "]"
    if isinstance(value, dict):
        parent = getattr(value, "go_key", "")
        if typed and not isinstance(value, GoMap):
            return (
                "{"
                + " ".join(
                    _go_format_nested(_typed(str(k), v, parent), typed) for k, v in value.items()
                )
                + "}"
            )
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return (
            "map["
            + " ".join(
                f"{go_format(k)}:{_go_format_nested(_typed('', v) if typed else v, typed)}"
                for k, v in items
            )
            + "]"
        )
    return str(value)


def _go_format_nested(value: Any, typed: bool = False) -> str:
    if value is MISSING:
        return "<nil>"
    return go_format(value, typed=typed)


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))


def _go_type_name(value: Any) -> str:
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple, TypedNil)):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__


_VERB_RE = re.compile(r"%([-+# 0]*)(\*|\d+)?(?:\.(\*|\d+)?)?([a-zA-Z%])")


def go_sprintf(fmt: str, args: list[Any]) -> str:
    """A subset of Go's ``fmt.Sprintf``: verbs v s q d x X o b c e E f F g G t %, flags,
    width and precision; ``%!verb(MISSING)``/``%!(EXTRA …)`` like Go."""
    out: list[str] = []
    pos = 0
    argi = 0
    for m in _VERB_RE.finditer(fmt):
        out.append(fmt[pos : m.start()])
        pos = m.end()
        flags, width_s, prec_s, verb = m.group(1), m.group(2), m.group(3), m.group(4)
        if verb == "%":
            out.append("%")
            continue
        width: int | None = None
        prec: int | None = None
        if width_s == "*":
            if argi < len(args) and isinstance(args[argi], int):
                width = args[argi]
            argi += 1
        elif width_s:
            width = int(width_s)
        if m.group(0).find(".") >= 0:
            if prec_s == "*":
                if argi < len(args) and isinstance(args[argi], int):
                    prec = args[argi]
                argi += 1
            else:
                prec = int(prec_s) if prec_s else 0
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        arg = args[argi]
        argi += 1
        out.append(_format_verb(verb, flags, width, prec, arg))
    out.append(fmt[pos:])
    if argi < len(args):
        extra = ", ".join(f"{_go_type_name(a)}={go_format(a)}" for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(text: str, flags: str, width: int | None, numeric: bool = False) -> str:
    if width is None or len(text) >= width:
        return text
    if "-" in flags:
        return text + " " * (width - len(text))
    if "0" in flags and numeric:
        sign = text[0] if text[:1] in "+-" else ""
        body = text[len(sign) :]
        return sign + "0" * (width - len(text)) + body
    return " " * (width - len(text)) + text


def _format_verb(verb: str, flags: str, width: int | None, prec: int | None, arg: Any) -> str:
    is_int = isinstance(arg, int) and not isinstance(arg, bool)
    if verb in "vs":
        if verb == "s" and not isinstance(arg, str) and (is_int or isinstance(arg, (bool, float))):
            return f"%!s({_go_type_name(arg)}={go_format(arg)})"
        text = go_format(arg)
        if prec is not None and verb == "s":
            text = text[:prec]
        return _pad(text, flags, width)
    if verb == "q":
        if isinstance(arg, str):
            return _pad(go_quote(arg), flags, width)
        if is_int:
            return _pad("'" + chr(arg) + "'", flags, width)
        return f"%!q({_go_type_name(arg)}={go_format(arg)})"
    if verb == "t":
        if isinstance(arg, bool):
            return _pad("true" if arg else "false", flags, width)
        return f"%!t({_go_type_name(arg)}={go_format(arg)})"
    if verb in "dxXobc":
        if verb in "xX" and isinstance(arg, str):
            text = arg.encode().hex()
            return _pad(text.upper() if verb == "X" else text, flags, width)
        if not is_int:
            return f"%!{verb}({_go_type_name(arg)}={go_format(arg)})"
        if verb == "c":
            return _pad(chr(arg), flags, width)
        spec = {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb]
        text = format(abs(arg), spec)
        if "#" in flags and verb in "xX":
            text = ("0x" if verb == "x" else "0X") + text
        sign = "-" if arg < 0 else ("+" if "+" in flags else (" " if " " in flags else ""))
        return _pad(sign + text, flags, width, numeric=True)
    if verb in "eEfFgG":
        if not isinstance(arg, (int, float)) or isinstance(arg, bool):
            return f"%!{verb}({_go_type_name(arg)}={go_format(arg)})"
        value = float(arg)
        if verb in "gG" and prec is None:
            text = _go_float(value)
            if verb == "G":
                text = text.upper()
        else:
            spec = verb if verb != "F" else "f"
            text = format(value, f".{6 if prec is None else prec}{spec}")
        if "+" in flags and value >= 0:
            text = "+" + text
        return _pad(text, flags, width, numeric=True)
    return f"%!{verb}({_go_type_name(arg)}={go_format(arg)})"


# --------------------------------------------------------------------------- lexing

_KEYWORDS = frozenset(
    ["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"]
)


class _Tok:
    __slots__ = ("kind", "pos", "space_before", "value")

    def __init__(self, kind: str, value: Any, pos: int, space_before: bool = False) -> None:
        self.kind = kind
        self.value = value
        self.pos = pos
        self.space_before = space_before


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELDS_RE = re.compile(r"(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_NUMBER_RE = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|"
    r"(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?)"
)

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
}


def _unquote(body: str, quote: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise ValueError("bad escape")
        esc = body[i]
        if esc in _ESCAPES:
            if esc in "'\"" and esc != quote:
                raise ValueError("bad escape")
            out.append(_ESCAPES[esc])
            i += 1
        elif esc == "x":
            out.append(chr(int(body[i + 1 : i + 3], 16)))
            i += 3
        elif esc == "u":
            out.append(chr(int(body[i + 1 : i + 5], 16)))
            i += 5
        elif esc == "U":
            out.append(chr(int(body[i + 1 : i + 9], 16)))
            i += 9
        elif esc in "01234567":
            out.append(chr(int(body[i : i + 3], 8)))
            i += 3
        else:
            raise ValueError("bad escape")
    return "".join(out)


def _parse_number(text: str) -> int | float:
    clean = text.replace("_", "")
    sign = 1
    if clean[:1] in "+-":
        sign = -1 if clean[0] == "-" else 1
        clean = clean[1:]
    low = clean.lower()
    if low.startswith("0x"):
        return sign * int(low[2:], 16)
    if low.startswith("0o"):
        return sign * int(low[2:], 8)
    if low.startswith("0b"):
        return sign * int(low[2:], 2)
    if any(c in low for c in ".e"):
        return sign * float(low)
    if len(low) > 1 and low.startswith("0"):
        return sign * int(low, 8)
    return sign * int(low)


class _Lexer:
    def __init__(self, text: str, name: str = "") -> None:
        self.text = text
        self.name = name
        self.tokens: list[_Tok] = []

    def line_of(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"template: {self.name}:{self.line_of(pos)}: {message}")

    def run(self) -> list[_Tok]:
        text = self.text
        pos = 0
        trim_next = False
        while True:
            start = text.find("{{", pos)
            chunk = text[pos:] if start < 0 else text[pos:start]
            trim_left = False
            if (
                start >= 0
                and text[start + 2 : start + 3] == "-"
                and text[start + 3 : start + 4]
                in (
                    " ",
                    "\t",
                    "\r",
                    "\n",
                )
            ):
                trim_left = True
            if trim_next:
                chunk = chunk.lstrip(" \t\r\n")
            if trim_left:
                chunk = chunk.rstrip(" \t\r\n")
            if chunk:
                self.tokens.append(_Tok("text", chunk, pos))
            if start < 0:
                break
            pos = start + 2 + (2 if trim_left else 0)
            pos, trim_next = self._action(pos, start)
        return self.tokens

    def _action(self, pos: int, start: int) -> tuple[int, bool]:
        text = self.text
        # comment
        rest = text[pos:]
        stripped = rest.lstrip(" \t\r\n") if text[start + 2 : start + 3] == "-" else rest
        if stripped.startswith("/*"):
            cpos = pos + (len(rest) - len(stripped))
            end = text.find("*/", cpos + 2)
            if end < 0:
                raise self.error(start, "unclosed comment")
            after = end + 2
            if text.startswith(" -}}", after):
                return after + 4, True
            if text.startswith("}}", after):
                return after + 2, False
            raise self.error(start, "comment ends before closing delimiter")
        self.tokens.append(_Tok("boa", None, start))
        space = True
        while True:
            if pos >= len(text):
                raise self.error(start, "unclosed action")
            ch = text[pos]
            if text.startswith(" -}}", pos) or text.startswith("\t-}}", pos):
                self.tokens.append(_Tok("eoa", None, pos))
                return pos + 4, True
            if text.startswith("}}", pos):
                self.tokens.append(_Tok("eoa", None, pos))
                return pos + 2, False
            if ch in " \t\r\n":
                pos += 1
                space = True
                continue
            tok, pos = self._token(pos, start)
            tok.space_before = space
            self.tokens.append(tok)
            space = False

    def _token(self, pos: int, start: int) -> tuple[_Tok, int]:
        text = self.text
        ch = text[pos]
        if ch == "|":
            return _Tok("pipe", "|", pos), pos + 1
        if ch == "(":
            return _Tok("lparen", "(", pos), pos + 1
        if ch == ")":
            return _Tok("rparen", ")", pos), pos + 1
        if ch == ",":
            return _Tok("comma", ",", pos), pos + 1
        if text.startswith(":=", pos):
            return _Tok("declare", ":=", pos), pos + 2
        if ch == "=":
            return _Tok("assign", "=", pos), pos + 1
        if ch == '"':
            end = pos + 1
            while end < len(text) and text[end] != '"':
                if text[end] == "\\":
                    end += 1
                if end < len(text) and text[end] == "\n":
                    raise self.error(pos, "unterminated quoted string")
                end += 1
            if end >= len(text):
                raise self.error(pos, "unterminated quoted string")
            try:
                value = _unquote(text[pos + 1 : end], '"')
            except (ValueError, IndexError) as exc:
                raise self.error(pos, f"invalid syntax: {text[pos : end + 1]}") from exc
            return _Tok("string", value, pos), end + 1
        if ch == "`":
            end = text.find("`", pos + 1)
            if end < 0:
                raise self.error(pos, "unterminated raw quoted string")
            return _Tok("string", text[pos + 1 : end], pos), end + 1
        if ch == "'":
            end = pos + 1
            while end < len(text) and text[end] != "'":
                if text[end] == "\\":
                    end += 1
                end += 1
            try:
                value = _unquote(text[pos + 1 : end], "'")
            except (ValueError, IndexError) as exc:
                raise self.error(pos, "invalid syntax") from exc
            if len(value) != 1:
                raise self.error(pos, f"malformed character constant: {text[pos : end + 1]}")
            return _Tok("number", ord(value), pos), end + 1
        if ch == ".":
            m = _FIELDS_RE.match(text, pos)
            if m:
                names = m.group(0)[1:].split(".")
                # Go positions a chain (.A.B) at its second field
                at = pos if len(names) == 1 else pos + 1 + len(names[0])
                return _Tok("field", names, at), m.end()
            nm = _NUMBER_RE.match(text, pos)
            if nm and nm.end() > pos + 1:
                return _Tok("number", _parse_number(nm.group(0)), pos), nm.end()
            return _Tok("dot", ".", pos), pos + 1
        if ch == "$":
            m = _IDENT_RE.match(text, pos + 1)
            name = "$" + (m.group(0) if m else "")
            end = m.end() if m else pos + 1
            chain: list[str] = []
            at = pos
            fm = _FIELDS_RE.match(text, end)
            if fm:
                chain = fm.group(0)[1:].split(".")
                at = end
                end = fm.end()
            return _Tok("var", (name, chain), at), end
        if ch.isdigit() or (ch in "+-" and pos + 1 < len(text) and text[pos + 1].isdigit()):
            nm = _NUMBER_RE.match(text, pos)
            if nm:
                try:
                    return _Tok("number", _parse_number(nm.group(0)), pos), nm.end()
                except ValueError as exc:
                    raise self.error(pos, f"bad number syntax: {nm.group(0)!r}") from exc
        m = _IDENT_RE.match(text, pos)
        if m:
            word = m.group(0)
            if word in ("true", "false"):
                return _Tok("bool", word == "true", pos), m.end()
            if word == "nil":
                return _Tok("nil", None, pos), m.end()
            if word in _KEYWORDS:
                return _Tok("keyword", word, pos), m.end()
            return _Tok("ident", word, pos), m.end()
        raise self.error(pos, f"unexpected {ch!r} in command")


# --------------------------------------------------------------------------- parsing


class _Node:
    __slots__ = ("pos",)

    def __init__(self, pos: int) -> None:
        self.pos = pos


class _Text(_Node):
    __slots__ = ("text",)

    def __init__(self, pos: int, text: str) -> None:
        super().__init__(pos)
        self.text = text


class _Pipe(_Node):
    __slots__ = ("cmds", "decl", "is_assign")

    def __init__(self, pos: int, decl: list[str], is_assign: bool, cmds: list[_Command]) -> None:
        super().__init__(pos)
        self.decl = decl
        self.is_assign = is_assign
        self.cmds = cmds


class _Command(_Node):
    __slots__ = ("args",)

    def __init__(self, pos: int, args: list[_Node]) -> None:
        super().__init__(pos)
        self.args = args


class _Action(_Node):
    __slots__ = ("pipe",)

    def __init__(self, pos: int, pipe: _Pipe) -> None:
        super().__init__(pos)
        self.pipe = pipe


class _Branch(_Node):
    __slots__ = ("body", "else_body", "kind", "pipe")

    def __init__(
        self, pos: int, kind: str, pipe: _Pipe, body: list[_Node], else_body: list[_Node] | None
    ) -> None:
        super().__init__(pos)
        self.kind = kind
        self.pipe = pipe
        self.body = body
        self.else_body = else_body


class _LoopControl(_Node):
    __slots__ = ("kind",)

    def __init__(self, pos: int, kind: str) -> None:
        super().__init__(pos)
        self.kind = kind


class _Field(_Node):
    __slots__ = ("names",)

    def __init__(self, pos: int, names: list[str]) -> None:
        super().__init__(pos)
        self.names = names


class _Var(_Node):
    __slots__ = ("name", "names")

    def __init__(self, pos: int, name: str, names: list[str]) -> None:
        super().__init__(pos)
        self.name = name
        self.names = names


class _Chain(_Node):
    __slots__ = ("names", "node")

    def __init__(self, pos: int, node: _Node, names: list[str]) -> None:
        super().__init__(pos)
        self.node = node
        self.names = names


class _Dot(_Node):
    __slots__ = ()

    def __init__(self, pos: int) -> None:
        super().__init__(pos)


class _Literal(_Node):
    __slots__ = ("source", "value")

    def __init__(self, pos: int, value: Any, source: str = "") -> None:
        super().__init__(pos)
        self.value = value
        self.source = source


class _Ident(_Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str) -> None:
        super().__init__(pos)
        self.name = name


class _Parser:
    def __init__(self, lexer: _Lexer, funcs: Mapping[str, Any]) -> None:
        self.lexer = lexer
        self.tokens = lexer.tokens
        self.i = 0
        self.funcs = funcs
        self.vars: list[str] = ["$"]
        self.range_depth = 0

    def error(self, pos: int, message: str) -> TemplateError:
        return self.lexer.error(pos, message)

    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise self.error(len(self.lexer.text), "unexpected EOF")
        self.i += 1
        return tok

    def parse(self) -> list[_Node]:
        body, end = self.parse_list(())
        if end is not None:
            raise self.error(end.pos, f"unexpected {{{{{end.value}}}}}")
        return body

    def parse_list(self, stops: tuple[str, ...]) -> tuple[list[_Node], _Tok | None]:
        """Nodes up to one of the ``stops`` keywords (``end``/``else``), which is consumed
        with its action opener; returns the stop token (``None`` at EOF)."""
        nodes: list[_Node] = []
        while True:
            tok = self.peek()
            if tok is None:
                if stops:
                    raise self.error(len(self.lexer.text), "unexpected EOF")
                return nodes, None
            if tok.kind == "text":
                self.i += 1
                nodes.append(_Text(tok.pos, tok.value))
                continue
            # tok is "boa"
            nxt = self.peek(1)
            if nxt is not None and nxt.kind == "keyword":
                word = nxt.value
                if word in ("end", "else"):
                    if word not in stops and not (word == "end" and "end" in stops):
                        raise self.error(nxt.pos, f"unexpected {{{{{word}}}}}")
                    self.i += 2
                    return nodes, nxt
                self.i += 2
                nodes.append(self.parse_keyword(nxt))
                continue
            self.i += 1
            start = tok.pos
            pipe = self.parse_pipeline(start, "eoa", allow_decl=True)
            nodes.append(_Action(start, pipe))

    def expect_eoa(self, context: str) -> None:
        tok = self.next()
        if tok.kind != "eoa":
            raise self.error(tok.pos, f"unexpected {tok.value!r} in {context}")

    def parse_keyword(self, tok: _Tok) -> _Node:
        word = tok.value
        if word in ("if", "with", "range"):
            return self.parse_branch(word, tok.pos)
        if word in ("break", "continue"):
            if self.range_depth == 0:
                raise self.error(tok.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
            self.expect_eoa(word)
            return _LoopControl(tok.pos, word)
        raise self.error(tok.pos, f"{{{{{word}}}}} is not supported")

    def parse_branch(self, kind: str, pos: int) -> _Branch:
        saved_vars = len(self.vars)
        pipe = self.parse_pipeline(pos, "eoa", allow_decl=True, in_range=kind == "range")
        if kind == "range":
            self.range_depth += 1
        body, stop = self.parse_list(("end", "else"))
        if kind == "range":
            self.range_depth -= 1
        else_body: list[_Node] | None = None
        assert stop is not None
        if stop.value == "else":
            nxt = self.peek()
            if nxt is not None and nxt.kind == "keyword" and nxt.value in ("if", "with"):
                # {{else if …}} / {{else with …}}: a nested branch sharing our {{end}}
                self.i += 1
                else_body = [self.parse_branch(nxt.value, nxt.pos)]
            else:
                self.expect_eoa("else")
                else_body, stop2 = self.parse_list(("end",))
                assert stop2 is not None
                self.expect_eoa("end")
        else:
            self.expect_eoa("end")
        del self.vars[saved_vars:]
        return _Branch(pos, kind, pipe, body, else_body)

    def parse_pipeline(
        self, pos: int, end_kind: str, *, allow_decl: bool, in_range: bool = False
    ) -> _Pipe:
        decl: list[str] = []
        is_assign = False
        tok = self.peek()
        if allow_decl and tok is not None and tok.kind == "var" and not tok.value[1]:
            # $x := … / $x = … / $i, $v := …
            j = 1
            names = [tok.value[0]]
            nxt = self.peek(j)
            if in_range and nxt is not None and nxt.kind == "comma":
                second = self.peek(j + 1)
                if second is not None and second.kind == "var":
                    names.append(second.value[0])
                    j += 2
                    nxt = self.peek(j)
            if nxt is not None and nxt.kind in ("declare", "assign"):
                if nxt.kind == "assign" and len(names) == 1 and names[0] not in self.vars:
                    raise self.error(nxt.pos, f"undefined variable: {names[0]}")
                is_assign = nxt.kind == "assign"
                decl = names
                self.i += j + 1
                if not is_assign:
                    self.vars.extend(names)
        cmds: list[_Command] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise self.error(len(self.lexer.text), "unclosed action")
            if tok.kind == end_kind:
                self.i += 1
                break
            cmds.append(self.parse_command(end_kind))
            tok = self.peek()
            if tok is not None and tok.kind == "pipe":
                self.i += 1
                continue
        if not cmds:
            raise self.error(pos, "missing value for command")
        for cmd in cmds[1:]:
            first = cmd.args[0]
            if isinstance(first, (_Literal, _Dot)) and not (
                isinstance(first, _Literal) and first.source == "nil"
            ):
                raise self.error(first.pos, "non executable command in pipeline stage 2")
        return _Pipe(pos, decl, is_assign, cmds)

    def parse_command(self, end_kind: str) -> _Command:
        args: list[_Node] = []
        first = self.peek()
        pos = first.pos if first is not None else 0
        while True:
            tok = self.peek()
            if tok is None:
                raise self.error(len(self.lexer.text), "unclosed action")
            if tok.kind in (end_kind, "pipe", "rparen"):
                break
            if args and not tok.space_before and tok.kind not in ("field",):
                raise self.error(tok.pos, f"unexpected {tok.value!r} in operand")
            args.append(self.parse_operand())
        if not args:
            raise self.error(pos, "missing value for command")
        return _Command(pos, args)

    def parse_operand(self) -> _Node:
        node = self.parse_term()
        tok = self.peek()
        if tok is not None and tok.kind == "field" and not tok.space_before:
            self.i += 1
            if isinstance(node, _Field):
                return _Field(node.pos, node.names + tok.value)
            if isinstance(node, _Var):
                return _Var(node.pos, node.name, node.names + tok.value)
            if isinstance(node, (_Literal, _Ident)) and not isinstance(node, _Dot):
                raise self.error(tok.pos, "unexpected . after term")
            return _Chain(node.pos, node, tok.value)
        return node

    def parse_term(self) -> _Node:
        tok = self.next()
        kind = tok.kind
        if kind == "field":
            return _Field(tok.pos, list(tok.value))
        if kind == "var":
            name, chain = tok.value
            if name not in self.vars:
                raise self.error(tok.pos, f'undefined variable "{name}"')
            return _Var(tok.pos, name, list(chain))
        if kind == "dot":
            return _Dot(tok.pos)
        if kind in ("string", "number", "bool"):
            return _Literal(tok.pos, tok.value)
        if kind == "nil":
            return _Literal(tok.pos, None, "nil")
        if kind == "ident":
            if tok.value not in self.funcs and tok.value not in _BUILTIN_NAMES:
                raise self.error(tok.pos, f'function "{tok.value}" not defined')
            return _Ident(tok.pos, tok.value)
        if kind == "lparen":
            pipe = self.parse_pipeline(tok.pos, "rparen", allow_decl=False)
            return pipe
        raise self.error(tok.pos, f"unexpected {tok.value!r} in operand")


# --------------------------------------------------------------------------- execution


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, empty string/list/map are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, (bool, int, float, str, list, tuple, dict, TypedNil)):
        return bool(value)
    return True


def _json_func(value: Any) -> str:
    from dockyard.client.wire import go_json

    if isinstance(value, TemplateObject):
        # Go: the object's MarshalJSON (json.Marshal of a map: sorted keys, HTML escaped)
        return go_json(value.template_json(), sort_keys=True, escape_html=True)
    return go_json(_plain(value), escape_html=False)


def _json_func_map(value: Any) -> str:
    """``json`` when data is a decoded ``map[string]interface{}``: keys come out sorted."""
    from dockyard.client.wire import go_json

    if isinstance(value, TemplateObject):
        return go_json(value.template_json(), sort_keys=True, escape_html=True)
    return go_json(_plain(value), escape_html=False, sort_keys=True)


def _plain(value: Any) -> Any:
    if value is MISSING or isinstance(value, TypedNil):
        return None
    if isinstance(value, TemplateObject):
        return value.template_json()
    if isinstance(value, dict):
        items = list(value.items())
        if isinstance(value, GoMap):
            items.sort(key=lambda kv: _sort_key(kv[0]))
        elif isinstance(value, GoStruct) and value.omitempty:
            items = [
                (k, v) for k, v in items if not (k in value.omitempty and v in (None, "", 0, False))
            ]
        return {
            k: _plain(GoMap(v) if k in NIL_MAP_FIELDS and type(v) is dict else v) for k, v in items
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _as_str(value: Any, fname: str) -> str:
    if isinstance(value, str):
        return value
    raise TemplateError(
        f"wrong type for value; expected string; got {_go_type_name(value)} (in {fname})"
    )


def _join(items: Any, sep: Any) -> str:
    if items is None or isinstance(items, TypedNil) or items is MISSING:
        return ""
    if not isinstance(items, (list, tuple)):
        raise TemplateError(f"wrong type for value; expected []string; got {_go_type_name(items)}")
    return _as_str(sep, "join").join(go_format(i) for i in items)


def _title(text: Any) -> str:
    s = _as_str(text, "title")
    out: list[str] = []
    prev = " "
    for ch in s:
        out.append(ch.upper() if not (prev.isalnum() or prev == "_" or prev == "'") else ch)
        prev = ch
    return "".join(out)


def _pad_func(source: Any, prefix: Any, suffix: Any) -> str:
    s = go_format(source) if not isinstance(source, str) else source
    if s == "":
        return s
    return " " * int(prefix) + s + " " * int(suffix)


def _truncate(source: Any, length: Any) -> str:
    s = _as_str(source, "truncate")
    raw = s.encode()
    n = int(length)
    if len(raw) < n:
        return s
    return raw[:n].decode("utf-8", "ignore")


def _split(text: Any, sep: Any) -> list[str]:
    s, sp = _as_str(text, "split"), _as_str(sep, "split")
    if sp == "":
        return list(s)
    return s.split(sp)


def _len(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict, TypedNil)):
        return len(value)
    raise TemplateError(f"len of type {_go_type_name(value)}")


def _index(item: Any, *indexes: Any) -> Any:
    value = item
    for idx in indexes:
        if value is None or value is MISSING or isinstance(value, TypedNil):
            if isinstance(value, TypedNil) and value.kind == "map":
                return ""
            raise TemplateError("index of untyped nil")
        if isinstance(value, dict):
            if idx in value:
                value = value[idx]
            else:
                # the zero value: "" in Docker's string maps, nil in decoded JSON
                return "" if isinstance(value, GoMap) else None
        elif isinstance(value, (list, tuple, str)):
            if not isinstance(idx, int) or isinstance(idx, bool):
                raise TemplateError(f"cannot index slice/array with type {_go_type_name(idx)}")
            if not 0 <= idx < len(value):
                raise TemplateError(f"index out of range: {idx}")
            value = value[idx] if not isinstance(value, str) else ord(value[idx])
        else:
            raise TemplateError(f"can't index item of type {_go_type_name(value)}")
    return value


def _slice(item: Any, *indexes: Any) -> Any:
    if not isinstance(item, (str, list, tuple)):
        raise TemplateError(f"can't slice item of type {_go_type_name(item)}")
    if len(indexes) > 2:
        raise TemplateError("too many slice indexes")
    start = int(indexes[0]) if indexes else 0
    end = int(indexes[1]) if len(indexes) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise TemplateError(f"index out of range: {end}")
    return item[start:end]


def _basic(value: Any) -> Any:
    if value is MISSING or isinstance(value, TypedNil):
        return None
    return value


def _eq(first: Any, *others: Any) -> bool:
    if not others:
        raise TemplateError("missing argument for comparison")
    a = _basic(first)
    for other in others:
        b = _basic(other)
        if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
            if a is None or b is None:
                if a is b:
                    return True
                continue
            raise TemplateError("non-comparable type")
        if a == b and (isinstance(a, bool) == isinstance(b, bool)):
            return True
    return False


def _ordered(a: Any, b: Any, op: str) -> bool:
    x: Any = _basic(a)
    y: Any = _basic(b)
    if isinstance(x, bool) or isinstance(y, bool):
        raise TemplateError("invalid type for comparison")
    both_numbers = isinstance(x, (int, float)) and isinstance(y, (int, float))
    if not both_numbers and not (isinstance(x, str) and isinstance(y, str)):
        raise TemplateError("incompatible types for comparison")
    if op == "lt":
        return bool(x < y)
    if op == "le":
        return bool(x <= y)
    if op == "gt":
        return bool(x > y)
    return bool(x >= y)


def _sprint(*args: Any) -> str:
    out: list[str] = []
    for i, arg in enumerate(args):
        if i > 0 and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_format(arg))
    return "".join(out)


def _html(*args: Any) -> str:
    s = _sprint(*args)
    return (
        s.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
        .replace("\x00", "\ufffd")
    )


def _js(*args: Any) -> str:
    s = _sprint(*args)
    out: list[str] = []
    for ch in s:
        if ch in "\\'\"<>&=":
            out.append(f"\\u{ord(ch):04X}" if ch in "<>&=" else "\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


BASIC_FUNCS: dict[str, Callable[..., Any]] = {
    "json": _json_func,
    "split": _split,
    "join": _join,
    "title": _title,
    "lower": lambda s: _as_str(s, "lower").lower(),
    "upper": lambda s: _as_str(s, "upper").upper(),
    "pad": _pad_func,
    "truncate": _truncate,
}

# Docker's HeaderFunctions: while rendering a table header, these return their input.
HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    "json": lambda v: v,
    "split": lambda v, _sep: v,
    "join": lambda v, _sep: v,
    "title": lambda v: v,
    "lower": lambda v: v,
    "upper": lambda v: v,
    "truncate": lambda v, _n: v,
}

_BUILTINS: dict[str, Callable[..., Any]] = {
    "len": _len,
    "index": _index,
    "slice": _slice,
    "print": _sprint,
    "printf": lambda fmt, *args: go_sprintf(_as_str(fmt, "printf"), list(args)),
    "println": lambda *args: " ".join(go_format(a) for a in args) + "\n",
    "not": lambda v: not truth(v),
    "eq": _eq,
    "ne": lambda a, b: not _eq(a, b),
    "lt": lambda a, b: _ordered(a, b, "lt"),
    "le": lambda a, b: _ordered(a, b, "le"),
    "gt": lambda a, b: _ordered(a, b, "gt"),
    "ge": lambda a, b: _ordered(a, b, "ge"),
    "html": _html,
    "js": _js,
    "urlquery": lambda *args: quote_plus(_sprint(*args)),
}
_BUILTIN_NAMES = frozenset([*_BUILTINS, "and", "or"])


class _State:
    __slots__ = ("funcs", "out", "source", "strict", "typed", "vars")

    def __init__(
        self,
        funcs: Mapping[str, Callable[..., Any]],
        out: list[str],
        vars: list[tuple[str, Any]],
        source: str = "",
        typed: bool = False,
        strict: bool = False,
    ) -> None:
        self.funcs = funcs
        self.out = out
        self.vars = vars
        self.source = source
        self.typed = typed
        self.strict = strict

    def lookup(self, name: str) -> Any:
        for vname, value in reversed(self.vars):
            if vname == name:
                return value
        raise TemplateError(f"undefined variable: {name}")

    def assign(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise TemplateError(f"undefined variable: {name}")


def _lookup_field(receiver: Any, name: str, state: _State) -> Any:
    """One step of a field chain.

    Plain mode: JSON objects are maps; a missing key is ``MISSING`` (``<no value>``), or an
    error when ``strict`` (Go's ``missingkey=error``). Typed mode: objects are Go structs
    unless ``GoMap``; a field matches a key ignoring case (``.ID`` finds ``Id``) and a
    missing one is an error, as for Docker's typed structs.
    """
    if receiver is MISSING:
        return MISSING
    if isinstance(receiver, dict):
        if state.typed:
            parent = getattr(receiver, "go_key", "")
            if isinstance(receiver, GoMap):
                return _typed("", receiver[name]) if name in receiver else MISSING
            for key in receiver:
                if GO_FIELD_NAMES.get(key, key) == name:
                    return _typed(key, receiver[key], parent)
            go_type = getattr(receiver, "go_type", "struct")
            raise TemplateError(f"can't evaluate field {name} in type {go_type}")
        if name in receiver:
            return receiver[name]
        if state.strict:
            raise TemplateError(f'map has no entry for key "{name}"')
        return MISSING
    if isinstance(receiver, TypedNil) and receiver.kind == "map":
        return MISSING
    if isinstance(receiver, TemplateObject):
        try:
            return receiver.template_field(name)
        except KeyError:
            pass
        type_name = getattr(receiver, "go_type", type(receiver).__name__)
        raise TemplateError(f"can't evaluate field {name} in type {type_name}")
    if receiver is None:
        if not state.typed:
            raise TemplateError(f"nil pointer evaluating interface {{}}.{name}")
        raise TemplateError(f"nil pointer evaluating *struct.{name}")
    # values decoded into map[string]interface{} are all of type interface {}
    type_name = _go_type_name(receiver) if state.typed else "interface {}"
    raise TemplateError(f"can't evaluate field {name} in type {type_name}")


class Template:
    """A parsed template; ``execute`` it against data (any JSON value or TemplateObject)."""

    def __init__(
        self,
        source: str,
        body: list[_Node],
        funcs: Mapping[str, Callable[..., Any]],
        name: str = "",
    ) -> None:
        self.name = name
        self.source = source
        self._body = body
        self._funcs = funcs

    def execute(
        self,
        data: Any,
        *,
        funcs: Mapping[str, Callable[..., Any]] | None = None,
        typed: bool = False,
        strict: bool = False,
    ) -> str:
        out: list[str] = []
        self.execute_into(out, data, funcs=funcs, typed=typed, strict=strict)
        return "".join(out)

    def execute_into(
        self,
        out: list[str],
        data: Any,
        *,
        funcs: Mapping[str, Callable[..., Any]] | None = None,
        typed: bool = False,
        strict: bool = False,
    ) -> None:
        """Execute, appending output to ``out`` (kept when an error is raised midway).

        ``typed``: treat JSON objects as Docker's Go structs (see ``_lookup_field``);
        ``strict``: a missing map key is an error (Go's ``missingkey=error``).
        """
        merged = dict(self._funcs)
        if not typed and "json" in merged and merged["json"] is _json_func:
            merged["json"] = _json_func_map
        if funcs:
            merged.update(funcs)
        state = _State(merged, out, [("$", data)], self.source, typed, strict)
        self._walk_list(state, self._body, data)

    # -- walking -----------------------------------------------------------------

    def _error(self, node: _Node, message: str) -> TemplateError:
        line = self.source.count("\n", 0, node.pos) + 1
        col = node.pos - (self.source.rfind("\n", 0, node.pos) + 1)
        return TemplateError(
            f'template: {self.name}:{line}:{col}: executing "{self.name}" at '
            f"<{self._snippet(node)}>: {message}"
        )

    def _snippet(self, node: _Node) -> str:
        if isinstance(node, _Field):
            return "." + ".".join(node.names)
        if isinstance(node, _Var):
            return node.name + "".join("." + n for n in node.names)
        if isinstance(node, _Ident):
            return node.name
        if isinstance(node, _Action):
            return self._snippet(node.pipe)
        if isinstance(node, _Pipe):
            return " | ".join(" ".join(self._snippet(a) for a in cmd.args) for cmd in node.cmds)
        if isinstance(node, _Literal):
            if node.source == "nil":
                return "nil"
            return json.dumps(node.value) if isinstance(node.value, str) else go_format(node.value)
        if isinstance(node, _Command):
            return " ".join(self._snippet(a) for a in node.args)
        if isinstance(node, _Dot):
            return "."
        if isinstance(node, _Chain):
            return f"({self._snippet(node.node)})." + ".".join(node.names)
        return "?"

    def _walk_list(self, state: _State, nodes: list[_Node], dot: Any) -> None:
        for node in nodes:
            self._walk(state, node, dot)

    def _walk(self, state: _State, node: _Node, dot: Any) -> None:
        if isinstance(node, _Text):
            state.out.append(node.text)
        elif isinstance(node, _Action):
            value = self._eval_pipe(state, node.pipe, dot)
            if not node.pipe.decl:
                if value is None and not state.typed:
                    state.out.append("<no value>")  # a nil interface{} in a decoded map
                else:
                    state.out.append(go_format(value, typed=state.typed))
        elif isinstance(node, _Branch):
            self._walk_branch(state, node, dot)
        elif isinstance(node, _LoopControl):
            raise _Break() if node.kind == "break" else _Continue()

    def _walk_branch(self, state: _State, node: _Branch, dot: Any) -> None:
        mark = len(state.vars)
        try:
            if node.kind == "range":
                self._walk_range(state, node, dot)
                return
            value = self._eval_pipe(state, node.pipe, dot)
            if truth(value):
                self._walk_list(state, node.body, value if node.kind == "with" else dot)
            elif node.else_body is not None:
                self._walk_list(state, node.else_body, dot)
        finally:
            del state.vars[mark:]

    def _walk_range(self, state: _State, node: _Branch, dot: Any) -> None:
        pipe = node.pipe
        decl, pipe.decl = pipe.decl, []
        try:
            value = self._eval_pipe(state, pipe, dot)
        finally:
            pipe.decl = decl
        items: list[tuple[Any, Any]]
        if value is None or value is MISSING or isinstance(value, TypedNil):
            items = []
        elif isinstance(value, dict):
            items = [(k, value[k]) for k in sorted(value, key=_sort_key)]
        elif isinstance(value, (list, tuple)):
            items = list(enumerate(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            items = [(i, i) for i in range(value)]
        else:
            raise self._error(node, f"range can't iterate over {go_format(value)}")
        if not items:
            if node.else_body is not None:
                self._walk_list(state, node.else_body, dot)
            return
        mark = len(state.vars)
        for key, elem in items:
            del state.vars[mark:]
            if len(decl) == 1:
                state.vars.append((decl[0], elem))
            elif len(decl) == 2:
                state.vars.append((decl[0], key))
                state.vars.append((decl[1], elem))
            try:
                self._walk_list(state, node.body, elem)
            except _Break:
                break
            except _Continue:
                continue
        del state.vars[mark:]

    def _eval_pipe(self, state: _State, pipe: _Pipe, dot: Any) -> Any:
        value: Any = MISSING
        has_final = False
        for cmd in pipe.cmds:
            value = self._eval_command(state, cmd, dot, value, has_final)
            has_final = True
        for name in pipe.decl:
            if pipe.is_assign:
                state.assign(name, value)
            else:
                state.vars.append((name, value))
        return value

    def _eval_command(
        self, state: _State, cmd: _Command, dot: Any, final: Any, has_final: bool
    ) -> Any:
        first = cmd.args[0]
        rest = cmd.args[1:]
        if isinstance(first, _Ident):
            return self._call(state, first, rest, dot, final, has_final, cmd)
        if isinstance(first, (_Field, _Var, _Chain)):
            return self._eval_chain(state, first, rest, dot, final, has_final)
        if isinstance(first, _Literal) and first.source == "nil":
            raise self._error(first, "nil is not a command")
        if rest or has_final:
            raise self._error(first, "can't give argument to non-function " + self._snippet(first))
        return self._eval_arg(state, first, dot)

    def _eval_chain(
        self,
        state: _State,
        node: _Node,
        args: list[_Node],
        dot: Any,
        final: Any,
        has_final: bool,
    ) -> Any:
        if isinstance(node, _Field):
            receiver, names = dot, node.names
        elif isinstance(node, _Var):
            try:
                receiver = state.lookup(node.name)
            except TemplateError as exc:
                raise self._error(node, str(exc)) from exc
            names = node.names
            if not names:
                if args or has_final:
                    raise self._error(node, "can't give argument to non-function " + node.name)
                return receiver
        else:
            assert isinstance(node, _Chain)
            receiver = self._eval_arg(state, node.node, dot)
            names = node.names
        try:
            for name in names[:-1]:
                receiver = self._resolve(_lookup_field(receiver, name, state))
            value = _lookup_field(receiver, names[-1], state)
        except TemplateError as exc:
            raise self._error(node, str(exc)) from exc
        if callable(value) and not isinstance(value, type):
            call_args = [self._eval_arg(state, a, dot) for a in args]
            if has_final:
                call_args.append(final)
            try:
                return value(*call_args)
            except TemplateError as exc:
                raise self._error(node, str(exc)) from exc
            except TypeError as exc:
                raise self._error(node, f"wrong number of args for {names[-1]}") from exc
        if args or has_final:
            raise self._error(node, f"{names[-1]} is not a method but has arguments")
        return value

    @staticmethod
    def _resolve(value: Any) -> Any:
        # A method used mid-chain is called without arguments (Go allows niladic methods).
        if callable(value) and not isinstance(value, type):
            return value()
        return value

    def _call(
        self,
        state: _State,
        ident: _Ident,
        args: list[_Node],
        dot: Any,
        final: Any,
        has_final: bool,
        cmd: _Command | None = None,
    ) -> Any:
        name = ident.name
        where: _Node = cmd if cmd is not None else ident
        if name in ("and", "or"):
            nodes = list(args)
            if not nodes and not has_final:
                raise self._error(ident, f"wrong number of args for {name}: want at least 1 got 0")
            value: Any = MISSING
            for a in nodes:
                value = self._eval_arg(state, a, dot)
                if (name == "and") != truth(value):
                    return value
            if has_final:
                value = final
            return value
        fn = state.funcs.get(name) or _BUILTINS.get(name)
        if fn is None:
            raise self._error(where, f'function "{name}" not defined')
        call_args = [self._eval_arg(state, a, dot) for a in args]
        if has_final:
            call_args.append(final)
        # a missing key passed to a function arrives as the zero value, nil
        call_args = [None if a is MISSING else a for a in call_args]
        try:
            return fn(*call_args)
        except TemplateError as exc:
            raise self._error(where, f"error calling {name}: {exc}") from exc
        except TypeError as exc:
            raise self._error(where, f"wrong number of args for {name}: {exc}") from exc
        except (ValueError, KeyError, AttributeError) as exc:
            raise self._error(where, f"error calling {name}: {exc}") from exc

    def _eval_arg(self, state: _State, node: _Node, dot: Any) -> Any:
        if isinstance(node, _Literal):
            return node.value
        if isinstance(node, _Dot):
            return dot
        if isinstance(node, (_Field, _Var, _Chain)):
            return self._eval_chain(state, node, [], dot, None, False)
        if isinstance(node, _Pipe):
            return self._eval_pipe(state, node, dot)
        if isinstance(node, _Ident):
            return self._call(state, node, [], dot, None, False)
        raise self._error(node, "can't handle node")


def parse(
    text: str, funcs: Mapping[str, Callable[..., Any]] | None = None, name: str = ""
) -> Template:
    """Parse ``text``; ``funcs`` add to (or replace) docker's template functions.

    Raises ``TemplateError`` with Go's wording (``template: :1: function "x" not defined``).
    """
    merged: dict[str, Callable[..., Any]] = dict(BASIC_FUNCS)
    if funcs:
        merged.update(funcs)
    lexer = _Lexer(text, name)
    lexer.run()
    body = _Parser(lexer, merged).parse()
    return Template(text, body, merged, name)


def render(text: str, data: Any, funcs: Mapping[str, Callable[..., Any]] | None = None) -> str:
    """Parse and execute in one go."""
    return parse(text, funcs).execute(data)
