"""``build -f - DIR`` (the Dockerfile on stdin, the context from a directory) and ``build -``
(a Dockerfile alone on stdin), with our CLI and the docker CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.daemon import TestDaemon

pytestmark = pytest.mark.integration

DOCKERFILE = b'FROM busybox\nCOPY f.txt /f\nCMD ["cat", "/f"]\n'


@pytest.mark.parametrize("client", ["cli", "docker"])
def test_dockerfile_from_stdin_with_a_context_dir(
    daemon: TestDaemon, tmp_path: Path, client: str
) -> None:
    (tmp_path / "f.txt").write_text(f"from the context ({client})\n")
    (tmp_path / "Dockerfile").write_text('FROM busybox\nCMD ["false"]\n')  # must be ignored
    run = getattr(daemon, client)
    tag = f"stdin-df-{client}:1"
    r = run("build", "-t", tag, "-f", "-", str(tmp_path), input=DOCKERFILE)
    assert r.returncode == 0, r.stderr + r.stdout
    assert "Step 2/3 : COPY f.txt /f" in r.stdout
    out = run("run", "--rm", "--pull", "never", tag)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"from the context ({client})\n"
    # The random name the Dockerfile travelled under did not become part of the image.
    ls = run("run", "--rm", "--pull", "never", tag, "ls", "-a", "/")
    assert ".dockerfile." not in ls.stdout


@pytest.mark.parametrize("client", ["cli", "docker"])
def test_stdin_cannot_be_both_context_and_dockerfile(daemon: TestDaemon, client: str) -> None:
    r = getattr(daemon, client)("build", "-f", "-", "-", input=DOCKERFILE)
    assert r.returncode == 1
    assert "can't use stdin for both build context and dockerfile" in r.stderr


def test_dockerfile_alone_on_stdin(daemon: TestDaemon) -> None:
    r = daemon.cli("build", "-q", "-t", "stdin-only:1", "-", input=b"FROM busybox\nENV X=1\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("sha256:")
    out = daemon.cli("run", "--rm", "--pull", "never", "stdin-only:1", "sh", "-c", "echo $X")
    assert out.stdout == "1\n"
