"""Hostile layers: nothing may be created or changed outside the layer directory.

Every test puts the layer directory deep inside tmp_path next to an "outside"
sentinel directory holding a "secret" file, and aims the attack at the sentinel, so
a regression damages tmp_path and never the host.  Each test checks both that the
attack was refused (or neutralised inside the layer) and that the sentinel is intact.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from dockyard.archive import apply_layer
from dockyard.errors import InvalidArgument
from tests.unit.test_archive_apply import Entry, build, dir_, hard, reg, sym

SECRET = b"top secret\n"


class Scene:
    """tmp_path/outside/secret beside tmp_path/l1/l2/dest (the layer dir)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.secret = self.outside / "secret"
        self.secret.write_bytes(SECRET)
        os.chmod(self.secret, 0o600)
        os.chmod(self.outside, 0o755)
        self.dest = tmp_path / "l1" / "l2" / "dest"
        self.dest.mkdir(parents=True)
        self._before = self._snapshot()

    def _snapshot(self) -> dict[str, tuple[int, int, int]]:
        """Everything in tmp_path outside dest: path -> (mode, nlink, size)."""
        seen = {}
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            if Path(dirpath) == self.dest:
                dirnames[:] = []
                continue
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if Path(path) != self.dest:
                    st = os.lstat(path)
                    seen[path] = (st.st_mode, st.st_nlink, st.st_size)
        return seen

    def apply(self, *entries: Entry) -> None:
        apply_layer(io.BytesIO(build(*entries)), self.dest)

    def assert_outside_untouched(self) -> None:
        assert self.secret.read_bytes() == SECRET
        assert self._snapshot() == self._before
        for xattr in ("trusted.overlay.opaque", "user.pwned"):
            for path in (self.outside, self.secret, self.tmp):
                with pytest.raises(OSError):
                    os.getxattr(path, xattr)


@pytest.fixture
def scene(tmp_path: Path) -> Scene:
    return Scene(tmp_path)


def refused(scene: Scene, match: str, *entries: Entry) -> None:
    with pytest.raises(InvalidArgument, match=match):
        scene.apply(*entries)
    scene.assert_outside_untouched()


# -- names that leave the root ---------------------------------------------------


@pytest.mark.unit
def test_dotdot_escape_is_refused(scene: Scene) -> None:
    refused(scene, r'path "\.\./escape" escapes the layer root', reg("../escape", b"x"))
    assert not (scene.dest.parent / "escape").exists()


@pytest.mark.unit
def test_nested_dotdot_escape_is_refused(scene: Scene) -> None:
    refused(scene, "escapes the layer root", reg("a/../../escape", b"x"))
    assert not (scene.dest.parent / "escape").exists()


@pytest.mark.unit
def test_deep_dotdot_to_the_sentinel_is_refused(scene: Scene) -> None:
    refused(scene, "escapes the layer root", reg("../../../outside/secret", b"pwned"))


@pytest.mark.unit
def test_dotdot_inside_the_root_is_resolved_lexically(scene: Scene) -> None:
    scene.apply(sym("a", str(scene.outside)), reg("a/../x", b"inside"))
    assert (scene.dest / "x").read_bytes() == b"inside"
    scene.assert_outside_untouched()


@pytest.mark.unit
def test_absolute_path_lands_inside_the_layer(scene: Scene) -> None:
    scene.apply(reg(str(scene.secret), b"pwned"))  # "/tmp/.../outside/secret"
    inside = scene.dest / str(scene.secret).lstrip("/")
    assert inside.read_bytes() == b"pwned"
    scene.assert_outside_untouched()


@pytest.mark.unit
def test_overlong_path_is_refused(scene: Scene) -> None:
    refused(scene, "too long", reg("d/" * 2100 + "f"))


# -- writing through symlinks ------------------------------------------------------


@pytest.mark.unit
def test_file_below_a_symlink_to_root_is_refused(scene: Scene) -> None:
    # link -> / then link/<tmp_path>/outside/pwned: a follower would write into the sentinel
    target = "link" + str(scene.outside / "pwned")
    refused(scene, r'goes through "link", which is a symlink', sym("link", "/"), reg(target))
    assert not (scene.outside / "pwned").exists()


@pytest.mark.unit
def test_file_below_a_relative_symlink_out_of_the_root_is_refused(scene: Scene) -> None:
    # dest/d -> ../../.. is tmp_path; d/outside/x would land in the sentinel
    refused(scene, "which is a symlink", sym("d", "../../.."), reg("d/outside/x", b"x"))
    assert not (scene.outside / "x").exists()


@pytest.mark.unit
def test_directory_below_a_symlink_is_refused(scene: Scene) -> None:
    refused(scene, "which is a symlink", sym("d", str(scene.outside)), dir_("d/newdir"))
    assert not (scene.outside / "newdir").exists()


@pytest.mark.unit
def test_symlink_in_the_middle_of_a_path_is_refused(scene: Scene) -> None:
    refused(
        scene,
        r'goes through "a/b", which is a symlink',
        dir_("a"),
        sym("a/b", str(scene.tmp)),
        reg("a/b/outside/secret", b"pwned"),
    )


