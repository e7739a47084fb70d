"""The legacy (classic) builder: a Dockerfile and a context directory in, an image out.

It behaves like dockerd's ``builder/dockerfile``: every instruction is a step that makes
a new image from the one before ("Step 3/7 : RUN …", " ---> <id>"); RUN runs in an
intermediate container from that image ("Running in <id>", its output streamed,
"Removing intermediate container <id>") whose upper dir becomes the step's layer;
COPY/ADD/WORKDIR write into a fresh snapshot on the parent's layers; the other
instructions change only the config (a history entry with ``empty_layer``). A step is
taken from the cache (" ---> Using cache") when its parent and evaluated instruction
(and, for COPY/ADD, the sources' content hash) match an earlier build.

``ADD <url>`` (http/https) downloads the file on every build (`dockyard.build.remote`), never
extracts it, and keys the step's cache on the downloaded content, as the legacy builder does;
``COPY <url>`` is refused.

Multi-stage: ``FROM … AS name``; ``COPY --from=name|index|image``; ``target`` stops at
that stage, and only the stages the target needs are built.

Errors: `prepare` raises ``ParseError``/``InvalidArgument`` before anything runs (the API
answers 400); `Builder.run` raises `BuildError` (with the RUN's exit code when there is
one). A failed build removes its intermediate containers and mounts; images of the
steps that succeeded stay, untagged, as cache (as in Docker).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import shutil
import stat
import tarfile
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.build.cache import BuildCache, cache_key, hash_sources
from dockyard.build.parser import (
    Dockerfile,
    Instruction,
    ParseError,
    ShellLex,
    parse,
    parse_key_values,
)
from dockyard.build.remote import Downloaded, download, is_url
from dockyard.containers.securejoin import secure_join
from dockyard.containers.service import ContainerService
from dockyard.containers.users import resolve_user
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.images.service import Image, ImageService
from dockyard.mount import mount_all, unmount
from dockyard.oci.digest import short_id
from dockyard.snapshots.overlay import OverlaySnapshotter
from dockyard.store.db import Database

__all__ = ["BuildError", "BuildOptions", "Builder", "Plan", "prepare"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
PROXY_ARGS = frozenset(
    {
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "FTP_PROXY",
        "ftp_proxy",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    }
)
_DURATIONS = {
    "ns": 1,
    "us": 1000,
    "µs": 1000,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}

Emit = Callable[[dict[str, Any]], Awaitable[None]]
Pull = Callable[[str, Emit], Awaitable[None]]
"""Fetches an image into the store, reporting pull progress through ``Emit``."""


class BuildError(DockyardError):
    """A build step failed; ``code`` is the failing RUN's exit code (else None)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str = ""
    no_cache: bool = False
    pull: bool = False
    rm: bool = True
    force_rm: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    quiet: bool = False
    network_mode: str = "default"
    platform: str = ""
    cache_from: list[str] = field(default_factory=list)
    # what RUN containers get besides their network: ExtraHosts, resources, SecurityOpt…
    run_host_config: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    index: int
    name: str
    base: str
    platform: str
    line: int
    instructions: list[Instruction]


@dataclass
class Plan:
    """A parsed Dockerfile ready to run: global ARGs, the stages to build, step count."""

    dockerfile: Dockerfile
    meta_args: list[Instruction]
    stages: list[Stage]
    needed: list[int]
    total_steps: int
    context: Path
    options: BuildOptions


def _read_dockerfile(context: Path, name: str) -> str:
    path = secure_join(context, name or "Dockerfile")
    try:
        return path.read_text()
    except FileNotFoundError:
        raise InvalidArgument(
            f"Cannot locate specified Dockerfile: {name or 'Dockerfile'}"
        ) from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"cannot read Dockerfile {name}: {exc}") from None


