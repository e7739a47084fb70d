"""Scopes and access-control lists: who may do what to which resource. Pure, no I/O.

A scope is Docker's token-spec triple ``type:name:actions``, e.g. ``repository:library/busybox:pull,push``
or ``registry:catalog:*``. The same shape is a token's ``access`` claim entry and a request's need.

An ACL is an ordered list of grants; a requester gets the union of the actions of every rule that
matches. A rule matches on:

``account``  omitted: anyone, signed in or not; ``""``: anonymous requests only; otherwise a glob
             over the signed-in user's name (``"*"`` = every signed-in user).
``type``     glob over the resource type, default ``repository``.
``name``     glob over the resource name, default ``*``; ``${account}`` is replaced by the user's
             name (such a rule never matches anonymous requests).
``actions``  what is granted: ``pull``, ``push``, ``delete``, or ``*`` for every action.

Globs are :func:`fnmatch.fnmatchcase` patterns: ``*`` also crosses ``/``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.errors import InvalidArgument

__all__ = [
    "ACL",
    "ANONYMOUS_PULL",
    "EVERYONE_SIGNED_IN",
    "Rule",
    "Scope",
    "covers",
    "merge",
    "parse_scope",
    "parse_scopes",
]

_ACTION = re.compile(r"^[a-z*]+$")
_TYPE = re.compile(r"^[a-z0-9]+(\([a-z0-9]+\))?$")


@dataclass(frozen=True)
class Scope:
    """Actions on one typed, named resource."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def claim(self) -> dict[str, Any]:
        """The token ``access`` claim entry for this scope."""
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}

    @property
    def pull_only(self) -> bool:
        return self.type == "repository" and self.actions == frozenset({"pull"})


def parse_scope(text: str) -> Scope:
    """``type:name:a,b`` → Scope. The name may hold ``:`` (``host:port/repo``). Raises InvalidArgument."""
    head, sep, actions = text.rpartition(":")
    rtype, sep2, name = head.partition(":")
    if not sep or not sep2 or not name or not _TYPE.match(rtype):
        raise InvalidArgument(f"invalid scope {text!r}: want type:name:actions")
    # A resource class (``repository(plugin)``) narrows the type; access is decided by the type.
    rtype = rtype.split("(", 1)[0]
    parsed = frozenset(a for a in actions.split(",") if a)
    if not all(_ACTION.match(a) for a in parsed):
        raise InvalidArgument(f"invalid actions in scope {text!r}")
    return Scope(rtype, name, parsed)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Every scope in query values, each possibly space-separated (OAuth2's ``scope``), merged."""
    return merge(parse_scope(part) for value in values for part in value.split())


def merge(scopes: Iterable[Scope]) -> list[Scope]:
    """Scopes on the same resource folded into one, in first-seen order."""
    folded: dict[tuple[str, str], frozenset[str]] = {}
    for scope in scopes:
        key = (scope.type, scope.name)
        folded[key] = folded.get(key, frozenset()) | scope.actions
    return [Scope(t, n, a) for (t, n), a in folded.items()]


def _permits(granted: frozenset[str], wanted: frozenset[str]) -> frozenset[str]:
    return wanted if "*" in granted else wanted & granted


def covers(granted: Iterable[Scope], wanted: Scope) -> bool:
    """Whether the granted scopes allow every action of ``wanted``."""
    have: frozenset[str] = frozenset()
    for scope in granted:
        if scope.type == wanted.type and scope.name == wanted.name:
            have |= scope.actions
    return _permits(have, wanted.actions) == wanted.actions


@dataclass(frozen=True)
class Rule:
    """One grant of an ACL (see the module docstring for matching)."""

    actions: frozenset[str]
    account: str | None = None
    type: str = "repository"
    name: str = "*"

    def allows(self, account: str | None, rtype: str, name: str) -> frozenset[str]:
        if self.account is not None:
            if account is None:
                if self.account != "":
                    return frozenset()
            elif self.account == "" or not fnmatch.fnmatchcase(account, self.account):
                return frozenset()
        pattern = self.name
        if "${account}" in pattern:
            if account is None:
                return frozenset()
            pattern = pattern.replace("${account}", _glob_escape(account))
        if fnmatch.fnmatchcase(rtype, self.type) and fnmatch.fnmatchcase(name, pattern):
            return self.actions
        return frozenset()


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@dataclass(frozen=True)
class ACL:
    """Rules whose grants add up. ``account=None`` below means an anonymous requester."""

    rules: tuple[Rule, ...]

    def allowed(self, account: str | None, rtype: str, name: str) -> frozenset[str]:
        actions: frozenset[str] = frozenset()
        for rule in self.rules:
            actions |= rule.allows(account, rtype, name)
        return actions

    def grant(self, account: str | None, requested: Sequence[Scope]) -> list[Scope]:
        """The part of each requested scope the ACL allows; scopes with nothing granted drop out."""
        granted = []
        for scope in requested:
            actions = _permits(self.allowed(account, scope.type, scope.name), scope.actions)
            if actions:
                granted.append(Scope(scope.type, scope.name, actions))
        return granted

    def permits(self, account: str | None, wanted: Scope) -> bool:
        allowed = self.allowed(account, wanted.type, wanted.name)
        return _permits(allowed, wanted.actions) == wanted.actions

    def with_rule(self, rule: Rule) -> ACL:
        return ACL((*self.rules, rule))

    @classmethod
    def parse(cls, raw: object, *, where: str = "acl") -> ACL:
        """Rules from config (a list of mappings). Raises InvalidArgument naming the bad entry."""
        if not isinstance(raw, list):
            raise InvalidArgument(f"{where} must be a list of rules")
        return cls(tuple(_parse_rule(entry, f"{where}[{i}]") for i, entry in enumerate(raw)))


# Signed-in users may do everything: what CNCF distribution's htpasswd auth does.
EVERYONE_SIGNED_IN = ACL((Rule(frozenset({"*"}), account="*", type="*", name="*"),))
ANONYMOUS_PULL = Rule(frozenset({"pull"}))


def _parse_rule(entry: object, where: str) -> Rule:
    if not isinstance(entry, Mapping):
        raise InvalidArgument(f"{where} must be a mapping")
    unknown = set(entry) - {"account", "type", "name", "actions"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown keys {sorted(unknown)}")
    actions = entry.get("actions")
    if isinstance(actions, str):
        actions = [actions]
    if not isinstance(actions, list) or not all(
        isinstance(a, str) and _ACTION.match(a) for a in actions
    ):
        raise InvalidArgument(f"{where}: actions must be a list like [pull, push]")
    account = entry.get("account")
    for key, value in (
        ("account", account),
        ("type", entry.get("type", "")),
        ("name", entry.get("name", "")),
    ):
        if value is not None and not isinstance(value, str):
            raise InvalidArgument(f"{where}: {key} must be a string")
    return Rule(
        actions=frozenset(actions),
        account=account,
        type=str(entry.get("type", "repository")),
        name=str(entry.get("name", "*")),
    )
