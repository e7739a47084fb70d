"""Registry commands: login, logout, push; and the credentials that pull, push and
``run``/``create``'s auto-pull send.

Behaviour measured against the docker CLI 28.2.2 (see ``docker-cli-wire.md`` §6–7):

- ``X-Registry-Auth`` carries the stored credentials for the reference's registry (config
  key ``https://index.docker.io/v1/`` for Docker Hub, else ``host[:port]``) as base64url
  JSON; ``e30=`` when there are none. A failing credential helper means anonymous, as
  docker ignores that error too.
- ``login``: ``POST /auth``; the credentials go to ``credHelpers``/``credsStore`` if one is
  configured, else base64 into ``auths`` (with docker's "stored unencrypted" warning when
  they changed); "Login Succeeded" on stdout. Refused → ``Error response from daemon:
  login attempt to … failed with status: 401 Unauthorized``, exit 1. Without ``-u``/``-p``
  the stored credentials are tried first; prompting needs a terminal.
- ``logout`` makes no request at all: it erases the server's key and its legacy
  ``http(s)://`` spellings and prints "Removing login credentials for SERVER" whether or
  not there was anything to remove (docker 20.10 and 28 both do).
- ``push``: JSON progress rendered by ``progress.display_messages`` (bars on a terminal,
  final states line by line elsewhere); ``-q`` prints only the reference.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from dockyard.errors import DockyardError, Unauthorized

from .common import (
    PROG,
    CLIState,
    DockerCommand,
    StatusError,
    describe_error,
    get_client,
    get_state,
    image_argument,
    require_args,
    usage_error,
)

if TYPE_CHECKING:
    from dockyard.client import Client
    from dockyard.client.dockerconfig import AuthConfig, ConfigFile

__all__ = ["login", "logout", "push", "registry_auth", "registry_auth_for_current"]

_CTX = {"help_option_names": ["-h", "--help"]}

UNENCRYPTED_WARNING = (
    "\nWARNING! Your credentials are stored unencrypted in '{path}'.\n"
    "Configure a credential helper to remove this warning. See\n"
    "https://docs.docker.com/go/credential-store/\n\n"
)
REGISTER_SUGGEST = (
    "Log in with your Docker ID or email address to push and pull images from Docker Hub. "
    "If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.\n"
    "You can log in with your password or a Personal Access Token (PAT). Using a "
    "limited-scope PAT grants better security and is required for organizations using SSO. "
    "Learn more at https://docs.docker.com/go/access-tokens/\n\n"
)


# --------------------------------------------------------------------------- credentials


def registry_auth(state: CLIState, domain: str) -> str:
    """``X-Registry-Auth`` for a reference's registry domain (``docker.io``, ``host:port``)."""
    from dockyard.client.dockerconfig import EMPTY_AUTH, registry_key

    try:
        auth = state.docker_config().get_auth(registry_key(domain))
    except DockyardError:
        return EMPTY_AUTH
    return auth.encode()


def registry_auth_for_current(domain: str) -> str:
    """``registry_auth`` with the running command's global options (``--config``)."""
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(CLIState) if ctx is not None else None
    return registry_auth(state or CLIState(), domain)