def prepare(context: Path, options: BuildOptions) -> Plan:
    """Parse and check the Dockerfile in ``context`` (``ParseError``/``InvalidArgument``)."""
    dockerfile = parse(_read_dockerfile(context, options.dockerfile))
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    lex = ShellLex(dockerfile.escape)
    for ins in dockerfile.instructions:
        if ins.cmd == "from":
            words = ins.args.split()
            if len(words) == 3 and words[1].lower() == "as":
                name = words[2].lower()
            elif len(words) == 1:
                name = ""
            else:
                raise ParseError(ins.line, "FROM requires either one or three arguments")
            stages.append(
                Stage(len(stages), name, words[0], ins.flag("platform") or "", ins.line, [])
            )
        elif not stages:
            if ins.cmd != "arg":
                raise ParseError(ins.line, "no build stage in current context")
            meta_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise InvalidArgument("dockerfile contains no FROM instruction")
    target = len(stages) - 1
    if options.target:
        found = [s.index for s in stages if s.name == options.target.lower()]
        if not found:
            raise InvalidArgument(f"failed to reach build target {options.target} in Dockerfile")
        target = found[0]
    if options.labels:
        label = " ".join(f"{json.dumps(k)}={json.dumps(v)}" for k, v in options.labels.items())
        stages[target].instructions.append(
            Instruction("label", label, stages[target].line, "LABEL " + label)
        )
    # the stages the target needs: FROM <stage> and COPY --from=<stage>
    names = {s.name: s.index for s in stages if s.name}
    meta_env = _meta_defaults(meta_args, options, lex)
    needed: set[int] = set()

    def need(i: int) -> None:
        if i in needed:
            return
        needed.add(i)
        stage = stages[i]
        base = lex.process_word(stage.base, meta_env).lower()
        if base in names and names[base] < i:
            need(names[base])
        for ins in stage.instructions:
            ref = ins.flag("from") if ins.cmd in ("copy", "add") else None
            if ref is None:
                continue
            ref = lex.process_word(ref, meta_env).lower()
            if ref in names and names[ref] < i:
                need(names[ref])
            elif ref.isdigit():
                if int(ref) >= i:
                    raise ParseError(
                        ins.line,
                        f"invalid from flag value {ref}: refers to current or future build stage",
                    )
                need(int(ref))

    need(target)
    order = sorted(needed)
    total = len(meta_args) + sum(1 + len(stages[i].instructions) for i in order)
    return Plan(dockerfile, meta_args, stages, order, total, context, options)


def _meta_defaults(
    meta_args: list[Instruction], options: BuildOptions, lex: ShellLex
) -> dict[str, str]:
    env = dict(_predefined(options))
    for ins in meta_args:
        for key, value in parse_key_values(ins, lex, env):
            if key in options.build_args and options.build_args[key] is not None:
                env[key] = str(options.build_args[key])
            elif value != "\0unset":
                env[key] = value
    return env


def _predefined(options: BuildOptions) -> dict[str, str]:
    os_, _, arch = (options.platform or "linux/amd64").partition("/")
    arch, _, variant = arch.partition("/")
    out = {
        "TARGETPLATFORM": f"{os_}/{arch}" + (f"/{variant}" if variant else ""),
        "TARGETOS": os_,
        "TARGETARCH": arch,
        "TARGETVARIANT": variant,
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }
    for key in PROXY_ARGS:
        value = options.build_args.get(key)
        if value is not None:
            out[key] = value
    return out


# -- stage state ---------------------------------------------------------------------------


