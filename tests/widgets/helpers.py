"""Helpers for pilot tests: bounded waits on what the app and the engine show."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.pilot import Pilot

from widgets.app import SockplayApp
from widgets.command_line import CommandLine
from widgets.event_log import EventLog, EventsPane
from widgets.lab_tree import LabTree

WAIT = 8.0  # seconds: generous for a loaded 2-core machine; waits end as soon as the condition holds


async def wait_for(pilot: Pilot, condition: Callable[[], object], what: str, timeout: float = WAIT) -> None:
    """Poll `condition` between screen updates until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.01)


async def ready(pilot: Pilot) -> SockplayApp:
    app = pilot.app
    assert isinstance(app, SockplayApp)
    await asyncio.wait_for(app.lab_ready.wait(), WAIT)
    await wait_for(pilot, lambda: tree_text(app).count("running") >= 2 or not app.default_lab, "the default lab")
    return app


def tree_text(app: SockplayApp) -> str:
    tree = app.screen_stack[0].query_one(LabTree)
    lines = []

    def walk(node, depth):
        for child in node.children:
            lines.append("  " * depth + str(child.label.plain))
            walk(child, depth + 1)

    walk(tree.root, 0)
    return "\n".join(lines)


def log_lines(app: SockplayApp) -> list[str]:
    return list(app.screen_stack[0].query_one(EventLog).lines)


def log_text(app: SockplayApp) -> str:
    return "\n".join(log_lines(app))


def events_pane(app: SockplayApp) -> EventsPane:
    return app.screen_stack[0].query_one(EventsPane)


def command_line(app: SockplayApp) -> CommandLine:
    return app.screen_stack[0].query_one(CommandLine)


async def select(pilot: Pilot, key: tuple) -> None:
    app = pilot.app
    tree = app.screen_stack[0].query_one(LabTree)
    await wait_for(pilot, lambda: tree.select_key(key), f"{key} in the Lab pane")
    await wait_for(pilot, lambda: app.screen_stack[0].selected == key, f"{key} selected")


async def type_line(pilot: Pilot, text: str, keys: bool = False) -> None:
    """Put a line in the command line (typing it key by key if `keys`) and press Enter."""
    app = pilot.app
    await pilot.press("colon")
    field = command_line(app).input
    await wait_for(pilot, lambda: field.has_focus, "the command line to have focus")
    if keys:
        await pilot.press(*text)
    else:
        field.value = text
        field.cursor_position = len(text)
    await pilot.press("enter")


async def run_line(pilot: Pilot, text: str, expect: str | None = None) -> str:
    """Type a line, wait until it ran and (if given) until a log line contains `expect`; returns that line."""
    app = pilot.app
    before = len(app.session.book.entries)
    await type_line(pilot, text)
    field = command_line(app).input
    await wait_for(pilot, lambda: field.value == "" or command_line(app).error is not None, f"{text!r} to run")
    assert command_line(app).error is None, f"{text!r} was refused: {command_line(app).error}"
    if expect is None:
        return ""
    return await log_line_with(pilot, expect, since=before)


async def log_line_with(pilot: Pilot, fragment: str, since: int = 0) -> str:
    app = pilot.app
    found: list[str] = []

    def check() -> bool:
        for line in log_lines(app)[since:] if since else log_lines(app):
            if fragment in line:
                found.append(line)
                return True
        return False

    await wait_for(pilot, check, f"a log line with {fragment!r}")
    return found[0]


async def connected_pair(pilot: Pilot) -> None:
    """F2: server listens, client connects, server accepts; wait until the tree shows both ends."""
    app = pilot.app
    await pilot.press("f2")
    await wait_for(pilot, lambda: tree_text(app).count("ESTABLISHED") >= 2, "an established pair in the Lab pane")


def kernel_socket(app: SockplayApp, process: str, fd: int) -> dict | None:
    for raw in app.session.snapshot.get(process, []):
        if raw["fd"] == fd:
            return raw
    return None


async def fresh_snapshot(pilot: Pilot) -> dict:
    """An inspect() taken now, straight from the engine (not the app's last one)."""
    return await pilot.app.session.lab.inspect()
