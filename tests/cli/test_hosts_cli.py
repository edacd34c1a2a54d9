"""The network lab from the command line: hosts need no --allow-network, anything else still does; export says no."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dpkt

from tests.helpers import REPO

LITERAL = """sockplay 1
host alpha 192.0.2.1
host beta 192.0.2.2
spawn server on alpha
spawn client on beta
server: l = socket(tcp) = 3
server: bind(l, 192.0.2.1:7000) = 0
server: listen(l, 8) = 0
client: c = socket(tcp) = 3
client: connect(c, alpha:7000) = 0
client: d = socket(tcp) = 4
client: connect(d, 192.0.2.1:7000) = 0
server: a = accept(l) = 4
client: write(c, "hi") = 2
server: read(a, 10) = 2 "hi"
"""


def sockplay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_hosts_addresses_need_no_allow_network(tmp_path: Path) -> None:
    script = tmp_path / "hosts.sockplay"
    script.write_text(LITERAL)
    pcap = tmp_path / "wire.pcap"
    done = sockplay("replay", "--check", str(script))
    assert done.returncode == 0, done.stderr
    done = sockplay("run", "--pcap", str(pcap), str(script))
    assert done.returncode == 0, done.stdout + done.stderr
    # The pcap holds the switch's frames: the hosts' segments, between their documentation addresses.
    with pcap.open("rb") as f:
        ends = set()
        for _, frame in dpkt.pcap.Reader(f):
            ip = dpkt.ethernet.Ethernet(frame).data
            ends.add((bytes(ip.src), bytes(ip.dst)))
    assert (bytes([192, 0, 2, 2]), bytes([192, 0, 2, 1])) in ends


def test_any_other_address_still_needs_allow_network(tmp_path: Path) -> None:
    script = tmp_path / "other.sockplay"
    script.write_text(LITERAL.replace("connect(d, 192.0.2.1:7000)", "connect(d, 192.0.2.99:7000)"))
    done = sockplay("replay", "--check", str(script))
    assert done.returncode == 2
    assert "would connect to 192.0.2.99:7000, which is not loopback" in done.stderr
    done = sockplay("run", str(script))
    assert done.returncode == 1
    assert "refusing to connect to 192.0.2.99:7000" in done.stdout + done.stderr


def test_export_refuses_the_network_labs_lines(tmp_path: Path) -> None:
    script = tmp_path / "hosts.sockplay"
    script.write_text(LITERAL)
    done = sockplay("export", str(script), "--python", "-o", str(tmp_path / "out.py"))
    assert done.returncode == 2
    assert "cannot export line 2 (`host alpha 192.0.2.1`): it is the network lab's" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.py").exists()
