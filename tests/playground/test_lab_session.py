"""LabSession.restart: a fresh lab for a replay or a lesson, with nothing of the old one left."""

from __future__ import annotations

from playground.session.lab_session import LabSession
from tests.helpers import process_exists


async def test_restart_ends_the_old_lab_and_lines_run_on_the_new_one() -> None:
    session = LabSession()
    await session.start()
    try:
        await session.spawn_defaults()
        first = await session.run_line("server: s = socket(tcp)")
        assert first.handle is not None and (await first.handle.future).outcome.value == 3
        await session.refresh()
        old = session.lab
        assert old is not None and session.tracked_names["server"] == {3: "s"} and session.snapshot
        old_pids = [p.pid for p in old.processes.values()]

        lab = await session.restart()

        assert lab is session.lab and lab is not old and not lab.processes
        assert session.tracked_names == {} and session.pending == {} and session.snapshot == {}
        assert not any(process_exists(pid) for pid in old_pids)
        await session.run_line("spawn a")
        run = await session.run_line("a: t = socket(tcp)")
        assert run.handle is not None and (await run.handle.future).outcome.value == 3
        assert session.tracked_names["a"] == {3: "t"}
    finally:
        await session.shutdown()
