"""resolve_user: runc's GetExecUser semantics, and reading the image's files safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockyard.containers.users import (
    parse_group,
    parse_passwd,
    read_file_in_root,
    resolve_user,
)
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.unit

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

  bob:x:1000:1000:Bob:/home/bob:/bin/sh
alice:x:1001:100::/home/alice:/bin/sh
weird:x:abc:def
dup:x:2000:2000::/:/bin/sh
dup:x:2001:2001::/:/bin/sh
"""

GROUP = """\
root:x:0:root
wheel:x:10:root,bob
staff:x:50:bob,alice\r
users:x:100:
bob:x:1000:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", (0, 0, [0, 10])),  # root's entry, and the groups listing "root"
        ("root", (0, 0, [0, 10])),
        ("0", (0, 0, [0, 10])),  # numeric: matched by uid, groups by the matched name
        ("bob", (1000, 1000, [10, 50])),  # "staff" ends in \r\n: ScanLines drops the \r
        ("1000", (1000, 1000, [10, 50])),
        ("alice", (1001, 100, [50])),
        ("bob:staff", (1000, 50, [])),  # explicit group: no supplementary groups
        ("bob:100", (1000, 100, [])),
        ("bob:4242", (1000, 4242, [])),
        ("4242", (4242, 0, [])),  # numeric uid without entry
        ("4242:4243", (4242, 4243, [])),
        ("4242:wheel", (4242, 10, [])),
        ("weird", (0, 0, [])),  # unparsable numbers read as 0, as in runc
        ("dup", (2000, 2000, [])),  # first match wins
        ("daemon:bob:extra", (1, 1000, [])),  # anything after a second ':' is ignored
        ("+5", (5, 0, [])),  # Go's Atoi accepts a sign
    ],
)
def test_resolve_user(rootfs: Path, user: str, expected: tuple[int, int, list[int]]) -> None:
    assert resolve_user(rootfs, user) == expected


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("nobody", "unable to find user nobody: no matching entries in passwd file"),
        ("bob:nogroup", "unable to find group nogroup: no matching entries in group file"),
        ("-1", "uids and gids must be in range 0-2147483647"),
        ("2147483648", "uids and gids must be in range 0-2147483647"),
        ("bob:-5", "uids and gids must be in range 0-2147483647"),
        (" bob", "unable to find user  bob: no matching entries in passwd file"),
    ],
)
def test_resolve_user_errors(rootfs: Path, user: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_user(rootfs, user)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("user", "expected"),
    [("", (0, 0, [])), ("123", (123, 0, [])), ("123:456", (123, 456, []))],
)
def test_resolve_user_without_files(
    tmp_path: Path, user: str, expected: tuple[int, int, list[int]]
) -> None:
    assert resolve_user(tmp_path, user) == expected


def test_names_need_a_passwd_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="unable to find user bob"):
        resolve_user(tmp_path, "bob")
    with pytest.raises(InvalidArgument, match="unable to find group staff"):
        resolve_user(tmp_path, "0:staff")


def test_parsers_follow_runc() -> None:
    users = parse_passwd(PASSWD.encode())
    assert [(u.name, u.uid, u.gid) for u in users][:4] == [
        ("root", 0, 0), ("daemon", 1, 1), ("bob", 1000, 1000), ("alice", 1001, 100),
    ]  # fmt: skip
    groups = parse_group(GROUP.encode())
    assert [(g.name, g.gid, g.members) for g in groups] == [
        ("root", 0, ["root"]),
        ("wheel", 10, ["root", "bob"]),
        ("staff", 50, ["bob", "alice"]),  # ScanLines drops the \r
        ("users", 100, []),
        ("bob", 1000, []),
    ]


# --- the files are read inside the rootfs, never outside ---------------------------------------

EVIL = "evil:x:666:666::/:/bin/sh\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "host"
    d.mkdir()
    (d / "passwd").write_text(EVIL)
    return d


def test_absolute_symlink_is_resolved_inside_the_rootfs(rootfs: Path, outside: Path) -> None:
    (rootfs / "etc" / "passwd").unlink()
    (rootfs / "etc" / "passwd").symlink_to(outside / "passwd")  # host path, absolute
    assert read_file_in_root(rootfs, "/etc/passwd") is None
    with pytest.raises(InvalidArgument):
        resolve_user(rootfs, "evil")
    # the same absolute path, but inside the rootfs: that one is read
    inside = rootfs / str(outside).lstrip("/")
    inside.mkdir(parents=True)
    (inside / "passwd").write_text("img:x:7:7::/:/bin/sh\n")
    assert resolve_user(rootfs, "img") == (7, 7, [])


def test_dotdot_symlinks_stop_at_the_rootfs(rootfs: Path, outside: Path) -> None:
    (rootfs / "etc" / "passwd").unlink()
    depth = len(rootfs.parts)
    (rootfs / "etc" / "passwd").symlink_to(
        "../" * (depth + 3) + str(outside / "passwd").lstrip("/")
    )
    assert read_file_in_root(rootfs, "/etc/passwd") is None
    (rootfs / "etc" / "group").unlink()
    (rootfs / "etc" / "group").symlink_to("../../../../../../../../../etc/mygroup")
    (rootfs / "etc" / "mygroup").write_text("g:x:77:\n")
    assert read_file_in_root(rootfs, "/etc/group") == b"g:x:77:\n"


def test_directory_symlink_out_of_the_rootfs(rootfs: Path, outside: Path) -> None:
    for f in (rootfs / "etc").iterdir():
        f.unlink()
    (rootfs / "etc").rmdir()
    (rootfs / "etc").symlink_to(outside)  # /etc → the host's directory
    assert read_file_in_root(rootfs, "/etc/passwd") is None
    (rootfs / "etc").unlink()
    (rootfs / "real-etc").mkdir()
    (rootfs / "real-etc" / "passwd").write_text("ok:x:5:6::/:/bin/sh\n")
    (rootfs / "etc").symlink_to("real-etc")  # a relative, legitimate one
    assert resolve_user(rootfs, "ok") == (5, 6, [])


def test_symlink_loops_fifos_and_directories_read_as_missing(rootfs: Path) -> None:
    etc = rootfs / "etc"
    (etc / "passwd").unlink()
    (etc / "passwd").symlink_to("passwd2")
    (etc / "passwd2").symlink_to("passwd")
    assert read_file_in_root(rootfs, "/etc/passwd") is None
    (etc / "group").unlink()
    os.mkfifo(etc / "group")  # opening a FIFO would block: must be refused, not opened
    assert read_file_in_root(rootfs, "/etc/group") is None
    (etc / "dir").mkdir()
    assert read_file_in_root(rootfs, "/etc/dir") is None
    assert read_file_in_root(rootfs, "/etc/passwd2/x") is None
    assert read_file_in_root(rootfs, "/") is None
    assert read_file_in_root(rootfs / "missing", "/etc/passwd") is None
    assert resolve_user(rootfs, "4242") == (4242, 0, [])


def test_file_as_directory_component(rootfs: Path) -> None:
    (rootfs / "file").write_text("x")
    assert read_file_in_root(rootfs, "/file/passwd") is None
    assert read_file_in_root(rootfs, "/./etc/../etc/passwd") == PASSWD.encode()
