"""Indexed names: `repeat N as i` with `s[i]`, `s[7]` anywhere, `c[*]` as a set; checked by the parser, run for real."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from playground.cli.replay import ReplayCheck, load_recording
from playground.executor import run_typed_line
from playground.export import export_python
from playground.lab import Lab
from playground.lab_process import Process
from playground.name_codes import split_name
from playground.recording import Recorder
from playground.runner import Runner, run_script
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Repeat, SetArg, Step
from playground.script.parser import parse_script
from playground.session.view import build_view
from tests.helpers import PAIR_SCRIPT, REPO, outcome
from tests.playground.test_recording import body

SERVER = """sockplay 1
spawn server
spawn client
server: l = socket(tcp)                  = 3
server: bind(l, 127.0.0.1:0)             = 0
server: listen(l, 64)                    = 0
"""

CONNECT_FIVE = (
    SERVER
    + """repeat 5 as i
client: s[i] = socket(tcp)
client: connect(s[i], server.l)          = 0
server: c[i] = accept(l)
end
"""
)


def test_repeat_as_numbers_the_runs_and_indexed_names_parse() -> None:
    script = parse_script(CONNECT_FIVE)
    block = script.lines[-1].node
    assert isinstance(block, Repeat) and block.count == 5 and block.var == "i"
    assert format_node(block) == "repeat 5 as i"
    first = block.lines[0].node
    assert isinstance(first, Step) and first.var == "s[i]"
    assert format_node(block.lines[1].node) == "client: connect(s[i], server.l) = 0"


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("client: close(s[j])", 15, "'j' is not the index of this block"),
        ("client: close(t[0])", 15, "no socket named 't[0]'"),
        ("client: close(s[*])", 15, "a set of descriptors"),
        ("client: close(s[100000])", 15, "out of range"),
        ("server: poll(z[*], POLLIN, 0)", 14, "no socket named 'z[*]'"),
        ("server: poll({c[0], q}, POLLIN, 0)", 14, "no socket named 'q' (its names: c[...], l)"),
        ("server: epoll_ctl(l, EPOLL_CTL_ADD, c[0], POLLIN)", 43, "not one of the epoll events"),
        ("server: epoll_ctl(l, EPOLL_CTL_PUT, c[0], EPOLLIN)", 22, "EPOLL_CTL_ADD"),
        ("server: epoll_wait(l, 100001, 0)", 23, "MAX"),
        ("server: x = epoll_create1(1)", 27, "epoll_create1 flags"),
        ("server: read(c[1], 10) = 1 {c[1] POLLIN}", 34, "':'"),
        ("server: read(c[1], 10) = 1 {c[1]: POLLIN, c[1]: POLLIN}", 43, "listed twice"),
        ("server: read(c[1], 10) = 1 {c[1]: NOPE}", 35, "not an event"),
        ("server: write(c[0], d)", 21, "expected data"),
    ],
)
def test_bad_indexed_names_and_sets_are_clear_errors(line: str, column: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(CONNECT_FIVE + line + "\n")
    assert caught.value.column == column, caught.value
    assert message in caught.value.message


def test_the_index_variable_stands_only_inside_its_block() -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(CONNECT_FIVE + "client: close(s[i])\n")
    assert "no 'repeat N as VAR' is open here" in caught.value.message
    with pytest.raises(ScriptError) as caught:
        parse_script(SERVER + "repeat 2 as end\nend\n")
    assert "cannot number the runs" in caught.value.message
    with pytest.raises(ScriptError) as caught:
        parse_script(SERVER + "repeat 2 for i\nend\n")
    assert "'as'" in caught.value.message


def test_sets_parse_as_sets_and_a_family_as_a_set_of_one_family() -> None:
    script = parse_script(CONNECT_FIVE + "server: poll({c[0], c[3]}, POLLIN, 0)\nserver: poll(c[*], POLLIN, 0)\n")
    braced, family = (line.node for line in script.lines[-2:])
    assert isinstance(braced, Step) and braced.call.args[0] == SetArg(("c[0]", "c[3]"), 14)
    assert isinstance(family, Step) and family.call.args[0] == SetArg(("c[*]",), 14, braced=False)
    assert format_node(family) == "server: poll(c[*], POLLIN, 0)"


async def test_each_run_names_its_own_socket_and_the_names_resolve_everywhere() -> None:
    script = parse_script(
        CONNECT_FIVE
        + """client: write(s[3], "three")             = 5
