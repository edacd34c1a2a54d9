"""LabSession.restart: a fresh lab for a replay or a lesson, with nothing of the old one left."""

from __future__ import annotations

import asyncio

from playground.session.lab_session import LabSession
from playground.session.view import LabView
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


async def _connected_with_keepalive(session: LabSession, connections: int, keepalive: list[str]) -> None:
    """a listens, b's c[i] connects and a's s[i] accepts, `connections` times; SO_KEEPALIVE on the
    sockets named (a timer the kernel's dump has)."""
    lines = ["spawn a", "spawn b", "a: l = socket(tcp)", "a: bind(l, 127.0.0.1:0)", "a: listen(l, 64)"]
    for i in range(connections):
        lines += [f"b: c[{i}] = socket(tcp)", f"b: connect(c[{i}], a.l)", f"a: s[{i}] = accept(l)"]
    lines += [f"{name.split('.')[0]}: setsockopt({name.split('.')[1]}, SO_KEEPALIVE, 1)" for name in keepalive]
    for line in lines:
        run = await session.run_line(line)
        assert run.handle is None or (await run.handle.future).outcome.errno is None, line


def _timed(view: LabView) -> set[str]:
    """`process.name` of each socket the view shows with a timer."""
    return {f"{p.name}.{sv.name}" for p in view.processes for sv in p.sockets if (sv.tcp or {}).get("timer")}


async def _view_with_timers(session: LabSession, wanted: set[str]) -> LabView:
    view = session.view()
    for _ in range(200):  # the dump is taken at most DUMP_SHARE of the time: a few refreshes
        await session.refresh()
        view = session.view()
        if _timed(view) == wanted:
            return view
        await asyncio.sleep(0.02)
    raise AssertionError(f"the kernel's dump never had these timers: {wanted} (the view shows {_timed(view)})")


async def test_a_timer_from_the_kernels_dump_decorates_one_socket_and_the_family_stays_lazy() -> None:
    from playground.session.families import FamilyView
    from playground.session.view import SocketViews

    session = LabSession()
    await session.start()
    try:
        await _connected_with_keepalive(session, 3, ["b.c[1]"])
        proc = (await _view_with_timers(session, {"b.c[1]"})).process("b")
        assert proc is not None
        sockets = proc.sockets
        assert isinstance(sockets, SocketViews), "the decorated sockets were made into views, all of them"
        assert {sv.name: (sv.tcp or {}).get("timer") for sv in sockets} == {
            "c[0]": None,
            "c[1]": "keepalive",
            "c[2]": None,
        }
        assert [type(entry) for entry in proc.entries] == [FamilyView]  # c[0..2], grouped from the table
        at = sockets.position(sockets[1].fd)
        plain = SocketViews(sockets.process, sockets.entries, sockets.names)
        assert plain != sockets and sockets == sockets.decorated({})
        assert plain.decorated({1: sockets[1]}) == sockets and at == 1
    finally:
        await session.shutdown()


async def test_decorating_with_a_new_dump_makes_views_of_the_timed_sockets_only_not_every_idle_one(
    monkeypatch,
) -> None:
    from playground.session import view as view_module

    session = LabSession()
    await session.start()
    try:
        await _connected_with_keepalive(session, 40, ["b.c[7]", "a.s[20]"])
        view = await _view_with_timers(session, {"b.c[7]", "a.s[20]"})
        wire = session.wire
        # What the kernel's dump says, matched by ends in full: the decoration must say the same.
        ends = {(tuple(k.local), tuple(k.peer)): k.timer for _, _, k in wire.kernel if not k.orphan and k.timer}
        connected = [(p.name, sv) for p in view.processes for sv in p.sockets if sv.local and sv.peer]
        assert len(connected) == 80
        assert {f"{name}.{sv.name}" for name, sv in connected if (tuple(sv.local), tuple(sv.peer)) in ends} == {
            "b.c[7]",
            "a.s[20]",
        }

        made = []
        real = view_module.socket_view
        monkeypatch.setattr(view_module, "socket_view", lambda *args: made.append(args[0]) or real(*args))
        wire.kernel = list(wire.kernel)  # a new dump, the same sockets: decorated again
        again = wire.decorate(view)
        assert len(made) <= 4, f"{len(made)} views made to decorate 81 sockets with 2 timers"
        assert again is not view and _timed(again) == {"b.c[7]", "a.s[20]"}
    finally:
        await session.shutdown()
