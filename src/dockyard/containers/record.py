"""A container's persisted state and the JSON shapes Docker shows for it."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dockyard.containers.timefmt import human_duration, rfc3339

__all__ = ["ContainerRecord", "ContainerState"]


@dataclass
class ContainerState:
    status: str = "created"  # created | running | paused | restarting | removing | exited | dead
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: int = 0  # Unix ns
    finished_at: int = 0
    oom_killed: bool = False

    @property
    def running(self) -> bool:
        return self.status in ("running", "paused", "restarting")


@dataclass
class ContainerRecord:
    id: str
    name: str
    created: int  # Unix ns
    image_id: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: ContainerState = field(default_factory=ContainerState)
    monitor: dict[str, int] | None = None  # MonitorInfo fields while a monitor watches it
    restart_count: int = 0
    stopped_by_user: bool = False
    health: dict[str, Any] | None = None  # State.Health, kept by containers.health

    @property
    def path(self) -> str:
        argv = self.argv
        return argv[0] if argv else ""

    @property
    def args(self) -> list[str]:
        return self.argv[1:]

    @property
    def argv(self) -> list[str]:
        return list(self.config.get("Entrypoint") or []) + list(self.config.get("Cmd") or [])

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ContainerRecord:
        raw = json.loads(text)
        raw["state"] = ContainerState(**raw.get("state", {}))
        return cls(**raw)

    def status_text(self, now: float | None = None) -> str:
        """``Up 3 minutes``, ``Exited (0) 2 seconds ago``, ``Created`` — as ``docker ps`` shows."""
        now = time.time() if now is None else now
        s = self.state
        if s.status == "running":
            up = f"Up {human_duration(now - s.started_at / 1e9)}"
            if self.health is not None:
                status = self.health.get("Status") or "unhealthy"
                return f"{up} ({'health: starting' if status == 'starting' else status})"
            return up
        if s.status == "paused":
            return f"Up {human_duration(now - s.started_at / 1e9)} (Paused)"
        if s.status == "restarting":
            return f"Restarting ({s.exit_code}) {human_duration(now - s.finished_at / 1e9)} ago"
        if s.status == "removing":
            return "Removal In Progress"
        if s.status == "dead":
            return "Dead"
        if s.status == "exited" and s.finished_at:
            return f"Exited ({s.exit_code}) {human_duration(now - s.finished_at / 1e9)} ago"
        return "Created"

    def state_json(self) -> dict[str, Any]:
        s = self.state
        return {
            "Status": s.status,
            "Running": s.status in ("running", "paused"),
            "Paused": s.status == "paused",
            "Restarting": s.status == "restarting",
            "OOMKilled": s.oom_killed,
            "Dead": s.status == "dead",
            "Pid": s.pid if s.running else 0,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": rfc3339(s.started_at),
            "FinishedAt": rfc3339(s.finished_at),
            **({"Health": self.health} if self.health is not None else {}),
        }
