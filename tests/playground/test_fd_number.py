"""Descriptor numbers kept by a process's names are shared int objects, made a table's step at a time."""

from __future__ import annotations

from playground.lab import Lab
from playground.lab_names import Names, fd_number
from playground.runner import Runner
from playground.script.parser import parse_script

BLOCK = """sockplay 1
spawn a
spawn b
repeat 300 as i
a: s[i] = socket(tcp)
b: t[i] = socket(tcp)
end
"""


def test_descriptor_numbers_kept_by_names_are_shared_objects() -> None:
    a, b = Names(), Names()
    a["s[0]"] = int("300")  # two int objects equal to 300, as two protocol messages would give
    b["c[0]"] = int("300")
    assert a["s[0]"] is b["c[0]"] is fd_number(300)
    assert [fd_number(fd) for fd in (0, 255, 256, 4000, 4351)] == [0, 255, 256, 4000, 4351]
    a["far"] = far = int("1000000")  # past the table: kept as it came
    assert a["far"] is far
    assert fd_number(-1) == -1
    assert fd_number(70_000) == 70_000


async def test_two_processes_sockets_with_the_same_number_share_its_object() -> None:
    lab = await Lab.start()
    try:
        report = await Runner(lab).run(parse_script(BLOCK))
        assert not [step for step in report.steps if step.divergence or step.error]
        mine, theirs = lab.processes["a"].names, lab.processes["b"].names
        assert len({mine[f"s[{k}]"] for k in range(300)}) == 300
        shared = [k for k in range(300) if mine[f"s[{k}]"] == theirs[f"t[{k}]"] and mine[f"s[{k}]"] > 256]
        assert shared  # both processes numbered their sockets alike (3, 4, ...: past 256 from the 254th)
        assert all(mine[f"s[{k}]"] is theirs[f"t[{k}]"] for k in shared)
    finally:
        await lab.shutdown()