@pytest.mark.unit
def test_whiteout_below_a_symlink_is_refused(scene: Scene) -> None:
    refused(scene, "which is a symlink", sym("d", str(scene.outside)), reg("d/.wh.secret"))
    assert stat.S_ISREG(os.lstat(scene.secret).st_mode)


@pytest.mark.unit
def test_opaque_marker_below_a_symlink_is_refused(scene: Scene) -> None:
    refused(scene, "which is a symlink", sym("d", str(scene.outside)), reg("d/.wh..wh..opq"))


@pytest.mark.unit
def test_file_replacing_a_symlink_does_not_write_through_it(scene: Scene) -> None:
    scene.apply(sym("f", str(scene.secret)), reg("f", b"pwned", mode=0o777))
    assert (scene.dest / "f").read_bytes() == b"pwned"
    assert not os.path.islink(scene.dest / "f")
    scene.assert_outside_untouched()


@pytest.mark.unit
def test_directory_replacing_a_symlink_does_not_chmod_its_target(scene: Scene) -> None:
    scene.apply(sym("d", str(scene.outside)), dir_("d", mode=0o777))
    assert stat.S_ISDIR(os.lstat(scene.dest / "d").st_mode)
    assert stat.S_IMODE(os.stat(scene.outside).st_mode) == 0o755
    scene.assert_outside_untouched()


@pytest.mark.unit
def test_symlink_xattrs_and_times_do_not_reach_the_target(scene: Scene) -> None:
    before = os.stat(scene.secret)
    entry = sym("s", str(scene.secret), mtime=1)
    entry[0].pax_headers = {"SCHILY.xattr.user.pwned": "1"}
    scene.apply(entry)
    assert os.lstat(scene.dest / "s").st_mtime == 1
    assert os.stat(scene.secret).st_mtime_ns == before.st_mtime_ns
    scene.assert_outside_untouched()


# -- hardlinks -----------------------------------------------------------------------


@pytest.mark.unit
def test_hardlink_escaping_with_dotdot_is_refused(scene: Scene) -> None:
    refused(scene, "escapes the layer root", hard("h", "../../../outside/secret"))
    assert os.stat(scene.secret).st_nlink == 1


@pytest.mark.unit
def test_hardlink_to_etc_passwd_style_dotdot_is_refused(scene: Scene) -> None:
    refused(scene, "escapes the layer root", hard("h", "../../etc/passwd"))


@pytest.mark.unit
def test_hardlink_to_an_absolute_path_outside_is_refused(scene: Scene) -> None:
    refused(scene, "not an earlier file of this layer", hard("h", str(scene.secret)))
    assert os.stat(scene.secret).st_nlink == 1
    assert not (scene.dest / "h").exists()


@pytest.mark.unit
def test_hardlink_through_a_symlinked_directory_is_refused(scene: Scene) -> None:
    refused(
        scene,
        "not an earlier file of this layer",
        sym("d", str(scene.outside)),
        hard("h", "d/secret"),
    )
    assert os.stat(scene.secret).st_nlink == 1


@pytest.mark.unit
def test_hardlink_through_a_symlink_to_an_inside_directory_is_refused(scene: Scene) -> None:
    refused(
        scene,
        "not an earlier file of this layer",
        dir_("real"),
        reg("real/f", b"f"),
        sym("alias", "real"),
        hard("h", "alias/f"),
    )


@pytest.mark.unit
def test_hardlink_target_whose_directory_became_a_symlink_is_refused(scene: Scene) -> None:
    refused(
        scene,
        "not an earlier file of this layer",
        dir_("d"),
        reg("d/secret", b"mine"),
        sym("d", str(scene.outside)),  # replaces d: d/secret is no longer this layer's
        hard("h", "d/secret"),
    )
    assert os.stat(scene.secret).st_nlink == 1


@pytest.mark.unit
def test_writing_over_a_hardlinked_symlink_does_not_follow_it(scene: Scene) -> None:
    scene.apply(sym("s", str(scene.secret)), hard("h", "s"), reg("h", b"pwned"))
    assert (scene.dest / "h").read_bytes() == b"pwned"
    assert os.readlink(scene.dest / "s") == str(scene.secret)
    scene.assert_outside_untouched()


# -- overlay xattrs ----------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    "key",
    [
        "SCHILY.xattr.trusted.overlay.opaque",
        "SCHILY.xattr.trusted.overlay.redirect",
        "SCHILY.xattr.user.overlay.opaque",
        "LIBARCHIVE.xattr.trusted%2Eoverlay%2Eopaque",
    ],
)
def test_smuggled_overlay_xattr_is_refused(scene: Scene, key: str) -> None:
    entry = dir_("d")
    entry[0].pax_headers = {key: "y"}
    refused(scene, "overlayfs xattr", entry)
    assert not (scene.dest / "d").exists()
