"""htpasswd users with bcrypt hashes, the file format of ``htpasswd -B`` and CNCF distribution.

Only bcrypt entries (``$2y$``, ``$2b$``, ``$2a$``) are accepted, as in distribution: MD5-crypt,
SHA1 and crypt(3) entries are skipped with a warning. The file is re-read when its modification
time changes, so users can be added without a restart.

bcrypt is slow by design (tens of milliseconds at the usual costs), so checks run in a worker
thread and successful checks are remembered for a while, keyed by a digest of the credentials
and the hash they matched: a changed password or a removed user is never served from memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import OrderedDict
from pathlib import Path

import bcrypt

from dockyard.errors import InvalidArgument

__all__ = ["Htpasswd", "parse_htpasswd"]

log = logging.getLogger(__name__)

_BCRYPT_PREFIXES = (b"$2y$", b"$2b$", b"$2a$")
# Checked against when the user does not exist, so that unknown users cost as much as known ones.
_DUMMY_HASH = bcrypt.hashpw(b"dockyard", bcrypt.gensalt(rounds=5))
_CACHE_SIZE = 1024
_CACHE_SECONDS = 300.0


def parse_htpasswd(text: str, *, source: str = "htpasswd") -> dict[str, bytes]:
    """``user:hash`` lines → {user: bcrypt hash}. Blank lines and ``#`` comments are ignored."""
    users: dict[str, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user:
            raise InvalidArgument(f"{source}:{number}: want user:hash")
        encoded = hashed.encode("ascii", "replace")
        if not encoded.startswith(_BCRYPT_PREFIXES):
            log.warning("%s:%d: user %s has a non-bcrypt hash; skipped", source, number, user)
            continue
        users[user] = encoded
    return users


class Htpasswd:
    """Users from an htpasswd file; ``await check(user, password)`` is the one question it answers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked_at = 0.0
        self._salt = os.urandom(16)
        self._cache: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._reload()

    def _reload(self) -> None:
        """Re-read the file if it changed. Raises InvalidArgument if it is missing at start."""
        try:
            st = self.path.stat()
        except OSError as exc:
            if self._stamp is None:
                raise InvalidArgument(f"cannot read htpasswd file {self.path}: {exc}") from exc
            log.warning("htpasswd file %s vanished; keeping the users read before", self.path)
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"cannot read htpasswd file {self.path}: {exc}") from exc
        self._users = parse_htpasswd(text, source=str(self.path))
        self._stamp = stamp

    def _fresh_users(self) -> dict[str, bytes]:
        now = time.monotonic()
        if now - self._checked_at >= 1.0:
            self._checked_at = now
            try:
                self._reload()
            except InvalidArgument as exc:
                log.warning("%s; keeping the users read before", exc)
        return self._users

    def __contains__(self, user: str) -> bool:
        return user in self._fresh_users()

    async def check(self, user: str, password: str) -> bool:
        """Whether the password is the user's. Never raises for wrong input."""
        hashed = self._fresh_users().get(user)
        # bcrypt reads 72 bytes at most; htpasswd and bcrypt<5 truncate, bcrypt>=5 would raise.
        secret = password.encode("utf-8", "surrogateescape")[:72]
        if hashed is None:
            await asyncio.to_thread(bcrypt.checkpw, secret, _DUMMY_HASH)
            return False
        key = hashlib.sha256(
            self._salt + user.encode("utf-8", "surrogateescape") + b"\0" + secret
        ).digest()
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] == hashed and now - cached[1] < _CACHE_SECONDS:
            return True
        try:
            ok = await asyncio.to_thread(bcrypt.checkpw, secret, hashed)
        except ValueError:
            log.warning("htpasswd file %s: malformed bcrypt hash for %s", self.path, user)
            return False
        if ok:
            self._cache[key] = (hashed, now)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return ok
