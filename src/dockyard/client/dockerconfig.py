"""The docker CLI's client configuration (``config.json``) and its credential stores.

Same file and same rules as the docker CLI 28, so ``docker login`` and ``dockyard login``
share credentials both ways:

- **Where.** ``--config DIR``, else ``$DOCKYARD_CONFIG``, else ``$DOCKER_CONFIG``, else
  ``~/.docker``; the file is ``config.json`` in that directory.
- **Keys.** Docker Hub is ``https://index.docker.io/v1/``; every other registry is its
  ``host[:port]``. Older files may hold ``http(s)://host/...`` keys; lookups fall back to
  comparing hostnames, as docker does.
- **``auths``.** ``{"auth": base64("user:pass"), "identitytoken": ...}`` per registry.
- **Credential helpers.** ``credHelpers[registry]``, else ``credsStore``, names a
  ``docker-credential-<name>`` program that keeps the secret (the docker-credential-helpers
  protocol: ``get``/``erase`` read the server URL on stdin, ``store`` reads
  ``{"ServerURL","Username","Secret"}``; ``Username`` ``<token>`` marks an identity token).
  ``auths`` then keeps an empty entry for the registry. When the file names no credentials
  at all, ``pass`` or ``secretservice`` is picked if its helper is installed (docker's
  ``DetectDefaultStore``).
- **Writes.** Unknown keys are kept. The file is replaced atomically (temp file in the same
  directory, fsync, rename; symlinks are followed) with mode 0600.

Errors (all ``DockyardError``)::

    ConfigFileError          config.json exists but cannot be read or parsed (load keeps
                             going with an empty config and reports it in ``warning``,
                             which callers print, as docker does)
    CredentialHelperError    a helper failed; message worded like docker's
    └── CredentialsNotFound  the helper has nothing for that server

Loading runs no helper; ``get``/``store``/``erase`` on a helper store run it (with a timeout).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from dockyard.errors import DockyardError

from .wire import go_json

__all__ = [
    "CONFIG_FILE_NAME",
    "DEFAULT_NAMESPACE",
    "EMPTY_AUTH",
    "INDEX_SERVER",
    "AuthConfig",
    "ConfigFile",
    "ConfigFileError",
    "CredentialHelperError",
    "CredentialStore",
    "CredentialsNotFound",
    "FileStore",
    "NativeStore",
    "config_dir",
    "convert_to_hostname",
    "load",
    "registry_key",
]

INDEX_SERVER = "https://index.docker.io/v1/"
DEFAULT_NAMESPACE = "docker.io"
CONFIG_FILE_NAME = "config.json"
EMPTY_AUTH = "e30="  # base64url("{}")
HELPER_PREFIX = "docker-credential-"
TOKEN_USERNAME = "<token>"
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
HELPER_TIMEOUT = 120.0  # helpers may wait for a pinentry/keyring prompt


class ConfigFileError(DockyardError):
    """``config.json`` exists but could not be read or parsed."""


class CredentialHelperError(DockyardError):
    """A ``docker-credential-*`` program failed (or could not be run)."""


class CredentialsNotFound(CredentialHelperError):
    """The helper holds no credentials for the server (not an error for ``get``)."""


# --------------------------------------------------------------------------- auth config


@dataclass(frozen=True)
class AuthConfig:
    """Credentials for one registry, as docker's ``registry.AuthConfig``."""

    username: str = ""
    password: str = ""
    server_address: str = ""
    identity_token: str = ""
    registry_token: str = ""
    email: str = ""

    def to_json(self) -> dict[str, str]:
        """Go's field order with ``omitempty``: what ``POST /auth`` and the header carry."""
        pairs = (
            ("username", self.username),
            ("password", self.password),
            ("email", self.email),
            ("serveraddress", self.server_address),
            ("identitytoken", self.identity_token),
            ("registrytoken", self.registry_token),
        )
        return {key: value for key, value in pairs if value}

    def encode(self) -> str:
        """``X-Registry-Auth``: base64url with padding of the JSON (``e30=`` when empty)."""
        raw = go_json(self.to_json()).encode()
        return base64.urlsafe_b64encode(raw).decode("ascii")

    @property
    def has_secret(self) -> bool:
        return bool(self.password or self.identity_token)


def _decode_auth(value: str) -> tuple[str, str]:
    """docker's ``decodeAuth``: base64 "user:pass"; a bad value fails the whole file."""
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise ConfigFileError("illegal base64 data in 'auth'") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise ConfigFileError("Invalid auth configuration file")
    return user, password.strip("\x00")


