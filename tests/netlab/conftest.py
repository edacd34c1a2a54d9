"""Fixtures for the network lab: a cabled world of namespaces, and a switch plugged into it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from playground.netlab import links
from playground.netlab.controller import Switch
from tests.netlab.world import World, make_world


@pytest.fixture
def world() -> Iterator[World]:
    try:
        world = make_world("alpha", "beta")
    except (OSError, ImportError) as exc:
        pytest.skip(f"no namespaces and veth cables here: {exc}")
    try:
        world.neighbours()
        yield world
    finally:
        world.close()


@pytest.fixture
async def switch(world: World) -> AsyncIterator[Switch]:
    switch = await Switch.start(world.netns, seed="tests")
    try:
        for host in world.hosts.values():
            state = await switch.add_port(host.name, host.port_ifname)
            assert state.running and not state.offloads_on
            assert world.on(host.name, lambda: links.wait_running("eth0") and links.offloads_on("eth0")) == []
        yield switch
    finally:
        await switch.close()
