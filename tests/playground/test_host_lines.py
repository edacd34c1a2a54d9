"""The network lab's lines: parsed, written back as they were, and every bad one refused with its column."""

from __future__ import annotations

import pytest

from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import AddressArg, Cable, Fault, Host, Spawn, Step
from playground.script.parser import parse_script

TWO = "sockplay 1\nhost alpha 192.0.2.1\nhost beta 203.0.113.9\n"


def nodes(text: str) -> list:
    return [line.node for line in parse_script(text).lines]


def test_the_lines_parse_and_read_back_as_written() -> None:
    text = (
        TWO
        + """spawn server on alpha
spawn client on beta
client: c = socket(tcp)
client: connect(c, alpha:7000)
cut beta
+0.5 mend beta
crash alpha
boot alpha
cable beta delay 100ms loss 5%
cable beta in jitter 10ms
cable beta out clear
cable beta clear
"""
    )
    script = parse_script(text)
    written = [format_node(line.node) for line in script.lines]
    assert written == [line.strip() for line in text.splitlines()[1:]]
    parsed = [line.node for line in script.lines]
    assert parsed[0] == Host("alpha", "192.0.2.1")
    assert parsed[2] == Spawn("server", host="alpha")
    step = parsed[5]
    assert isinstance(step, Step) and isinstance(step.call.args[1], AddressArg)
    assert str(step.call.args[1].address) == "alpha:7000"
    assert parsed[6] == Fault("cut", "beta")
    assert parsed[7] == Fault("mend", "beta", 0.5)
    assert parsed[10] == Cable("beta", None, ("delay", "100ms", "loss", "5%"))
    assert parsed[11] == Cable("beta", "in", ("jitter", "10ms"))


def test_without_host_lines_a_process_may_be_called_host_or_cut() -> None:
    parsed = nodes("sockplay 1\nspawn host\nspawn cut\nhost: s = socket(tcp)\ncut: t = socket(udp)\n")
    assert [type(n).__name__ for n in parsed] == ["Spawn", "Spawn", "Step", "Step"]


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("host gamma 10.0.0.1", 12, "not a lab address"),
        ("host gamma 127.0.0.1", 12, "not a lab address"),
        ("host gamma 192.0.2.0", 12, "not .0 or .255"),
        ("host gamma 198.51.101.1", 12, "not a lab address"),
        ("host gamma 192.0.2.1", 12, "alpha's address already"),
        ("host gamma example.com", 12, "not an IPv4 address"),
        ("host gamma 192.0.2.1:80", 12, "not an IPv4 address"),
        ("host alpha 192.0.2.3", 6, "a host named 'alpha' already exists"),
        ("host Gamma 192.0.2.3", 6, "cannot name a host"),
        ("host gamma", 6, "host needs a name and an address"),
        ("host gamma 192.0.2.3 extra", 22, "unexpected 'extra'"),
        ("cut gamma", 5, "no host named 'gamma'"),
        ("mend", 5, "mend needs a host"),
        ("crash alpha now", 13, "unexpected 'now'"),
        ("spawn p on gamma", 12, "no host named 'gamma'"),
        ("spawn p on", 11, "'on' needs a host"),
        ("cable alpha loss", 13, "loss needs a value"),
        ("cable alpha loss 5", 13, "give a percentage"),
        ("cable alpha delay 100", 13, "give a time with its unit"),
        ("cable alpha wobble 3", 13, "unknown cable setting 'wobble'"),
        ("cable alpha", 12, "cable needs a setting"),
        ("cable gamma loss 5%", 7, "no host named 'gamma'"),
        ("cable alpha loss 500%", 13, "more than 100%"),
    ],
)
def test_bad_lines_are_refused_with_their_column(line: str, column: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(TWO + line + "\n")
    assert (caught.value.line, caught.value.column) == (4, column)
    assert message in caught.value.message


def test_host_port_names_a_known_host() -> None:
    with pytest.raises(ScriptError, match="no host named 'gamma'") as caught:
        parse_script(TWO + "spawn c on beta\nc: s = socket(tcp)\nc: connect(s, gamma:80)\n")
    assert caught.value.column == 15
    with pytest.raises(ScriptError, match="out of range"):
        parse_script(TWO + "spawn c on beta\nc: s = socket(tcp)\nc: connect(s, alpha:70000)\n")


def test_a_recording_s_delays_before_host_and_cable_lines() -> None:
    text = "sockplay 1\n+0.278 host alpha 192.0.2.1\n+0.1 cable alpha loss 1%\n"
    parsed = nodes(text)
    assert parsed == [Host("alpha", "192.0.2.1", 0.278), Cable("alpha", None, ("loss", "1%"), 0.1)]
    assert [format_node(n) for n in parsed] == ["+0.278 host alpha 192.0.2.1", "+0.1 cable alpha loss 1%"]
    with pytest.raises(ScriptError, match="out of range"):
        parse_script("sockplay 1\n+100000 host alpha 192.0.2.1\n")


def test_a_repeated_block_adds_no_host_but_may_crash_and_boot_one() -> None:
    with pytest.raises(ScriptError, match="a repeated block cannot add hosts"):
        parse_script("sockplay 1\nrepeat 2\nhost alpha 192.0.2.1\nend\n")
    block = nodes(TWO + "repeat 3\ncrash alpha\nboot alpha\nend\n")[-1]
    assert [format_node(line.node) for line in block.lines] == ["crash alpha", "boot alpha"]