def _encode_entry(auth: AuthConfig) -> dict[str, str]:
    """One ``auths`` entry as docker saves it (username/password folded into ``auth``)."""
    entry: dict[str, str] = {}
    if auth.username or auth.password:
        entry["auth"] = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    if auth.email:
        entry["email"] = auth.email
    if auth.identity_token:
        entry["identitytoken"] = auth.identity_token
    if auth.registry_token:
        entry["registrytoken"] = auth.registry_token
    return entry


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _decode_entry(key: str, obj: Any) -> AuthConfig:
    if not isinstance(obj, dict):
        raise ConfigFileError(f"invalid entry for {key!r} in auths")
    lowered = {str(k).lower(): v for k, v in obj.items()}
    username, password = _text(lowered, "username"), _text(lowered, "password")
    encoded = _text(lowered, "auth")
    if encoded:
        username, password = _decode_auth(encoded)
    return AuthConfig(
        username=username,
        password=password,
        server_address=key,
        identity_token=_text(lowered, "identitytoken"),
        registry_token=_text(lowered, "registrytoken"),
        email=_text(lowered, "email"),
    )


# --------------------------------------------------------------------------- names


def config_dir(override: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The client config directory: ``--config``, ``DOCKYARD_CONFIG``, ``DOCKER_CONFIG``,
    else ``~/.docker``."""
    environ = os.environ if env is None else env
    chosen = override or environ.get("DOCKYARD_CONFIG") or environ.get("DOCKER_CONFIG")
    if chosen:
        return Path(chosen)
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def convert_to_hostname(address: str) -> str:
    """docker's ``ConvertToHostname``: ``http://h:5000/v2/`` → ``h:5000``; ``h/x`` → ``h``."""
    if "://" in address:
        rest = address.split("://", 1)[1]
        host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        host = host.rsplit("@", 1)[-1]
        if host:
            return host
    return address.split("/", 1)[0]


def registry_key(domain: str) -> str:
    """The config key for a reference's registry (docker's ``ResolveAuthConfig``)."""
    return INDEX_SERVER if domain in (DEFAULT_NAMESPACE, "index.docker.io") else domain


# --------------------------------------------------------------------------- stores


class CredentialStore(Protocol):
    """Where one registry's credentials live (docker's ``credentials.Store``)."""

    def get(self, server: str) -> AuthConfig:
        """The credentials for ``server``; an empty ``AuthConfig`` when there are none.
        Raises ``CredentialHelperError`` when a helper fails."""
        ...

    def store(self, auth: AuthConfig) -> bool:
        """Save ``auth`` under ``auth.server_address``; ``True`` if anything changed.
        Raises ``CredentialHelperError`` or ``OSError``."""
        ...

    def erase(self, server: str) -> None:
        """Forget ``server``. Raises ``CredentialsNotFound`` (helper has nothing),
        ``CredentialHelperError`` or ``OSError``; a file store never raises not-found."""
        ...


class FileStore:
    """Credentials in ``config.json`` itself (base64, not encrypted)."""

    def __init__(self, config: ConfigFile) -> None:
        self.config = config

    def get(self, server: str) -> AuthConfig:
        auths = self.config.auths
        found = auths.get(server)
        if found is not None:
            return found
        for key, auth in auths.items():
            if convert_to_hostname(key) == server:
                return auth
        return AuthConfig()

    def store(self, auth: AuthConfig) -> bool:
        if self.config.auths.get(auth.server_address) == auth:
            return False  # unchanged: docker does not rewrite the file
        self.config.auths[auth.server_address] = auth
        self.config.save()
        return True

    def erase(self, server: str) -> None:
        if server in self.config.auths:
            del self.config.auths[server]
            self.config.save()


class NativeStore:
    """Credentials kept by a ``docker-credential-<helper>`` program; ``config.json`` keeps
    only an empty entry per registry (and the e-mail, if any)."""

    def __init__(self, config: ConfigFile, helper: str, *, timeout: float = HELPER_TIMEOUT) -> None:
        self.config = config
        self.helper = helper
        self.program = HELPER_PREFIX + helper
        self.timeout = timeout
        self.file = FileStore(config)

    def _run(self, action: str, data: str, verb: str) -> str:
        try:
            proc = subprocess.run(
                [self.program, action],
                input=data.encode(),
                stdout=subprocess.PIPE,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            err = f'exec: "{self.program}": executable file not found in $PATH'
            raise CredentialHelperError(f"error {verb} credentials - err: {err}, out: ``") from None
        except PermissionError:
            err = f'exec: "{self.program}": permission denied'
            raise CredentialHelperError(f"error {verb} credentials - err: {err}, out: ``") from None
        except subprocess.TimeoutExpired:
            raise CredentialHelperError(
                f"error {verb} credentials - err: {self.program} timed out after "
                f"{self.timeout:g}s, out: ``"
            ) from None
        out = proc.stdout.decode("utf-8", "replace")
        if proc.returncode != 0:
            text = out.strip()
            if text == NOT_FOUND_MESSAGE:
                raise CredentialsNotFound(text)
            status = (
                f"exit status {proc.returncode}"
                if proc.returncode > 0
                else f"signal: {-proc.returncode}"
            )
            raise CredentialHelperError(f"error {verb} credentials - err: {status}, out: `{text}`")
        return out

    def get(self, server: str) -> AuthConfig:
        base = self.file.get(server)
        try:
            out = self._run("get", server, "getting")
        except CredentialsNotFound:
            return replace(base, username="", password="", identity_token="", server_address="")
        try:
            creds = json.loads(out)
        except ValueError as exc:
            raise CredentialHelperError(
                f"error getting credentials - err: invalid JSON from {self.program}: {exc}"
            ) from None
        if not isinstance(creds, dict):
            raise CredentialHelperError(
                f"error getting credentials - err: invalid JSON from {self.program}"
            )
        username, secret = _text(creds, "Username"), _text(creds, "Secret")
        if username == TOKEN_USERNAME:
            return replace(
                base, username="", password="", identity_token=secret, server_address=server
            )
        return replace(
            base, username=username, password=secret, identity_token="", server_address=server
        )

    def store(self, auth: AuthConfig) -> bool:
        username, secret = auth.username, auth.password
        if auth.identity_token:
            username, secret = TOKEN_USERNAME, auth.identity_token
        payload = (
            go_json({"ServerURL": auth.server_address, "Username": username, "Secret": secret})
            + "\n"
        )
        self._run("store", payload, "storing")
        self.file.store(replace(auth, username="", password="", identity_token=""))
        return True

    def erase(self, server: str) -> None:
        self._run("erase", server, "erasing")
        self.file.erase(server)


# --------------------------------------------------------------------------- the file


def _detect_default_store() -> str:
    """docker's ``DetectDefaultStore`` on Linux: ``pass`` if installed, else
    ``secretservice``; used only if its ``docker-credential-*`` helper is on PATH."""
    default = "pass" if shutil.which("pass") else "secretservice"
    return default if shutil.which(HELPER_PREFIX + default) else ""


class ConfigFile:
    """One ``config.json``: its credentials decoded, every other key kept as read.

    ``warning`` is set (and the content left empty) when the file exists but is unusable;
    docker prints it and carries on, and so do we.
    """

    def __init__(self, path: Path, data: Mapping[str, Any] | None = None) -> None:
        self.path = path
        self.warning: str | None = None
        self.raw: dict[str, Any] = dict(data or {})
        self.auths: dict[str, AuthConfig] = {}
        self.creds_store = ""
        self.cred_helpers: dict[str, str] = {}
        self._decode()

    def _decode(self) -> None:
        auths = self.raw.get("auths")
        if auths is not None and not isinstance(auths, dict):
            raise ConfigFileError("'auths' must be a JSON object")
        self.auths = {str(k): _decode_entry(str(k), v) for k, v in (auths or {}).items()}
        store = self.raw.get("credsStore")
        self.creds_store = store if isinstance(store, str) else ""
        helpers = self.raw.get("credHelpers")
        if isinstance(helpers, dict):
            self.cred_helpers = {str(k): v for k, v in helpers.items() if isinstance(v, str) and v}

    @property
    def contains_auth(self) -> bool:
        return bool(self.creds_store or self.cred_helpers or self.auths)

    # -- credentials ---------------------------------------------------------------------

    def store_for(self, server: str) -> CredentialStore:
        """``credHelpers[server]``, else ``credsStore``, else the file itself."""
        helper = self.cred_helpers.get(server) if server else None
        helper = helper or self.creds_store
        if helper:
            return NativeStore(self, helper)
        return FileStore(self)

    def get_auth(self, server: str) -> AuthConfig:
        """Credentials for a config key (``registry_key``). Raises ``CredentialHelperError``."""
        return self.store_for(server).get(server)

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out = dict(self.raw)
        out["auths"] = {key: _encode_entry(auth) for key, auth in self.auths.items()}
        if self.creds_store:
            out["credsStore"] = self.creds_store
        else:
            out.pop("credsStore", None)
        if self.cred_helpers or "credHelpers" in out:
            out["credHelpers"] = dict(self.cred_helpers)
        if "auths" not in self.raw:
            # docker writes "auths" first; keep the user's order otherwise.
            out = {"auths": out.pop("auths"), **out}
        return out

    def save(self) -> None:
        """Replace the file atomically (0600), creating its directory (0700) if needed.

        Raises ``OSError``."""
        target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        directory = target.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        payload = go_json(self.to_json(), indent="\t").encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fchmod(fh.fileno(), 0o600)
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        with contextlib.suppress(OSError):
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.raw = self.to_json()


def load(directory: Path, *, detect_store: bool = True) -> ConfigFile:
    """Read ``directory/config.json`` (a missing file is an empty config).

    Never raises for a bad file: the result is empty and ``warning`` says why, worded like
    docker's ``WARNING: Error parsing config file (PATH): REASON``.
    """
    path = directory / CONFIG_FILE_NAME
    config: ConfigFile
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        config = ConfigFile(path)
    except OSError as exc:
        config = ConfigFile(path)
        config.warning = f"Error loading config file: {path}: {exc.strerror or exc}"
    else:
        try:
            data = json.loads(text) if text.strip() else {}
            if not isinstance(data, dict):
                raise ConfigFileError("config file must hold a JSON object")
            config = ConfigFile(path, data)
        except (ValueError, ConfigFileError) as exc:
            config = ConfigFile(path)
            config.warning = f"Error parsing config file ({path}): {exc}"
    if detect_store and not config.contains_auth:
        config.creds_store = _detect_default_store()
    return config