@dataclass
class _State:
    image: Image | None
    config: dict[str, Any]
    args: dict[str, str]
    cmd_set: bool = False
    author: str | None = None

    @property
    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def set_env(self, key: str, value: str) -> None:
        env = [e for e in self.config.get("Env") or [] if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
        self.config["Env"] = env

    @property
    def shell(self) -> list[str]:
        return list(self.config.get("Shell") or DEFAULT_SHELL)


class Builder:
    """Runs `Plan`s. One per engine; holds no per-build state."""

    def __init__(
        self,
        images: ImageService,
        containers: ContainerService,
        snapshots: OverlaySnapshotter,
        db: Database,
        *,
        work_dir: Path,
        pull: Pull | None = None,
    ) -> None:
        self._pull = pull
        self._images = images
        self._containers = containers
        self._snapshots = snapshots
        self._cache = BuildCache(db)
        self._work = work_dir

    async def run(self, plan: Plan, emit: Emit) -> str:
        """Build; return the image ID. ``BuildError`` on failure, after cleaning up."""
        run = _Run(self, plan, emit)
        return await run.execute()


class _Run:
    """One build."""

    def __init__(self, builder: Builder, plan: Plan, emit: Emit) -> None:
        self.b = builder
        self.plan = plan
        self.opts = plan.options
        self.emit = emit
        self.lex = ShellLex(plan.dockerfile.escape)
        self.step = 0
        self.results: dict[int, Image | None] = {}
        self._sources: set[str] | None = None
        self.meta = _predefined(plan.options)
        self.used_args: set[str] = set()

    async def say(self, text: str) -> None:
        await self.emit({"stream": text})

    async def begin(self, ins: Instruction) -> None:
        self.step += 1
        await self.say(f"Step {self.step}/{self.plan.total_steps} : {ins.original}")
        await self.say("\n")

    async def execute(self) -> str:
        for ins in self.plan.meta_args:
            await self.begin(ins)
            for key, value in parse_key_values(ins, self.lex, self.meta):
                given = self.opts.build_args.get(key)
                if given is not None:
                    self.meta[key] = given
                elif value != "\0unset":
                    self.meta[key] = value
                elif key not in self.meta:
                    self.meta[key] = ""
                self.used_args.add(key)
        last: Image | None = None
        for index in self.plan.needed:
            last = await self.build_stage(self.plan.stages[index])
            self.results[index] = last
        if last is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        unused = sorted(
            k for k in self.opts.build_args if k not in self.used_args and k not in PROXY_ARGS
        )
        if unused:
            await self.say(
                f"[Warning] One or more build-args {unused} were not consumed\n".replace("'", "")
            )
        await self.emit({"aux": {"ID": last.id}})
        await self.say(f"Successfully built {short_id(last.id)}\n")
        if self.opts.tags:
            await asyncio.to_thread(self.b._images.set_tags, last.id, self.opts.tags)
            for tag in self.opts.tags:
                await self.say(f"Successfully tagged {_familiar_tag(tag)}\n")
        return last.id

    # -- stages ----------------------------------------------------------------------------

    async def build_stage(self, stage: Stage) -> Image:
        self.step += 1
        await self.say(
            f"Step {self.step}/{self.plan.total_steps} : FROM {stage.base}"
            + (f" AS {stage.name}" if stage.name else "")
        )
        await self.say("\n")
        base = self.lex.process_word(stage.base, self.meta)
        image = await self.base_image(base, stage)
        if image is None:
            config: dict[str, Any] = {}
        else:
            config = json.loads(json.dumps(image.config.get("config") or {}))
        for key in (
            "Hostname",
            "Domainname",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Image",
        ):
            config.pop(key, None)
        state = _State(image, config, {})
        if not any(e.startswith("PATH=") for e in config.get("Env") or []):
            config["Env"] = [*(config.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        if image is None:
            image = await asyncio.to_thread(
                self.b._images.commit,
                None,
                None,
                state.config,
                {"created_by": "", "comment": "scratch"},
            )
            state.image = image
        await self.say(f" ---> {short_id(image.id)}\n")
        triggers = list(config.get("OnBuild") or [])
        if triggers:
            config["OnBuild"] = None
            await self.say(
                f"# Executing {len(triggers)} build trigger{'s' if len(triggers) != 1 else ''}\n"
            )
            for text in triggers:
                for ins in parse(text).instructions:
                    await self.dispatch(state, ins, stage, trigger=True)
        for ins in stage.instructions:
            self.step += 1
            await self.say(f"Step {self.step}/{self.plan.total_steps} : {ins.original}")
            await self.say("\n")
            await self.dispatch(state, ins, stage)
        assert state.image is not None
        return state.image

    async def base_image(self, name: str, stage: Stage) -> Image | None:
        if name.lower() == "scratch":
            return None
        for s in self.plan.stages[: stage.index]:
            if s.name and s.name == name.lower():
                return self.results[s.index]
        if self.opts.pull and self.b._pull is not None:
            await self._pull_base(name)
        try:
            return await asyncio.to_thread(self.b._images.resolve, name)
        except NotFound:
            if self.b._pull is None:
                raise BuildError(f"No such image: {name}") from None
        except InvalidArgument as exc:
            raise BuildError(str(exc.message)) from None
        await self._pull_base(name)
        return await asyncio.to_thread(self.b._images.resolve, name)

    async def _pull_base(self, name: str) -> None:
        """``FROM`` an image the store lacks (or ``--pull``): fetch it like ``docker pull``."""
        assert self.b._pull is not None
        try:
            await self.b._pull(name, self.emit)
        except DockyardError as exc:
            raise BuildError(exc.message) from None

    # -- dispatch --------------------------------------------------------------------------

    def expand_env(self, state: _State) -> dict[str, str]:
        env = dict(state.args)
        env.update(state.env_map)
        return env

    async def dispatch(
        self, state: _State, ins: Instruction, stage: Stage, *, trigger: bool = False
    ) -> None:
        handler = getattr(self, f"do_{ins.cmd}", None)
        if handler is None:
            raise BuildError(f"unknown instruction: {ins.cmd.upper()}")
        try:
            await handler(state, ins, stage)
        except BuildError:
            raise
        except DockyardError as exc:
            raise BuildError(exc.message) from None

    async def metadata(self, state: _State, ins: Instruction, *, text: str | None = None) -> None:
        """Commit a config-only step (through the cache)."""
        assert state.image is not None
        created_by = f"/bin/sh -c #(nop)  {text or ins.original}"
        key = cache_key(state.image.id, json.dumps([created_by, state.config], sort_keys=True))
        if await self.from_cache(state, key):
            return
        parent = state.image
        image = await asyncio.to_thread(
            self.b._images.commit,
            parent,
            None,
            dict(state.config),
            {"created_by": created_by},
            extra=self.extra(state),
        )
        self.b._cache.put(key, parent.id, image.id)
        state.image = image
        await self.say(f" ---> {short_id(image.id)}\n")

    def extra(self, state: _State) -> dict[str, Any]:
        return {"author": state.author} if state.author else {}

    async def from_cache(self, state: _State, key: str) -> bool:
        if self.opts.no_cache:
            return False
        image_id = self.b._cache.get(key)
        if image_id is None:
            return False
        if self.opts.cache_from and image_id not in await self._cache_sources():
            return False
        try:
            image = await asyncio.to_thread(self.b._images.resolve, image_id)
        except NotFound:
            self.b._cache.forget(key)
            return False
        self.b._cache.used(key)
        state.image = image
        state.config = json.loads(json.dumps(image.config.get("config") or {}))
        await self.say(" ---> Using cache\n")
        await self.say(f" ---> {short_id(image.id)}\n")
        return True

    async def _cache_sources(self) -> set[str]:
        """With ``--cache-from``, only those images and the steps that built them may be
        reused, as in the legacy builder: their ancestors along the cache's parent links."""
        if self._sources is None:
            roots = []
            for name in self.opts.cache_from:
                with contextlib.suppress(DockyardError):
                    roots.append((await asyncio.to_thread(self.b._images.resolve, name)).id)
            self._sources = self.b._cache.ancestors(roots)
        return self._sources

    async def do_maintainer(self, state: _State, ins: Instruction, stage: Stage) -> None:
        state.author = ins.args
        await self.metadata(state, ins, text=f"MAINTAINER {ins.args}")

    async def do_arg(self, state: _State, ins: Instruction, stage: Stage) -> None:
        env = {**self.meta, **self.expand_env(state)}
        for key, value in parse_key_values(ins, self.lex, env):
            given = self.opts.build_args.get(key)
            self.used_args.add(key)
            if given is not None:
                state.args[key] = given
            elif value != "\0unset":
                state.args[key] = value
            elif key in self.meta:
                state.args[key] = self.meta[key]
        await self.metadata(state, ins, text=f"ARG {ins.args}")

    async def do_env(self, state: _State, ins: Instruction, stage: Stage) -> None:
        env = self.expand_env(state)
        for key, value in parse_key_values(ins, self.lex, env):
            state.set_env(key, value)
            env[key] = value
        await self.metadata(state, ins, text=f"ENV {ins.args}")

    async def do_label(self, state: _State, ins: Instruction, stage: Stage) -> None:
        labels = dict(state.config.get("Labels") or {})
        for key, value in parse_key_values(ins, self.lex, self.expand_env(state)):
            labels[key] = value
        state.config["Labels"] = labels
        await self.metadata(state, ins, text=f"LABEL {ins.args}")

    def command(self, state: _State, ins: Instruction) -> list[str]:
        if ins.json:
            return list(ins.words)
        return [*state.shell, ins.args]

    async def do_cmd(self, state: _State, ins: Instruction, stage: Stage) -> None:
        state.config["Cmd"] = self.command(state, ins) if ins.args else None
        state.cmd_set = True
        await self.metadata(state, ins, text=f"CMD {json.dumps(state.config['Cmd'])}")

    async def do_entrypoint(self, state: _State, ins: Instruction, stage: Stage) -> None:
        state.config["Entrypoint"] = self.command(state, ins) if ins.args else None
        if not state.cmd_set:
            state.config["Cmd"] = None
        await self.metadata(state, ins, text=f"ENTRYPOINT {json.dumps(state.config['Entrypoint'])}")

    async def do_shell(self, state: _State, ins: Instruction, stage: Stage) -> None:
        if not ins.json:
            raise BuildError("SHELL requires the arguments to be in JSON form")
        state.config["Shell"] = list(ins.words)
        await self.metadata(state, ins, text=f"SHELL {json.dumps(list(ins.words))}")

    async def do_user(self, state: _State, ins: Instruction, stage: Stage) -> None:
        state.config["User"] = self.lex.process_word(ins.args, self.expand_env(state))
        await self.metadata(state, ins, text=f"USER {state.config['User']}")

    async def do_stopsignal(self, state: _State, ins: Instruction, stage: Stage) -> None:
        state.config["StopSignal"] = self.lex.process_word(ins.args, self.expand_env(state))
        await self.metadata(state, ins, text=f"STOPSIGNAL {state.config['StopSignal']}")

    async def do_expose(self, state: _State, ins: Instruction, stage: Stage) -> None:
        ports = dict(state.config.get("ExposedPorts") or {})
        for word in self.lex.process_words(ins.args, self.expand_env(state)):
            for port in _expand_ports(word):
                ports[port] = {}
        state.config["ExposedPorts"] = ports
        await self.metadata(state, ins, text="EXPOSE " + " ".join(sorted(ports)))

    async def do_volume(self, state: _State, ins: Instruction, stage: Stage) -> None:
        env = self.expand_env(state)
        words = (
            [self.lex.process_word(w, env) for w in ins.words]
            if ins.json
            else self.lex.process_words(ins.args, env)
        )
        volumes = dict(state.config.get("Volumes") or {})
        for word in words:
            if not word.strip():
                raise BuildError("VOLUME specified can not be an empty string")
            volumes[word] = {}
        state.config["Volumes"] = volumes
        await self.metadata(state, ins, text=f"VOLUME {json.dumps(words)}")

    async def do_healthcheck(self, state: _State, ins: Instruction, stage: Stage) -> None:
        words = ins.args.split(None, 1)
        kind = words[0].upper() if words else ""
        if kind == "NONE":
            if len(words) > 1 or ins.flags:
                raise BuildError("HEALTHCHECK NONE takes no arguments")
            state.config["Healthcheck"] = {"Test": ["NONE"]}
        elif kind == "CMD":
            rest = words[1] if len(words) > 1 else ""
            if not rest:
                raise BuildError("Missing command after HEALTHCHECK CMD")
            try:
                parsed = json.loads(rest) if rest.startswith("[") else None
            except json.JSONDecodeError:
                parsed = None
            if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
                test = ["CMD", *parsed]
            else:
                test = ["CMD-SHELL", rest]
            check: dict[str, Any] = {"Test": test}
            for flag, key in (
                ("interval", "Interval"),
                ("timeout", "Timeout"),
                ("start-period", "StartPeriod"),
                ("start-interval", "StartInterval"),
            ):
                value = ins.flag(flag)
                if value:
                    check[key] = _duration(value, flag)
            retries = ins.flag("retries")
            if retries:
                try:
                    check["Retries"] = int(retries)
                except ValueError:
                    raise BuildError(f"invalid retries value {retries!r}") from None
                if check["Retries"] < 1:
                    raise BuildError("--retries cannot be 0 or negative")
            state.config["Healthcheck"] = check
        else:
            raise BuildError("Unknown type in HEALTHCHECK (try CMD or NONE)")
        await self.metadata(state, ins, text=f"HEALTHCHECK {ins.args}")

    async def do_onbuild(self, state: _State, ins: Instruction, stage: Stage) -> None:
        word = ins.args.split(None, 1)[0].upper() if ins.args else ""
        if word in ("ONBUILD", "FROM", "MAINTAINER"):
            raise BuildError(f"{word} isn't allowed as an ONBUILD trigger")
        parse(ins.args)  # validates the trigger
        state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), ins.args]
        await self.metadata(state, ins, text=f"ONBUILD {ins.args}")

    async def do_workdir(self, state: _State, ins: Instruction, stage: Stage) -> None:
        path = self.lex.process_word(ins.args, self.expand_env(state))
        if not path.startswith("/"):
            path = os.path.join(state.config.get("WorkingDir") or "/", path)
        path = os.path.normpath(path)
        state.config["WorkingDir"] = path
        assert state.image is not None
        created_by = f"/bin/sh -c #(nop) WORKDIR {path}"
        key = cache_key(state.image.id, json.dumps([created_by, state.config], sort_keys=True))
        if await self.from_cache(state, key):
            return
        parent = state.image

        def make(root: Path) -> None:
            target = secure_join(root, path)
            if not target.exists():
                _mkdirs(root, path, 0, 0)

        image = await self.layer_step(state, make, created_by, only_if_changed=True)
        self.b._cache.put(key, parent.id, image.id)

    async def do_run(self, state: _State, ins: Instruction, stage: Stage) -> None:
        assert state.image is not None
        if ins.heredocs and not ins.json:
            script = ins.args
            for doc in ins.heredocs:
                script += "\n" + doc.content + doc.name
            argv = [*state.shell, script]
        else:
            argv = self.command(state, ins)
        arg_env = sorted(f"{k}={v}" for k, v in state.args.items() if k not in state.env_map)
        created_by = " ".join(argv)
        if arg_env:
            created_by = f"|{len(arg_env)} {' '.join(arg_env)} {created_by}"
        network = ins.flag("network") or self.opts.network_mode or "default"
        key = cache_key(
            state.image.id, json.dumps(["RUN", argv, arg_env, state.config], sort_keys=True)
        )
        if await self.from_cache(state, key):
            return
        parent = state.image
        body: dict[str, Any] = {
            "Image": parent.id,
            "Cmd": argv,
            "Entrypoint": [],
            "Env": [*arg_env, *(state.config.get("Env") or [])],
            "WorkingDir": state.config.get("WorkingDir") or "",
            "User": state.config.get("User") or "",
            "Labels": {},
            "HostConfig": {
                **self.opts.run_host_config,
                "NetworkMode": network if network in ("none", "host") else "default",
            },
        }
        svc = self.b._containers
        cid, _ = svc.create(body, None)
        try:
            await self.say(f" ---> Running in {cid[:12]}\n")
            attach = asyncio.ensure_future(svc.attach_stream(cid))
            await asyncio.sleep(0)
            try:
                await svc.start(cid)
                stream = await attach
            except BaseException:
                attach.cancel()
                raise
            if stream is not None:
                try:
                    while True:
                        item = await stream.read()
                        if item is None:
                            break
                        await self.say(item[1].decode(errors="replace"))
                finally:
                    stream.close()
            code = await svc.wait_future(cid, "not-running")
            if code != 0:
                raise BuildError(
                    f"The command '{' '.join(argv)}' returned a non-zero code: {code}", code
                )
            upper = self.b._snapshots.upper_dir(cid)
            config = dict(state.config)
            image = await asyncio.to_thread(
                self.b._images.commit,
                parent,
                upper,
                config,
                {"created_by": created_by},
                extra=self.extra(state),
            )
        finally:
            # always, also when a RUN fails: a failed build leaves no containers behind
            await svc.remove(cid, force=True)
            await self.say(f"Removing intermediate container {cid[:12]}\n")
        self.b._cache.put(key, parent.id, image.id)
        state.image = image
        await self.say(f" ---> {short_id(image.id)}\n")

    # -- COPY / ADD ------------------------------------------------------------------------

    async def do_copy(self, state: _State, ins: Instruction, stage: Stage) -> None:
        await self.copy(state, ins, is_add=False)

    async def do_add(self, state: _State, ins: Instruction, stage: Stage) -> None:
        await self.copy(state, ins, is_add=True)

    async def copy(self, state: _State, ins: Instruction, *, is_add: bool) -> None:
        assert state.image is not None
        env = self.expand_env(state)
        if ins.json:
            words = [self.lex.process_word(w, env) for w in ins.words]
        else:
            words = self.lex.process_words(ins.args, env)
        if len(words) < 2 and not ins.heredocs:
            raise BuildError(
                f"{ins.cmd.upper()} requires at least two arguments, but only one was provided. Destination could not be determined."
            )
        dest = words[-1]
        sources = words[:-1]
        name = ins.cmd.upper()
        chown = ins.flag("chown")
        chmod = ins.flag("chmod")
        mode = None
        if chmod:
            try:
                mode = int(chmod, 8)
            except ValueError:
                raise BuildError(f"invalid chmod parameter {chmod!r}") from None
            if mode > 0o7777:
                raise BuildError(f"invalid chmod parameter {chmod!r}")
        from_ref = ins.flag("from")
        with contextlib.ExitStack() as stack:
            src_root = self.plan.context
            if from_ref:
                src_root = await asyncio.to_thread(
                    stack.enter_context,
                    self.source_rootfs(self.lex.process_word(from_ref, self.meta)),
                )
            heredoc_dir: Path | None = None
            picked: list[tuple[str, Path, bool]] = []  # (name in key, path, ADD may extract)
            docs = {d.name for d in ins.heredocs}
            for src in sources:
                marker = src.lstrip("<-").strip("'\"")
                if src.startswith("<<") and marker in docs:
                    doc = next(d for d in ins.heredocs if d.name == marker)
                    if heredoc_dir is None:
                        heredoc_dir = Path(
                            stack.enter_context(tempfile.TemporaryDirectory(dir=self.b._work))
                        )
                    p = heredoc_dir / marker
                    p.write_text(doc.content)
                    picked.append((marker, p, is_add))
                    continue
                if is_url(src):
                    if not is_add:
                        raise BuildError(f"{name} failed: source can't be a URL for COPY")
                    into = Path(
                        stack.enter_context(
                            tempfile.TemporaryDirectory(dir=self.b._work, prefix="remote-")
                        )
                    )
                    got = await self.fetch(src, into, dest)
                    picked.append((got.path.name, got.path, False))  # never extracted
                    continue
                if src.startswith("git@") or src.endswith(".git"):
                    raise BuildError(f"{name} failed: git sources are not supported")
                matches = _glob(src_root, src)
                if not matches:
                    where = (
                        "build context or excluded by .dockerignore"
                        if not from_ref
                        else f"stage/image {from_ref}"
                    )
                    raise BuildError(
                        f"{name} failed: file not found in {where}: stat {src.lstrip('/')}: file does not exist"
                    )
                picked.extend((m, src_root / m if m != "." else src_root, is_add) for m in matches)
            if not dest.startswith("/"):
                dest = os.path.join(state.config.get("WorkingDir") or "/", dest) + (
                    "/" if dest.endswith("/") else ""
                )
            if len(picked) > 1 and not dest.endswith("/"):
                raise BuildError(
                    f"When using {name} with more than one source file, the destination must be a directory and end with a /"
                )
            content = await asyncio.to_thread(hash_sources, [(n, p) for n, p, _ in picked])
            created_by = (
                f"/bin/sh -c #(nop) {name} "
                + " ".join(f"--{k}={v}" for k, v in ins.flags if k != "from")
                + f" {content[:16]} in {dest}"
            )
            key = cache_key(
                state.image.id,
                json.dumps(
                    [name, words, list(ins.flags), from_ref or "", state.config], sort_keys=True
                ),
                content,
            )
            if await self.from_cache(state, key):
                return
            parent = state.image

            def make(root: Path) -> None:
                uid, gid = 0, 0
                if chown:
                    uid, gid, _ = resolve_user(root, chown)
                for _n, path, extract in picked:
                    _copy_into(root, path, dest, uid, gid, mode, extract=extract)

            image = await self.layer_step(state, make, created_by)
            self.b._cache.put(key, parent.id, image.id)

    async def fetch(self, url: str, directory: Path, dest: str) -> Downloaded:
        """``ADD <url>``: download into ``directory`` (moby ``downloadSource``), with its
        progress in the build's stream and the blank line dockerd writes after it."""
        try:
            got = await download(url, directory, progress=self.emit)
        except DockyardError as exc:
            raise BuildError(f"ADD failed: {exc.message}") from None
        await self.say("\n")
        if not got.filename and dest.endswith("/"):
            raise BuildError(f"ADD failed: cannot determine filename for source {url}")
        return got

    @contextlib.contextmanager
    def source_rootfs(self, ref: str) -> Iterator[Path]:
        """A read-only view of a finished stage's (or an image's) rootfs."""
        image: Image | None = None
        found = False
        for s in self.plan.stages:
            if (s.name and s.name == ref.lower()) or str(s.index) == ref:
                if s.index not in self.results:
                    raise BuildError(f"stage {ref} was not built")
                image = self.results[s.index]
                found = True
                break
        if not found:
            try:
                image = self.b._images.resolve(ref)
            except NotFound:
                raise BuildError(f"invalid from flag value {ref}: no such stage or image") from None
        assert image is not None
        with self.mounted(image.chain_id, writable=False) as (root, _key):
            yield root

    @contextlib.contextmanager
    def mounted(self, chain: str | None, *, writable: bool) -> Iterator[tuple[Path, str]]:
        key = f"build-{uuid.uuid4().hex[:16]}"
        target = Path(tempfile.mkdtemp(dir=self.b._work, prefix="mnt-"))
        made = False
        try:
            if writable:
                mounts = self.b._snapshots.prepare(key, chain)
                made = True
            elif chain is None:
                yield target, ""
                return
            else:
                mounts = self.b._snapshots.view(key, chain)
                made = True
            mount_all(mounts, target)
            try:
                yield target, key
            finally:
                unmount(target)
        finally:
            with contextlib.suppress(OSError):
                target.rmdir()
            if made and not writable:
                with contextlib.suppress(DockyardError):
                    self.b._snapshots.remove(key)
            if made and writable:
                self._pending_key = key

    async def layer_step(
        self,
        state: _State,
        make: Callable[[Path], None],
        created_by: str,
        *,
        only_if_changed: bool = False,
    ) -> Image:
        """Run ``make`` on a fresh writable mount of the parent's layers; commit its upper dir."""
        assert state.image is not None
        parent = state.image

        def work() -> Image:
            self._pending_key = ""
            try:
                with self.mounted(parent.chain_id, writable=True) as (root, _key):
                    make(root)
                key = self._pending_key
                upper = self.b._snapshots.upper_dir(key)
                empty = only_if_changed and not any(upper.iterdir())
                return self.b._images.commit(
                    parent,
                    None if empty else upper,
                    dict(state.config),
                    {"created_by": created_by},
                    extra=self.extra(state),
                )
            finally:
                if self._pending_key:
                    with contextlib.suppress(DockyardError):
                        self.b._snapshots.remove(self._pending_key)

        try:
            image = await asyncio.to_thread(work)
        except (OSError, shutil.Error) as exc:
            raise BuildError(f"{created_by.split(' ', 3)[-1]}: {exc}") from None
        state.image = image
        await self.say(f" ---> {short_id(image.id)}\n")
        return image

    _pending_key: str = ""


# -- helpers -------------------------------------------------------------------------------


def _familiar_tag(tag: str) -> str:
    name = tag
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        name += ":latest"
    return name


def _duration(text: str, flag: str) -> int:
    import re

    total = 0
    pos = 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += int(float(m.group(1)) * _DURATIONS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise BuildError(f"invalid duration {text!r} for --{flag}")
    if 0 < total < 10**6 * 1:
        raise BuildError(f"Interval {text!r} cannot be less than 1ms")
    return total


def _expand_ports(word: str) -> list[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise BuildError(f"invalid proto: {proto}")
    start, _, end = port.partition("-")
    try:
        lo = int(start)
        hi = int(end) if end else lo
    except ValueError:
        raise BuildError(f"invalid containerPort: {port}") from None
    if not (0 < lo <= hi <= 65535):
        raise BuildError(f"invalid range specified for container port: {port}")
    return [f"{p}/{proto}" for p in range(lo, hi + 1)]


def _glob(root: Path, pattern: str) -> list[str]:
    """Context paths (relative) matching ``pattern`` (Go filepath.Match per component)."""
    clean = os.path.normpath("/" + pattern).lstrip("/") or "."
    if clean == ".":
        return ["."]
    if not any(c in clean for c in "*?["):
        p = secure_join(root, clean)
        return [os.path.relpath(p, root)] if os.path.lexists(p) else []
    parts = clean.split("/")
    found = [""]
    for part in parts:
        nxt: list[str] = []
        for base in found:
            d = root / base if base else root
            if not d.is_dir() or d.is_symlink():
                continue
            if any(c in part for c in "*?["):
                for name in sorted(os.listdir(d)):
                    if fnmatch.fnmatchcase(name, part):
                        nxt.append(f"{base}/{name}" if base else name)
            elif os.path.lexists(d / part):
                nxt.append(f"{base}/{part}" if base else part)
        found = nxt
    return found


def _mkdirs(root: Path, path: str, uid: int, gid: int) -> Path:
    """Create ``path`` (inside ``root``) and missing parents, owned by uid:gid."""
    current = root
    parts = [p for p in path.split("/") if p and p != "."]
    for i in range(len(parts)):
        target = secure_join(root, "/".join(parts[: i + 1]))
        if not target.exists():
            target.mkdir(mode=0o755)
            os.chown(target, uid, gid)
        elif not target.is_dir():
            raise BuildError(
                f"cannot create directory /{'/'.join(parts[: i + 1])}: not a directory"
            )
        current = target
    return current


def _is_archive(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError:
        return False
    if head.startswith((b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x28\xb5\x2f\xfd")):
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _copy_into(
    root: Path, src: Path, dest: str, uid: int, gid: int, mode: int | None, *, extract: bool
) -> None:
    """Docker's COPY semantics: a directory's contents go into ``dest``; a file goes to
    ``dest`` (or into it when ``dest`` ends in ``/`` or is an existing directory)."""
    st = os.lstat(src)
    if stat.S_ISDIR(st.st_mode):
        target = _mkdirs(root, dest, uid, gid)
        _copy_tree(src, target, root, uid, gid, mode)
        return
    if extract and stat.S_ISREG(st.st_mode) and _is_archive(src):
        target = _mkdirs(root, dest, 0, 0)
        _extract_archive(src, target)
        return
    dest_path = secure_join(root, dest)
    if dest.endswith("/") or (dest_path.is_dir() and not dest_path.is_symlink()):
        directory = _mkdirs(root, dest, uid, gid)
        target = directory / src.name
    else:
        parent = os.path.dirname(dest.rstrip("/")) or "/"
        _mkdirs(root, parent, 0, 0)
        target = secure_join(root, dest)
    _copy_entry(src, target, uid, gid, mode)


def _copy_entry(src: Path, target: Path, uid: int, gid: int, mode: int | None) -> None:
    st = os.lstat(src)
    if os.path.lexists(target) and not (stat.S_ISDIR(st.st_mode) and target.is_dir()):
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), target)
        os.lchown(target, uid, gid)
        return
    if stat.S_ISDIR(st.st_mode):
        if not target.exists():
            target.mkdir()
        os.chown(target, uid, gid)
        os.chmod(target, mode if mode is not None else stat.S_IMODE(st.st_mode))
        return
    if not stat.S_ISREG(st.st_mode):
        return  # devices, fifos, sockets in a context are skipped
    shutil.copyfile(src, target, follow_symlinks=False)
    os.chown(target, uid, gid)
    os.chmod(target, mode if mode is not None else stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_tree(src: Path, target: Path, root: Path, uid: int, gid: int, mode: int | None) -> None:
    for entry in sorted(os.listdir(src)):
        s = src / entry
        t = target / entry
        if os.path.islink(t) or (t.exists() and not t.is_dir()):
            pass
        _copy_entry(s, t, uid, gid, mode)
        if s.is_dir() and not s.is_symlink():
            _copy_tree(s, t, root, uid, gid, mode)


def _extract_archive(src: Path, target: Path) -> None:
    try:
        with tarfile.open(src, mode="r:*") as tar:
            tar.extractall(target, filter="tar")
    except (tarfile.TarError, OSError) as exc:
        raise BuildError(f"ADD failed: cannot extract {src.name}: {exc}") from None
