"""`sockplay replay --check`: exit codes, divergence reports, speed, kernel notes, truncation, network refusal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FIRST, PAIR_SCRIPT, REPO

BLOCKING = (
    PAIR_SCRIPT
    + """server: read(a, 100) ...
client: write(c, "x")                    = 1
server: ... = 1 "x"
server: kid = fork()
kid: exit(3)
server: waitpid(kid, 0)
"""
)

RECORDING = """# sockplay session: every step with its outcome, as it happened.
#@ sockplay-version: 0.1.0
#@ kernel: {kernel}
#@ started: 2026-01-01T00:00:00.000000Z
#@ lab: private namespace (root)
sockplay 1
spawn server                                 # pid 100
spawn client                                 # pid 101
server: u = socket(udp) = 3
server: bind(u, 127.0.0.1:0) = 0
client: v = socket(udp) = 3
+0.4 client: sendto(v, "one", server.u) = 3
server: recvfrom(u, 10) = 3 "one" from 127.0.0.1:40000
server: recvfrom(u, 10) ...
#@ wait 0.3
sleep 0.01
client: sendto(v, "two", server.u) = 3
server: ... = 3 "two" from 127.0.0.1:40000
"""


def sockplay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "playground.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_recording_replays_and_a_tampered_outcome_is_named(tmp_path: Path) -> None:
    good = write(tmp_path, "good.sockplay", RECORDING.format(kernel=os.uname().release))
    result = sockplay("replay", "--check", str(good))
    assert result.returncode == 0, result.stderr
    assert "kernel" not in result.stderr
    # One outcome changed: exit 1, and the report names that line with expected and actual.
    lines = RECORDING.format(kernel=os.uname().release).splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("server: recvfrom(u, 10) = 3"))
    lines[number - 1] = lines[number - 1].replace('3 "one"', '3 "ono"')
    bad = write(tmp_path, "bad.sockplay", "\n".join(lines) + "\n")
    result = sockplay("replay", "--check", str(bad))
    assert result.returncode == 1
    report = result.stderr.splitlines()
    at = next(i for i, line in enumerate(report) if line.startswith(f"{bad}:{number}: "))
    assert "data differs" in report[at]
    assert report[at + 1].split() == [
        "expected:",
        "server:",
        "recvfrom(u,",
        "10)",
        "=",
        "3",
        '"ono"',
        "from",
        "127.0.0.1:40000",
    ]
    assert report[at + 2].startswith('    actual:   server: recvfrom(u, 10) = 3 "one" from 127.0.0.1:')
    assert sum(line.startswith(f"{bad}:") for line in report) == 1
    assert "1 line(s) diverged" in result.stderr


def test_json_reports_each_line_then_a_summary(tmp_path: Path) -> None:
    text = FIRST.replace("client: c = socket(tcp)                  = 3", "client: c = socket(tcp) = 5")
    path = write(tmp_path, "first.sockplay", text)
    result = sockplay("replay", "--check", "--json", str(path))
    assert result.returncode == 1
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    summary = objects[-1]["summary"]
    assert summary["exit"] == 1 and summary["divergences"][0]["line"] == 11
    assert summary["divergences"][0]["expected"] == "client: c = socket(tcp) = 5"
    assert summary["divergences"][0]["actual"].startswith("client: c = socket(tcp) = 3")
    assert [o["line"] for o in objects[:-1]] == [3, 4, *range(6, 19)]
    assert [o["ok"] for o in objects[:-1]].count(False) == 1


@pytest.mark.parametrize("example", [FIRST, BLOCKING], ids=["first", "blocking"])
def test_the_output_of_run_is_a_script_that_replay_accepts(example: str, tmp_path: Path) -> None:
    script = write(tmp_path, "example.sockplay", example)
    ran = sockplay("run", str(script))
    assert ran.returncode == 0, ran.stderr
    output = write(tmp_path, "ran.sockplay", ran.stdout)
    again = sockplay("replay", "--check", str(output))
    assert again.returncode == 0, again.stderr
    # And once more: the replay's own output is a script too.
    twice = write(tmp_path, "twice.sockplay", again.stdout)
    assert sockplay("replay", "--check", str(twice)).returncode == 0


def test_speed_scales_the_recorded_pauses(tmp_path: Path) -> None:
    path = write(tmp_path, "rec.sockplay", RECORDING.format(kernel=os.uname().release))

    def gap(speed: str) -> float:
        """ms between the first step (line 9) and the delayed one (line 12), as replayed."""
        result = sockplay("replay", "--check", "--json", "--speed", speed, str(path))
        assert result.returncode == 0, result.stderr
        starts = {o["line"]: o.get("start_ms") for o in map(json.loads, result.stdout.splitlines()[:-1])}
        assert json.loads(result.stdout.splitlines()[-1])["summary"]["speed"] == float(speed)
        return starts[12] - starts[11]

    assert gap("1") >= 400
    assert gap("0") < 400


def test_another_kernel_is_said_up_front(tmp_path: Path) -> None:
    text = RECORDING.format(kernel="2.6.32-ancient").replace(
        "#@ lab:", "#@ sysctl net.ipv4.tcp_fin_timeout: 12345\n#@ lab:"
    )
    result = sockplay("replay", "--check", str(write(tmp_path, "old.sockplay", text)))
    assert result.returncode == 0, result.stderr
    first = result.stderr.splitlines()[0]
    assert "recorded on kernel 2.6.32-ancient" in first and os.uname().release in first
    assert re.search(r"net\.ipv4\.tcp_fin_timeout was '12345', is '\d+'", result.stderr)


def test_a_cut_off_last_line_is_named_and_what_precedes_it_replays(tmp_path: Path) -> None:
    text = RECORDING.format(kernel=os.uname().release)
    cut = text[: text.index('client: sendto(v, "two"') + len('client: sendto(v, "tw')]
    path = write(tmp_path, "cut.sockplay", cut)
    result = sockplay("replay", "--check", str(path))
    assert result.returncode == 0, result.stderr
    number = cut.count("\n") + 1
    assert f"{path}:{number}: the last line is cut off" in result.stderr
    assert 'sendto(v, "two"' not in result.stdout
    # `sockplay run` (strict) refuses it, naming the line.
    strict = sockplay("run", str(path))
    assert strict.returncode == 2 and f"{path}:{number}:" in strict.stderr and "middle of this line" in strict.stderr


def test_bad_scripts_and_usage_exit_2(tmp_path: Path) -> None:
    cases = [
        (["replay", "--check", str(tmp_path / "missing.sockplay")], "cannot read"),
        (
            ["replay", "--check", str(write(tmp_path, "v2.sockplay", "sockplay 2\nspawn a\n"))],
            "v2.sockplay:1:10: format version 2 is not supported",
        ),
        (["replay", "--check", str(write(tmp_path, "bin.sockplay", "sockplay 1\n")), "--speed", "-1"], "--speed"),
        (["replay", "--check", str(tmp_path / "nonutf8.sockplay")], "nonutf8.sockplay:2:3: file is not valid UTF-8"),
        (["replay", "--check"], "usage"),
    ]
    (tmp_path / "nonutf8.sockplay").write_bytes(b"sockplay 1\n# \xff\n")
    for args, words in cases:
        result = sockplay(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr, (words, result.stderr)


def test_anything_but_loopback_runs_only_with_allow_network(tmp_path: Path) -> None:
    text = "sockplay 1\nspawn a\na: s = socket(tcp) = 3\na: bind(s, 192.0.2.1:0)\na: close(s) = 0\n"
    path = write(tmp_path, "any.sockplay", text)
    refused = sockplay("replay", "--check", str(path))
    assert refused.returncode == 2
    assert f"{path}:4: would bind 192.0.2.1:0, which is not loopback" in refused.stderr
    assert "--allow-network" in refused.stderr and "Nothing was run" in refused.stderr
    assert refused.stdout == ""


def test_a_wildcard_bind_replays_as_it_runs_in_the_private_namespace(tmp_path: Path) -> None:
    """In the private namespace only loopback exists: `run` takes `bind(s, 0.0.0.0:0)`, and so does replay."""
    text = "sockplay 1\nspawn a\na: s = socket(tcp) = 3\na: bind(s, 0.0.0.0:0) = 0\n"
    text += "a: t = socket(AF_INET6, SOCK_STREAM, 0) = 4\na: bind(t, [::]:0) = 0\n"
    path = write(tmp_path, "any.sockplay", text)
    ran = sockplay("run", str(path))
    assert ran.returncode == 0, ran.stderr
    replayed = sockplay("replay", "--check", str(path))
    assert replayed.returncode == 0, replayed.stderr
    on_host = sockplay("replay", "--check", "--host-network", str(path))
    assert on_host.returncode == 1 and "refusing to bind 0.0.0.0:0" in on_host.stderr


def test_a_scoped_ipv6_address_binds_or_is_refused_clearly(tmp_path: Path) -> None:
    text = "sockplay 1\nspawn a\na: s = socket(AF_INET6, SOCK_DGRAM, 0) = 3\na: bind(s, [::1%lo]:0) = 0\n"
    text += "a: t = socket(AF_INET6, SOCK_DGRAM, 0) = 4\na: bind(t, [::1%eth9]:0) = 0\n"
    path = write(tmp_path, "zone.sockplay", text)
    result = sockplay("run", str(path))
    assert result.returncode == 1
    assert "a: bind(s, [::1%lo]:0) = 0 " in result.stdout  # the zone's interface index is the scope id
    assert f"{path}:6: a could not make the call: OSError: no network interface named 'eth9'" in result.stderr
    assert "inet_pton" not in result.stderr and "Traceback" not in result.stderr
    bad = write(tmp_path, "bad.sockplay", text.replace("%eth9", "%e/9"))
    refused = sockplay("run", str(bad))
    assert refused.returncode == 2
    assert f"{bad}:6:12: '::1%e/9': a zone is an interface name or number" in refused.stderr


def test_addresses_beyond_loopback_are_refused_by_replay(tmp_path: Path) -> None:
    for address, shown in (
        ("10.1.2.3:80", "10.1.2.3:80"),
        ("[2001:db8::1]:80", "[2001:db8::1]:80"),
        ("[::ffff:8.8.8.8]:53", "[::ffff:808:808]:53"),
    ):
        sending = write(
            tmp_path, "far.sockplay", f'sockplay 1\nspawn a\na: u = socket(udp)\na: sendto(u, "x", {address})\n'
        )
        result = sockplay("replay", "--check", str(sending))
        assert result.returncode == 2 and f"{sending}:4: would send to {shown}" in result.stderr


def test_replay_check_writes_a_pcap(tmp_path: Path) -> None:
    script = tmp_path / "pair.sockplay"
    script.write_text(
        "sockplay 1\nspawn server\nspawn client\nserver: l = socket(tcp) = 3\nserver: bind(l, 127.0.0.1:0) = 0\n"
        "server: listen(l, 8) = 0\nclient: c = socket(tcp) = 3\nclient: connect(c, server.l) = 0\n"
        "server: a = accept(l) = 4\nclient: close(c) = 0\n"
    )
    pcap = tmp_path / "replay.pcap"
    result = sockplay("replay", "--check", "--pcap", str(pcap), str(script))
    assert result.returncode == 0, result.stderr
    if "no pcap written" in result.stderr:
        pytest.skip(result.stderr.strip())
    import dpkt

    with pcap.open("rb") as f:
        flags = [dpkt.ethernet.Ethernet(buf).data.data.flags for _, buf in dpkt.pcap.Reader(f)]
    assert flags[0] == dpkt.tcp.TH_SYN and any(f & dpkt.tcp.TH_FIN for f in flags)
