"""Which per-container monitor the daemon uses: dockyard-monitor when installed, else conmon;
daemon.json ``monitor`` and ``--monitor`` override it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.daemon import main as daemon_main
from dockyard.daemon.config import load_config
from dockyard.errors import InvalidArgument
from dockyard.runtime import Runtime
from dockyard.runtime import conmon as conmon_mod

pytestmark = pytest.mark.unit


def _empty_config(tmp_path: Path) -> Path:
    file = tmp_path / "empty.json"
    file.write_text("{}")
    return file


def _fake_monitor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, executable: bool) -> Path:
    path = tmp_path / "libexec" / "dockyard-monitor"
    path.parent.mkdir()
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755 if executable else 0o644)
    monkeypatch.setattr(conmon_mod, "DOCKYARD_MONITOR", str(path))
    return path


def test_default_is_dockyard_monitor_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _fake_monitor(tmp_path, monkeypatch, executable=True)
    assert conmon_mod.default_monitor() == str(path)
    assert load_config(_empty_config(tmp_path), {}).conmon == str(path)
    assert Runtime(tmp_path / "exec").conmon_binary == str(path)


@pytest.mark.parametrize("state", ["missing", "not-executable", "directory"])
def test_default_falls_back_to_conmon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: str
) -> None:
    if state == "missing":
        monkeypatch.setattr(conmon_mod, "DOCKYARD_MONITOR", str(tmp_path / "nope"))
    elif state == "not-executable":
        _fake_monitor(tmp_path, monkeypatch, executable=False)
    else:
        monkeypatch.setattr(conmon_mod, "DOCKYARD_MONITOR", str(tmp_path))
    assert conmon_mod.default_monitor() == "/usr/bin/conmon"
    assert load_config(_empty_config(tmp_path), {}).conmon == "/usr/bin/conmon"


def test_daemon_json_and_flag_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_monitor(tmp_path, monkeypatch, executable=True)
    file = tmp_path / "daemon.json"
    file.write_text(json.dumps({"monitor": "/usr/bin/conmon"}))
    assert load_config(file, {}).conmon == "/usr/bin/conmon"
    args = daemon_main._parse_args(["--monitor", "/opt/m"])
    assert load_config(file, {"conmon": args.monitor}).conmon == "/opt/m"  # flag wins
    assert load_config(file, {"conmon": None}).conmon == "/usr/bin/conmon"  # flag unset
    file.write_text(json.dumps({"monitor": 3}))
    with pytest.raises(InvalidArgument):
        load_config(file, {})
