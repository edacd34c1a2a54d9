"""LabSession.restart: a fresh lab for a replay or a lesson, with nothing of the old one left."""

from __future__ import annotations

import asyncio

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


async def test_the_view_decorated_with_the_kernels_timers_is_let_go_once_no_socket_has_a_timer() -> None:
    import gc
    import weakref

    session = LabSession()
    await session.start()
    try:
        for line in (
            "spawn a",
            "spawn b",
            "a: l = socket(tcp)",
            "a: bind(l, 127.0.0.1:0)",
            "a: listen(l, 4)",
            "b: c = socket(tcp)",
            "b: setsockopt(c, SO_KEEPALIVE, 1)",  # its keepalive timer: the kernel's dump has it
            "b: connect(c, a.l)",
            "a: s = accept(l)",
        ):
            run = await session.run_line(line)
            assert run.handle is None or (await run.handle.future).outcome.errno is None, line

        seen: list[weakref.ref] = []  # every view the session made

        async def view_when(kernel_has_c: bool) -> object:
            for _ in range(200):  # the dump is taken at most DUMP_SHARE of the time: a few refreshes
                await session.refresh()
                view = session.view()
                seen.append(weakref.ref(view))
                socket = next(sv for proc in view.processes for sv in proc.sockets if sv.name == "c")
                if ((socket.tcp or {}).get("timer") == "keepalive") == kernel_has_c:
                    return view
                await asyncio.sleep(0.02)
            raise AssertionError(f"the kernel's dump never {'had' if kernel_has_c else 'lost'} c's timer")

        await view_when(True)
        run = await session.run_line("b: setsockopt(c, SO_KEEPALIVE, 0)")  # no timer: an idle socket
        assert run.handle is not None and (await run.handle.future).outcome.value == 0
        now = await view_when(False)
        assert not session.wire.kernel  # the dump has nothing to add: the view is shown as it is
        gc.collect()
        assert [ref() for ref in seen if ref() is not None and ref() is not now] == []
    finally:
        await session.shutdown()
