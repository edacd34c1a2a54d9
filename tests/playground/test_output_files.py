"""playground.output_files: sockplay writes regular files only, never through a link, never a device's mode."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from playground.output_files import OutputRefused, check_output_path, open_output_stream, write_output


def _node(path: Path) -> Path:
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    os.chmod(path, 0o666)
    return path


def test_a_whole_file_replaces_a_regular_file_by_a_new_one(tmp_path: Path) -> None:
    target = tmp_path / "out.py"
    target.write_text("old")
    linked = tmp_path / "hard-link"
    os.link(target, linked)
    write_output(target, "new", mode=0o755)
    assert target.read_text() == "new" and linked.read_text() == "old"  # not written through
    assert stat.S_IMODE(target.stat().st_mode) & 0o100 and not stat.S_IMODE(linked.stat().st_mode) & 0o100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard-link", "out.py"]  # no temporary left


@pytest.mark.parametrize("kind", ["symlink", "directory", "fifo", "device"])
def test_anything_but_a_regular_file_is_refused_untouched(tmp_path: Path, kind: str) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    target = tmp_path / "target"
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    else:
        _node(target)
    before = os.lstat(target)
    for attempt in (lambda: write_output(target, "x", mode=0o755), lambda: open_output_stream(target)):
        with pytest.raises(OutputRefused) as refused:
            attempt()
        assert str(refused.value).startswith(f"cannot write {target}: ") and "\n" not in str(refused.value)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino, after.st_mtime_ns) == (before.st_mode, before.st_ino, before.st_mtime_ns)
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target", "victim"]


def test_a_missing_directory_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(OutputRefused, match="does not exist"):
        check_output_path(tmp_path / "nowhere" / "x.pcap")
    assert check_output_path(tmp_path / "nowhere" / "x.sockplay", make_parent=True).name == "x.sockplay"
    with pytest.raises(OutputRefused, match="(?i)not a directory"):
        (tmp_path / "file").write_text("")
        check_output_path(tmp_path / "file" / "x.pcap")


def test_a_stream_empties_a_regular_file_and_creates_a_new_one_0644(tmp_path: Path) -> None:
    old = tmp_path / "old.pcap"
    old.write_text("previous run")
    fd = open_output_stream(old)
    os.write(fd, b"new")
    os.close(fd)
    assert old.read_bytes() == b"new"
    umask = os.umask(0o022)
    try:
        fd = open_output_stream(tmp_path / "fresh.pcap")
    finally:
        os.umask(umask)
    os.close(fd)
    assert stat.S_IMODE((tmp_path / "fresh.pcap").stat().st_mode) == 0o644
