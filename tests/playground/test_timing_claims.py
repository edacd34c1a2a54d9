"""Timing claims (`after 30ms`, `within 5ms`) and process-state lines (`state kid zombie`): parsed, written
back, and checked on real processes (durations measured inside the lab process, states from /proc)."""

from __future__ import annotations

import pytest

from playground.lab import Lab
from playground.runner import Runner, RunReport
from playground.script.errors import ScriptError
from playground.script.format import format_node
from playground.script.model import Completion, StateCheck, Step, Timing
from playground.script.parser import parse_script
from tests.helpers import PAIR_SCRIPT


def parse(tail: str):  # noqa: ANN201 (a Script)
    return parse_script(PAIR_SCRIPT + tail, "t.sockplay")


@pytest.mark.parametrize(
    ("claim", "bound", "ns"),
    [
        ("after 30ms", "after", 30_000_000),
        ("within 5ms", "within", 5_000_000),
        ("within 250us", "within", 250_000),
        ("within 250µs", "within", 250_000),
        ("after 1500ns", "after", 1_500),
        ("within 1.5s", "within", 1_500_000_000),
        ("after 0.5ms", "after", 500_000),
    ],
)
def test_a_claim_ends_a_step_and_is_written_back(claim: str, bound: str, ns: int) -> None:
    text = f'client: write(c, "GET") = 3 {claim}'
    line = parse(text + "\n").lines[-1]
    assert isinstance(line.node, Step)
    assert line.node.timing == Timing(bound, ns, claim.split()[1], text.index(bound) + 1)
    assert format_node(line.node) == text


def test_a_claim_ends_a_completion_and_a_step_without_outcome() -> None:
    script = parse('server: read(a, 10) ...\nclient: write(c, "x")\nserver: ... = 1 "x" after 30ms\n')
    completion = script.lines[-1].node
    assert isinstance(completion, Completion) and completion.timing == Timing("after", 30_000_000, "30ms", 21)
    assert format_node(completion) == 'server: ... = 1 "x" after 30ms'
    bare = parse('client: write(c, "x") within 2ms\n').lines[-1].node
    assert isinstance(bare, Step) and bare.expect is None and str(bare.timing) == "within 2ms"


def test_words_inside_data_are_no_claim() -> None:
    step = parse('client: write(c, " after 30ms") = 10\n').lines[-1].node
    assert isinstance(step, Step) and step.timing is None
    read = parse('server: read(a, 10) = 10 "x after 3ms"\n').lines[-1].node
    assert isinstance(read, Step) and read.timing is None and read.expect is not None


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ('client: write(c, "x") = 1 after 30xs', 35, "'xs' is not a unit of time"),
        ('client: write(c, "x") = 1 within 5', 35, "no unit is not a unit of time"),
        ('client: write(c, "x") = 1 after 3.ms', 33, "'3.ms' is not a duration"),
        ('client: write(c, "x") = 1 after', 27, "'after' needs a duration"),
        ("client: read(c, 10) ... after 30ms", 25, "belongs on the line that states its outcome"),
        ("sleep 1 within 2s", 9, "belongs on a step"),
        ('client: write(c, "x") = 1 within 7200s', 34, "longer than 3600 seconds"),
    ],
)
def test_bad_claims_name_their_column(line: str, column: int, message: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse(line + "\n")
    assert (caught.value.line, caught.value.column) == (PAIR_SCRIPT.count("\n") + 1, column)
    assert message in caught.value.message


def test_after_and_within_are_reserved_names() -> None:
    for text in ("sockplay 1\nspawn after\n", "sockplay 1\nspawn server\nserver: within = fork()\n"):
        with pytest.raises(ScriptError, match="reserved word"):
            parse_script(text, "t.sockplay")


async def run(text: str) -> RunReport:
    lab = await Lab.start()
    try:
        return await Runner(lab).run(parse_script(text, "t.sockplay"))
    finally:
        await lab.shutdown()


def problems(report: RunReport) -> list[tuple[int, str | None]]:
    return [(s.line.number, s.divergence or s.error) for s in report.divergences]


async def test_a_claim_that_holds_and_one_that_does_not() -> None:
    report = await run(
        PAIR_SCRIPT + "server: read(a, 100) ...\n"
        '+0.05 client: write(c, "hi") = 2 within 1s\n'
        'server: ... = 2 "hi" after 30ms\n'  # it waited for the write, 50 ms later
        'client: write(c, "x") = 1\n'
        'server: read(a, 10) = 1 "x" after 30ms\n'  # the data was there: it returned at once
    )
    [(number, why)] = problems(report)
    assert number == 14
    assert why is not None and why.startswith("expected after 30ms, took ") and why.endswith("s")
    held = report.steps[-3]
    assert held.text == 'server: ... = 2 "hi" after 30ms' and held.result is not None
    assert held.result.duration_ns >= 30_000_000


async def test_a_wrong_outcome_and_a_broken_claim_are_both_said() -> None:
    report = await run(PAIR_SCRIPT + 'client: write(c, "x") = 2 after 1s\n')
    [(_, why)] = problems(report)
    assert why is not None and "return value differs" in why and "; expected after 1s, took " in why


async def test_in_a_repeat_the_median_is_checked_once_the_block_is_done() -> None:
    # Two of three runs wait 50 ms for the write, one does not: the median waits, so `after 30ms` holds,
    # although one run alone would break it; `within 30ms` on the same reads breaks on the median.
    block = 'repeat 3\nserver: read(a, 1) ...\n+0.05 client: write(c, "y") = 1\nserver: ... = 1 "y" {claim}\nend\n'
    quick = 'client: write(c, "z") = 1\nserver: read(a, 1) = 1 "z"\n'
    held = await run(PAIR_SCRIPT + quick + block.format(claim="after 30ms"))
    assert problems(held) == []
    broken = await run(PAIR_SCRIPT + block.format(claim="within 30ms"))
    [(number, why)] = problems(broken)
    assert number == PAIR_SCRIPT.count("\n") + 1  # the repeat line
    assert why is not None and why.startswith(f"line {number + 3}: expected within 30ms, took ")
    assert why.endswith("(the median of 3 runs)")
    assert not any(s.divergence for s in broken.steps if not s.block_end)  # no run is judged alone


FORKED = """sockplay 1
spawn server
state server running
server: kid = fork() = 4242
state kid running
kid: exit(0) = exited 0
state kid zombie
server: waitpid(-1, 0) = 4242 exited 0
state kid exited
"""


async def test_process_states_from_proc() -> None:
    script = parse_script(FORKED, "t.sockplay")
    assert script.lines[-3].node == StateCheck("kid", None, "zombie")
    assert format_node(script.lines[-3].node) == "state kid zombie"
    assert problems(await run(FORKED)) == []


async def test_a_wrong_process_state_diverges() -> None:
    report = await run(FORKED.replace("state kid zombie", "state kid running"))
    assert problems(report) == [(7, "expected kid running, the kernel says zombie")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("state server sleeping", "'sleeping' is not a process state"),
        ("state server zombi", "did you mean zombie?"),
        ("state server", "a process state"),
        ("state nobody zombie", "no process named 'nobody'"),
    ],
)
def test_bad_process_state_lines(line: str, message: str) -> None:
    with pytest.raises(ScriptError, match=message):
        parse_script(f"sockplay 1\nspawn server\n{line}\n", "t.sockplay")