server: read(c[3], 10)                   = 5 "three"
client: getpeername(s[4])
state server.c[4] ESTABLISHED
server: close(c[4])                      = 0
state server.c[4] FIN-WAIT-2
"""
    )
    report = await run_script(script)
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
    texts = [s.text for s in report.steps]
    # Each run's line is written with its number: what a recording and --json keep.
    assert texts[5].startswith("client: s[0] = socket(tcp) = 3")
    assert "server: c[4] = accept(l) = 8 from 127.0.0.1:" in texts[5 + 3 * 4 + 2]
    assert all("[i]" not in text for text in texts)


async def test_an_index_out_of_range_names_the_family(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    for i in range(3):
        assert await outcome(lab, f"a: s[{i}] = socket(udp)") == f"= {3 + i}"
    with pytest.raises(Exception) as caught:
        await outcome(lab, "a: close(s[7])")
    assert "the family s has 3 names, s[0] to s[2]" in str(caught.value)
    assert await outcome(lab, "a: PROC_FREE = socket(udp)") == "= 6"
    assert await outcome(lab, "a: poll(s[*], POLLOUT, 0)") == "= 3 {s[0]: POLLOUT, s[1]: POLLOUT, s[2]: POLLOUT}"
    # A closed name leaves the family's live names; a name given again rejoins it.
    assert await outcome(lab, "a: close(s[1])") == "= 0"
    assert await outcome(lab, "a: poll(s[*], POLLOUT, 0)") == "= 2 {s[0]: POLLOUT, s[2]: POLLOUT}"
    assert await outcome(lab, "a: s[1] = socket(udp)") == "= 4"
    assert await outcome(lab, "a: poll(s[*], POLLOUT, 0)") == "= 3 {s[0]: POLLOUT, s[1]: POLLOUT, s[2]: POLLOUT}"


async def test_an_address_of_an_indexed_socket_resolves(lab: Lab) -> None:
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "spawn b")
    for i in range(2):
        await run_typed_line(lab, f"a: u[{i}] = socket(udp)")
        await run_typed_line(lab, f"a: bind(u[{i}], 127.0.0.1:0)")
    await run_typed_line(lab, "b: x = socket(udp)")
    assert await outcome(lab, 'b: sendto(x, "one", a.u[1])') == "= 3"
    assert await outcome(lab, "a: recv(u[1], 10)") == '= 3 "one"'


CONTRACT = next(p for p in (REPO.parent / "shared" / "docs" / "script.md", REPO / "docs" / "script.md") if p.is_file())


def contract_example() -> str:
    """The contract's example of "Many sockets", with its thread (issue 13's "threads" part) replaced by the
    server itself reading, on the pair of tests/helpers.py's PAIR_SCRIPT whose listener takes 1000 in its queue."""
    text = CONTRACT.read_text()
    section = text[text.index("## Many sockets") :]
    block = re.search(r"```\n(.*?)```", section, flags=re.S)
    assert block is not None
    lines = block.group(1).splitlines()
    assert lines[-2].startswith("thread worker in server") and lines[-1].startswith("worker: read(c[7], 10)")
    lines[-2:] = ['server: read(c[7], 10)                   = 1 "x"']
    prelude = PAIR_SCRIPT.replace("listen(l, 8)", "listen(l, 1000)")
    return prelude + "\n".join(lines) + "\n"


async def test_the_contracts_example_runs_as_written_but_its_thread() -> None:
    report = await run_script(parse_script(contract_example(), f"{CONTRACT}:many"))
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
    texts = [s.text for s in report.steps]
    assert any(t.startswith("server: epoll_wait(ep, 64, 1000) = 1 {c[7]: EPOLLIN}") for t in texts)
    assert any(t.startswith("server: poll(c[*], POLLIN, 0) = 1 {c[7]: POLLIN}") for t in texts)


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        ("", "line 7: export cannot write a 'repeat N as VAR' block"),
        ("server: ep = epoll_create1(0)\n", "line 12: export cannot write epoll_create1"),
        ("server: poll(c[*], POLLIN, 0)\n", "line 12: export cannot write a set or an indexed name"),
        ("server: d = read(c[0], 1) ...\n", "line 12: export cannot write data named by a read"),
    ],
)
def test_export_says_which_line_it_cannot_write_yet(tail: str, why: str) -> None:
    script = parse_script(CONNECT_FIVE + tail)
    if not tail:
        with pytest.raises(ValueError, match=re.escape(why)):
            export_python(script)
        return
    # Past the block: the block's own line is reported first, so check the later line alone.
    script.lines = [line for line in script.lines if not isinstance(line.node, Repeat)]
    with pytest.raises(ValueError, match=re.escape(why)):
        export_python(script)


