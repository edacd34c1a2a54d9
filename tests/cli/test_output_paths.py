"""`--pcap`, `--ladder`, `--record` and `export -o`: one clear line and exit 2 before any lab, for a bad path."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PAIR_SCRIPT, REPO


def _sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "pair.sockplay"
    path.write_text(PAIR_SCRIPT)
    return path


@pytest.fixture
def bad_paths(tmp_path: Path) -> dict[str, Path]:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "kept").write_text("kept")
    (tmp_path / "link").symlink_to(tmp_path / "kept")
    (tmp_path / "dir").mkdir()
    return {
        "a device": Path("/dev/full"),
        "a directory": tmp_path / "dir",
        "does not exist": tmp_path / "missing" / "out",
        "a FIFO": tmp_path / "fifo",
        "a symbolic link": tmp_path / "link",
    }


def _refused(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and why in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert "lab network" not in done.stdout  # refused before the lab started


def test_run_refuses_bad_pcap_and_ladder_paths_before_the_lab(
    script: Path, bad_paths: dict[str, Path], tmp_path: Path
) -> None:
    for why, path in bad_paths.items():
        _refused(_sockplay("run", "--pcap", str(path), str(script)), why)
        _refused(_sockplay("run", "--ladder", str(path), str(script)), why)
        _refused(_sockplay("replay", "--check", "--pcap", str(path), str(script)), why)
    assert (tmp_path / "kept").read_text() == "kept"


def test_the_tui_refuses_a_bad_record_or_pcap_path_before_it_starts(bad_paths: dict[str, Path]) -> None:
    for why, path in bad_paths.items():
        if why != "does not exist":  # --record makes its directory
            _refused(_sockplay("--record", str(path)), why)
        _refused(_sockplay("--pcap", str(path), "--no-record"), why)


def test_export_never_changes_a_device_or_follows_a_link(script: Path, tmp_path: Path) -> None:
    node = tmp_path / "null"
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(node, 0o666)
    _refused(_sockplay("export", "--python", "-o", str(node), str(script)), "a device")
    assert stat.S_IMODE(node.stat().st_mode) == 0o666
    (tmp_path / "kept").write_text("kept")
    (tmp_path / "link").symlink_to(tmp_path / "kept")
    _refused(_sockplay("export", "--python", "-o", str(tmp_path / "link"), str(script)), "symbolic link")
    assert (tmp_path / "kept").read_text() == "kept" and stat.S_IMODE((tmp_path / "kept").stat().st_mode) == 0o644


def test_rerunning_replaces_earlier_outputs(script: Path, tmp_path: Path) -> None:
    pcap, ladder, program = tmp_path / "a.pcap", tmp_path / "a.svg", tmp_path / "a.py"
    for path in (pcap, ladder, program):
        path.write_text("from an earlier run")
    done = _sockplay("run", "--pcap", str(pcap), "--ladder", str(ladder), str(script))
    assert done.returncode == 0, done.stderr
    exported = _sockplay("export", "--python", "-o", str(program), str(script))
    assert exported.returncode == 0, exported.stderr
    assert program.read_text().startswith("#!") and os.access(program, os.X_OK)
    if "no pcap written" not in done.stderr:
        assert pcap.read_bytes()[:4] == bytes.fromhex("4d3cb2a1") and "<svg" in ladder.read_text()