def _write_err(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(text)
    sys.stderr.flush()


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _store_credentials(config: ConfigFile, auth: AuthConfig) -> None:
    from dockyard.client.dockerconfig import FileStore

    store = config.store_for(auth.server_address)
    try:
        changed = store.store(auth)
    except DockyardError as exc:
        raise StatusError(1, f"Error saving credentials: {exc}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        raise StatusError(1, f"Error saving credentials: {where}{reason.lower()}") from exc
    if changed and auth.password and isinstance(store, FileStore):
        _write_err(UNENCRYPTED_WARNING.format(path=config.path))


# --------------------------------------------------------------------------- login


def _read_line(prompt: str) -> str:
    sys.stdout.write(prompt)
    sys.stdout.flush()
    line = sys.stdin.readline()
    if not line:
        raise StatusError(1, "EOF")
    return line.rstrip("\r\n").strip()


def _read_secret(prompt: str) -> str:
    """Read a line from stdin with echo off (stdin is a terminal here)."""
    import termios

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    quiet = list(saved)
    quiet[3] = quiet[3] & ~termios.ECHO
    # Echo goes off before the prompt shows (as getpass does): whatever is typed once the
    # prompt is visible must not be echoed.
    termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
    sys.stdout.write(prompt)
    sys.stdout.flush()
    try:
        line = sys.stdin.readline()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
    sys.stdout.write("\n")
    sys.stdout.flush()
    if not line:
        raise StatusError(1, "EOF")
    return line.rstrip("\r\n")


def _prompt_credentials(
    username: str, password: str, default_username: str, server: str
) -> AuthConfig:
    """docker's ``PromptUserForCredentials`` (stdin is a terminal)."""
    from dockyard.client.dockerconfig import INDEX_SERVER, AuthConfig

    username = username.strip()
    if not username:
        if server == INDEX_SERVER:
            sys.stdout.write(REGISTER_SUGGEST)
        default_username = default_username.strip()
        label = f"Username ({default_username}): " if default_username else "Username: "
        username = _read_line(label) or default_username
        if not username:
            raise StatusError(1, "Error: Non-null Username Required")
    if not password.strip():
        password = _read_secret("Password: ")
        if not password:
            raise StatusError(1, "Error: Password Required")
    return AuthConfig(username=username, password=password, server_address=server)


def _with_token(auth: AuthConfig, response: dict[str, object]) -> AuthConfig:
    from dataclasses import replace

    token = response.get("IdentityToken")
    if isinstance(token, str) and token:
        return replace(auth, password="", identity_token=token)
    return auth


def _login_with_stored(client: Client, config: ConfigFile, auth: AuthConfig) -> str | None:
    """Try the stored credentials; the daemon's status, or ``None`` if they were refused."""
    text = "Authenticating with existing credentials..."
    if auth.username:
        text += f" [Username: {auth.username}]"
    text += (
        f"\n\n Info -> To login with a different account, run '{PROG} logout' followed by "
        f"'{PROG} login'\n\n\n"
    )
    _write_err(text)
    failed: DockyardError | None = None
    response: dict[str, object] = {}
    try:
        response = client.registry_login(auth.to_json())
    except DockyardError as exc:
        failed = exc
        if isinstance(exc, Unauthorized):
            _write_err("Stored credentials invalid or expired\n")
        else:
            _write_err(f"Login did not succeed, error: {describe_error(exc)}\n")
    _store_credentials(config, _with_token(auth, response))
    if failed is not None:
        return None
    status = response.get("Status")
    return status if isinstance(status, str) else ""


@click.command(
    cls=DockerCommand,
    usage="login [OPTIONS] [SERVER]",
    context_settings=_CTX,
    short_help="Authenticate to a registry",
    help="Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.",
)
@click.option("-p", "--password", default="", help="Password or Personal Access Token (PAT)")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Take the Password or Personal Access Token (PAT) from stdin",
)
@click.option("-u", "--username", default="", help="Username")
@click.argument("args", nargs=-1)
@click.pass_context
def login(
    ctx: click.Context, password: str, password_stdin: bool, username: str, args: tuple[str, ...]
) -> None:
    """Authenticate to a registry."""
    from dataclasses import replace

    from dockyard.client.dockerconfig import (
        DEFAULT_NAMESPACE,
        INDEX_SERVER,
        AuthConfig,
        convert_to_hostname,
    )

    if len(args) > 1:
        usage_error(ctx, "requires at most 1 argument")
    if password:
        _write_err("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
        if password_stdin:
            raise StatusError(
                1, "conflicting options: cannot specify both --password and --password-stdin"
            )
    if password_stdin:
        if not username:
            raise StatusError(1, "the --password-stdin option requires --username to be set")
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")

    given = args[0] if args else ""
    server = given if given and given != DEFAULT_NAMESPACE else INDEX_SERVER
    key = server if server == INDEX_SERVER else convert_to_hostname(server)
    state = get_state(ctx)
    config = state.docker_config()
    client = get_client(ctx)

    stored = AuthConfig(server_address=key)
    lookup_failed = False
    if not username and not password:
        try:
            found = config.get_auth(key)
        except DockyardError:
            lookup_failed = True
        else:
            stored = replace(found, server_address=key, identity_token="")

    status: str | None = None
    if not lookup_failed and stored.username and stored.password:
        status = _login_with_stored(client, config, stored)
    if status is None:
        if (not username or not password) and not _stdin_is_terminal():
            raise StatusError(1, "Error: Cannot perform an interactive login from a non TTY device")
        auth = _prompt_credentials(username, password, stored.username, key)
        response = client.registry_login(auth.to_json())
        _store_credentials(config, _with_token(auth, response))
        value = response.get("Status")
        status = value if isinstance(value, str) else ""
    if status:
        click.echo(status)


# --------------------------------------------------------------------------- logout


@click.command(
    cls=DockerCommand,
    usage="logout [SERVER]",
    context_settings=_CTX,
    short_help="Log out from a registry",
    help="Log out from a registry.\nIf no server is specified, the default is defined by the daemon.",
)
@click.argument("args", nargs=-1)
@click.pass_context
def logout(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Log out from a registry (no request to the daemon)."""
    from dockyard.client.dockerconfig import INDEX_SERVER, CredentialsNotFound, convert_to_hostname

    if len(args) > 1:
        usage_error(ctx, "requires at most 1 argument")
    server = args[0] if args else ""
    if not server:
        keys = [INDEX_SERVER]
        shown = INDEX_SERVER
    else:
        shown = convert_to_hostname(server)
        # Older clients saved some registries under these spellings.
        keys = list(dict.fromkeys([server, shown, f"http://{shown}", f"https://{shown}"]))
    config = get_state(ctx).docker_config()
    click.echo(f"Removing login credentials for {shown}")
    failures: dict[str, str] = {}
    for key in keys:
        try:
            config.store_for(key).erase(key)
        except CredentialsNotFound:
            continue
        except DockyardError as exc:
            failures[key] = str(exc)
        except OSError as exc:
            failures[key] = f"{exc.filename or config.path}: {(exc.strerror or str(exc)).lower()}"
    if failures and len(failures) == len(keys):
        lines = ["WARNING: could not erase credentials:"]
        lines += [f"{key}: {message}" for key, message in failures.items()]
        _write_err("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- push


@click.command(
    cls=DockerCommand,
    usage="push [OPTIONS] NAME[:TAG]",
    context_settings=_CTX,
    short_help="Upload an image to a registry",
)
@click.option("-a", "--all-tags", is_flag=True, help="Push all tags of an image to the repository")
@click.option(
    "--disable-content-trust",
    is_flag=True,
    default=True,
    help="Skip image signing (default true)",
)
@click.option("-q", "--quiet", is_flag=True, help="Suppress verbose output")
@click.argument("args", nargs=-1)
@click.pass_context
def push(
    ctx: click.Context,
    all_tags: bool,
    disable_content_trust: bool,
    quiet: bool,
    args: tuple[str, ...],
) -> None:
    """Upload an image to a registry."""
    from dockyard.client import iter_json_messages

    from .progress import JSONMessageError, display_messages
    from .streaming import is_terminal, tty_size

    require_args(ctx, args, exact=1)
    ref = image_argument(args[0], all_tags=all_tags, quiet=quiet)
    if ref.digest is not None:
        raise StatusError(1, "cannot push a digest reference")
    header = registry_auth(get_state(ctx), ref.domain)
    client = get_client(ctx)
    with client.image_push(
        ref.familiar_name, tag=None if all_tags else ref.tag, registry_auth=header
    ) as stream:
        try:
            if quiet:
                with open(os.devnull, "w") as sink:
                    display_messages(iter_json_messages(stream.read), sink, is_terminal=False)
            else:
                display_messages(
                    iter_json_messages(stream.read),
                    sys.stdout,
                    is_terminal=is_terminal(1),
                    width=tty_size(1)[1] or 80,
                )
        except JSONMessageError as exc:
            raise StatusError(exc.code or 1, exc.message) from exc
    if quiet:
        click.echo(str(ref))