async def test_a_recording_keeps_each_run_with_its_index_and_replays(tmp_path: Path) -> None:
    """A `repeat N as i` block is recorded as the lines each run made, `s[0]`, `s[1]`...: faithful to replay."""
    path = tmp_path / "many.sockplay"
    lab = await Lab.start()
    recorder = Recorder(lab, path)
    try:
        script = parse_script(
            CONNECT_FIVE
            + """server: ep = epoll_create1(0)
repeat 5 as i
server: epoll_ctl(ep, EPOLL_CTL_ADD, c[i], EPOLLIN)
end
client: write(s[2], "x")
server: epoll_wait(ep, 8, 1000)
server: d = read(c[2], 10)
server: write(c[4], d)
"""
        )
        report = await Runner(lab).run(script)
        assert report.divergences == []
    finally:
        recorder.close()
        await lab.shutdown()
    lines = body(path)
    assert "client: s[4] = socket(tcp) = 7" in lines
    assert "server: epoll_ctl(ep, EPOLL_CTL_ADD, c[3], EPOLLIN) = 0" in lines
    assert "server: epoll_wait(ep, 8, 1000) = 1 {c[2]: EPOLLIN}" in lines
    assert 'server: d = read(c[2], 10) = 1 "x"' in lines
    assert "server: write(c[4], d) = 1" in lines
    assert not any("[i]" in line for line in lines)
    assert await ReplayCheck(load_recording(str(path)), str(path), speed=0.0).run() == 0


def test_run_json_keeps_the_index_and_lists_the_ready_set(tmp_path: Path) -> None:
    script = tmp_path / "many.sockplay"
    script.write_text(CONNECT_FIVE + 'client: write(s[1], "x")\nserver: poll(c[*], POLLIN, 0) = 1 {c[1]: POLLIN}\n')
    result = subprocess.run(
        [sys.executable, "-m", "playground.cli", "run", "--json", str(script)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    accepts = [o["text"].split(" = accept")[0] for o in objects if o.get("call") == "accept"]
    assert accepts == [f"server: c[{i}]" for i in range(5)]
    poll = objects[-1]
    assert poll["text"] == "server: poll(c[*], POLLIN, 0) = 1 {c[1]: POLLIN}"
    assert poll["ready"] == {"c[1]": ["POLLIN"]} and poll["ok"]


async def test_a_timing_claim_in_a_repeat_as_block_is_checked_on_the_median_of_its_runs() -> None:
    script = parse_script(
        CONNECT_FIVE.replace("server: c[i] = accept(l)", "server: c[i] = accept(l) after 10s")
        + "repeat 3 as i\nserver: getsockname(c[i]) within 5s\nend\n"
    )
    report = await run_script(script)
    assert [s.line.number for s in report.divergences] == [7]  # the first block's; the second's claim held
    why = report.divergences[0].divergence or ""
    assert why.startswith("line 10: expected after 10s") and "the median of 5 runs" in why


async def test_the_lab_view_names_each_socket_of_a_family(lab: Lab) -> None:
    """What the lab tree and the inspector show: each socket by its indexed name, with the kernel's state."""
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: l = socket(tcp)")
    await run_typed_line(lab, "a: bind(l, 127.0.0.1:0)")
    await run_typed_line(lab, "a: listen(l, 8)")
    for i in range(3):
        await run_typed_line(lab, f"a: s[{i}] = socket(tcp)")
        await run_typed_line(lab, f"a: connect(s[{i}], a.l)")
        await run_typed_line(lab, f"a: c[{i}] = accept(l)")
    view = build_view(lab, await lab.inspect(), {}, {})
    sockets = {s.name: s for s in view.processes[0].sockets}
    assert set(sockets) == {"l", "s[0]", "s[1]", "s[2]", "c[0]", "c[1]", "c[2]"}
    assert sockets["c[2]"].state == "ESTABLISHED" and sockets["c[2]"].fd == 9


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("c[7]", ("c", 7)),
        ("a_b9[0012]", ("a_b9", 12)),
        ("_[0]", ("_", 0)),
        ("c", None),
        ("[1]", None),
        ("c[]", None),
        ("c[1a]", None),
        ("9c[1]", None),
        ("c[1][2]", None),
        ("c[-1]", None),
        ("é[1]", None),
        ("c[²]", None),
        ("c[٣]", None),
        ("a b[1]", None),
        ("x[9999999999999999999]", None),  # (no script writes one: the parser stops at 99,999)
        (None, None),
    ],
)
def test_a_family_is_an_ascii_name_and_an_ascii_index(name: str | None, family: tuple | None) -> None:
    assert split_name(name) == family


