"""Long-lived small objects made together: a block's names a batch at a time, descriptor numbers shared."""

from __future__ import annotations

import pytest

from playground.lab import Lab
from playground.lab_process import Names, fd_number
from playground.runner import Runner
from playground.script.indexed import RunNames, at_index
from playground.script.model import SetArg, Step
from playground.script.parser import parse_script

BLOCK = """sockplay 1
spawn a
a: l = socket(tcp)
repeat 300 as i
a: s[i] = socket(tcp)
a: t[i] = dup(s[i])
end
"""


def block_lines(text: str) -> list:
    repeat = parse_script(text).lines[-1].node
    return list(repeat.lines)


def test_a_runs_names_are_those_a_replacement_gives_across_batches_and_the_blocks_end() -> None:
    lines = block_lines(
        "sockplay 1\nspawn a\nspawn b\nrepeat 300 as i\n"
        "a: l[i] = socket(tcp)\n"
        "b: s[i] = socket(tcp)\n"
        "b: connect(s[i], a.l[i])\n"
        "b: poll({s[i], s[0]}, POLLIN, 0)\n"
        "end\n"
    )
    names = RunNames(300)
    for index in (0, 1, 255, 256, 299, 7):
        for line in lines:
            assert at_index(line, "i", index, names) == at_index(line, "i", index)
    step = at_index(lines[1], "i", 299, names).node
    assert isinstance(step, Step) and step.var == "s[299]"


def test_a_name_asked_for_again_in_its_batch_is_the_same_object() -> None:
    names = RunNames(1000)
    first = names.name("s", 300)
    assert first == "s[300]"
    assert names.name("s", 300) is first  # made once, with the other 255 of its batch
    assert names.name("proc.c", 511) == "proc.c[511]"
    assert names.name("s", 511) is names.name("s", 511)
    assert names.name("s", 512) == "s[512]"  # the next batch
    assert names.name("s", 1000) == "s[1000]"  # past the block's runs (a batch made): made as asked
    assert RunNames(3).name("s", 7) == "s[7]"


def test_a_sets_members_come_from_the_batch() -> None:
    text = "sockplay 1\nspawn a\nrepeat 2 as i\na: s[i] = socket(tcp)\na: t[i] = socket(tcp)\n"
    line = block_lines(text + "a: poll({s[i], t[i]}, POLLIN, 0)\nend\n")[2]
    names = RunNames(2)
    step = at_index(line, "i", 1, names).node
    assert isinstance(step, Step)
    arg = step.call.args[0]
    assert isinstance(arg, SetArg) and arg.members == ("s[1]", "t[1]")
    assert arg.members[0] is names.name("s", 1) and arg.members[1] is names.name("t", 1)


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


async def test_a_block_run_on_the_kernel_names_every_socket_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    class CountedNames(RunNames):
        def name(self, base: str, index: int) -> str:
            made.append(f"{base}[{index}]")
            return super().name(base, index)

    monkeypatch.setattr("playground.runner.RunNames", CountedNames)
    lab = await Lab.start()
    try:
        report = await Runner(lab).run(parse_script(BLOCK))
        assert "s[299]" in made and "t[0]" in made  # the runner's block made its names from its batches
        assert not [step for step in report.steps if step.divergence or step.error]
        names = lab.processes["a"].names
        assert {f"s[{k}]" for k in range(300)} <= set(names)
        assert {f"t[{k}]" for k in range(300)} <= set(names)
        assert len({names[f"s[{k}]"] for k in range(300)} | {names[f"t[{k}]"] for k in range(300)}) == 600
        assert names["s[299]"] is fd_number(names["s[299]"])
    finally:
        await lab.shutdown()
