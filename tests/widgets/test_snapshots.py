"""Snapshots of the main screens (pytest-textual-snapshot; run with --snapshot-update to accept changes).

The app runs with `deterministic=True`: pids, ephemeral ports, times and durations, which
differ from run to run, are drawn as placeholders. `snap_compare` works only in plain
(non-async) tests, so each screen is reached in a `run_before` coroutine.
"""

from __future__ import annotations

from tests.widgets.helpers import connected_pair, ready, select, type_line, wait_for
from widgets.app import SockplayApp


def _app() -> SockplayApp:
    return SockplayApp(deterministic=True, keymap={})


async def settled(pilot) -> None:
    """Every line written, every call answered, the latest snapshot shown."""
    app = pilot.app
    session = app.session
    inspector = app.screen_stack[0].query_one("#inspector")
    await wait_for(pilot, lambda: inspector.panels_ready, "the Inspector's panels")
    await wait_for(pilot, lambda: not session._unsettled and not session.pending, "calls to finish")
    await app.refresh_lab()
    app._tick()
    await wait_for(pilot, lambda: not session.book.unwritten and not session.book.changed, "the log to be written")
    log = app.screen_stack[0].query_one("#event-log")
    # The log grows without laying out the screen (for speed); a layout places its scrollbar thumb exactly.
    log.refresh(layout=True)
    await pilot.pause()


class TestMainScreen:
    def test_default_lab_80x24(self, snap_compare):
        async def run_before(pilot):
            await ready(pilot)
            await settled(pilot)

        assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)

    def test_connected_pair_socket_selected_120x40(self, snap_compare):
        async def run_before(pilot):
            await ready(pilot)
            await connected_pair(pilot)
            await select(pilot, ("socket", "client", 3))
            await pilot.press("w")
            await wait_for(pilot, lambda: pilot.app.lab_view.socket("server", 4).inq == 6, "6 bytes queued")
            await settled(pilot)

        assert snap_compare(_app(), terminal_size=(120, 40), run_before=run_before)

    def test_process_selected_80x24(self, snap_compare):
        async def run_before(pilot):
            await ready(pilot)
            await select(pilot, ("process", "client"))
            await settled(pilot)

        assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)

    def test_command_line_error_in_place_80x24(self, snap_compare):
        async def run_before(pilot):
            await ready(pilot)
            await type_line(pilot, "server: read(zz, 10)")
            await wait_for(pilot, lambda: pilot.app.screen.query_one("CommandLine").error is not None, "the error")
            await settled(pilot)

        assert snap_compare(_app(), terminal_size=(80, 24), run_before=run_before)


class TestOtherScreens:
    def test_help_screen_120x40(self, snap_compare):
        async def run_before(pilot):
            await ready(pilot)
            await settled(pilot)
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "HelpScreen", "help")

        assert snap_compare(_app(), terminal_size=(120, 40), run_before=run_before)