async def test_a_family_made_out_of_order_is_listed_by_index_where_its_first_descriptor_is(lab: Lab) -> None:
    """The Lab pane's grouping: a family's members by index whatever order their descriptors came in; a
    family of one is a socket of its own; each family stands where its lowest descriptor is."""
    await run_typed_line(lab, "spawn a")
    for line in ("l = socket(tcp)", "bind(l, 127.0.0.1:0)", "listen(l, 8)", "u[0] = socket(udp)"):
        await run_typed_line(lab, f"a: {line}")
    for i in (2, 0, 1):
        await run_typed_line(lab, f"a: s[{i}] = socket(tcp)")
        await run_typed_line(lab, f"a: connect(s[{i}], a.l)")
        await run_typed_line(lab, f"a: c[{i}] = accept(l)")
    process = build_view(lab, await lab.inspect(), {}, {}).processes[0]
    entries = process.entries
    sockets = process.sockets
    assert sockets.names_in_order() == [sockets.name_at(at) for at in range(len(sockets))]
    assert len(sockets) == 8 and sockets.names_in_order()[:2] == ["l", "u[0]"]
    assert [e.name for e in entries] == ["l", "u[0]", "s", "c"]  # s[2] came first, at descriptor 5
    for family in entries[2:]:
        assert list(family.indices) == [0, 1, 2]
        assert [m.name for m in family.members] == [f"{family.name}[{i}]" for i in range(3)]
    s, c = entries[2], entries[3]
    fds = {m.name: m.fd for m in (*s.members, *c.members)}
    assert fds["s[2]"] < fds["c[2]"] < fds["s[0]"] < fds["c[0]"] < fds["s[1]"] < fds["c[1]"]


def test_var_for_gives_the_newest_name_of_a_number_and_an_older_one_again_when_the_newer_moves() -> None:
    proc = Process("a", 1)

    def name(var: str, fd: int) -> None:  # as the lab names a descriptor: the newest name comes last
        proc.names.pop(var, None)
        proc.names[var] = fd

    name("a", 3)
    assert proc.var_for(3) == "a"
    name("b", 3)  # a closed, its number taken again
    assert proc.var_for(3) == "b"
    name("b", 4)  # b named anew: 3 is a's once more (as a scan of the names finds)
    assert (proc.var_for(3), proc.var_for(4)) == ("a", "b")
    proc.names["a"] = 5  # set in place (not moved to the end): still seen
    assert (proc.var_for(3), proc.var_for(5)) == (None, "a")
    del proc.names["a"]
    assert proc.var_for(5) is None
    child = Process("kid", 2, names=dict(proc.names))  # a fork's child: a copy of its parent's names
    assert child.var_for(4) == "b"
    name("far", 70_000)  # a dup2 far above the others (the index keeps such a number beside its list)
    name("near", 6)
    assert (proc.var_for(70_000), proc.var_for(6), proc.var_for(69_999), proc.var_for(-1)) == (
        "far",
        "near",
        None,
        None,
    )


async def test_a_block_substitutes_its_index_in_wire_state_and_blocked_lines() -> None:
    script = parse_script(
        SERVER
        + """repeat 3 as i
client: s[i] = socket(tcp)
client: connect(s[i], server.l)          = 0
~ client.s[i] > server.l SYN
server: c[i] = accept(l)
state server.c[i] ESTABLISHED
server: read(c[i], 10) ...
client: write(s[i], "x")                 = 1
server: ... = 1 "x"
end
"""
    )
    report = await run_script(script)
    assert [(s.line.number, s.divergence or s.error) for s in report.divergences] == []
    texts = [s.text for s in report.steps]
    assert "~ client.s[2] > server.l SYN" in texts and "state server.c[2] ESTABLISHED" in texts
    assert "server: read(c[1], 10) ..." in texts


async def test_a_socket_is_found_by_its_descriptor_beside_a_descriptor_of_another_kind(lab: Lab) -> None:
    """An epoll instance is a descriptor of another kind: the view lists the sockets only, and finds each by fd."""
    await run_typed_line(lab, "spawn a")
    await run_typed_line(lab, "a: ep = epoll_create1(0)")
    for i in range(3):
        await run_typed_line(lab, f"a: s[{i}] = socket(udp)")
    view = build_view(lab, await lab.inspect(), {}, {})
    fds = {s.name: s.fd for s in view.processes[0].sockets}
    assert set(fds) == {"s[0]", "s[1]", "s[2]"}
    for name, fd in fds.items():
        found = view.socket("a", fd)
        assert found is not None and found.name == name
    assert view.socket("a", lab.processes["a"].names["ep"]) is None