async def test_a_block_run_keeping_only_its_last_reports_keeps_every_divergence_and_its_summary() -> None:
    # The TUI keeps no run's report but the last few and the bad ones; the block's closing report
    # (its durations summed up, its claims on the median) is made from every run all the same.
    text = PAIR_SCRIPT + 'repeat 6 as i\nclient: write(c, "y") = 1 within 1s\nserver: read(a, 1) = 1 "y"\nend\n'
    text += 'repeat 4 as i\nclient: write(c, "zz") = 1\nserver: read(a, 2) = 2 "zz" within 1ns\nend\n'
    text += 'repeat 3 as i\nclient: write(c, "w") = 1\nserver: read(a, 1) = 1 "w"\n'
    text += "client: getsockopt(c, SO_ERROR) = 1\nend\n"
    script = parse_script(text, "t.sockplay")
    lab = await Lab.start()
    closings = []
    try:
        runner = Runner(lab, on_step=lambda r: closings.append(r) if r.block_end else None)
        for line in script.lines[:-3]:
            await runner.run_line(line)
        kept = await runner.run_repeat(script.lines[-3], keep_last=2)
        block = script.lines[-3].number
        assert [(r.iteration, r.line.number) for r in kept] == [(6, block + 1), (6, block + 2)]
        diverged = await runner.run_repeat(script.lines[-2], keep_last=0)
        # Each run's last line diverges (SO_ERROR is 0): the reports come back in the order they ran.
        last = await runner.run_repeat(script.lines[-1], keep_last=2)
    finally:
        await lab.shutdown()
    block = script.lines[-1].number
    ran = [(r.iteration, r.line.number, bool(r.divergence)) for r in last]
    assert ran == [
        (1, block + 3, True),
        (2, block + 3, True),
        (3, block + 1, False),
        (3, block + 2, False),
        (3, block + 3, True),
    ]
    assert len(diverged) == 4 * 1 + 1  # each run's write (2 bytes, not 1) and the block's claim on the median
    assert all(r.divergence for r in diverged)
    assert diverged[-1].block_end and "expected within 1ns" in (diverged[-1].divergence or "")
    assert "(the median of 4 runs)" in (diverged[-1].divergence or "")
    first_notes = closings[0].notes
    assert any(note.startswith('client: write(c, "y"): 6 runs, median ') for note in first_notes), first_notes
