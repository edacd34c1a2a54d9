"""The switch's feed in the place of the loopback capture: the same calls as playground.capture.Capture.

With hosts, PacketLabels can take a SwitchCapture where it took a Capture:
`deliver` gets batches of Packets (with their fate), `flush()` has every frame
the switch has decided on delivered and then calls `drained`, `stop()` ends
the feed. Unlike Capture it runs on the event loop, not in a thread (the
switch process does the reading), so `start`, `flush` and `stop` must be
called from the loop's thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from playground.capture import Packet
from playground.netlab.channel import FrameFate
from playground.netlab.controller import Switch, SwitchError
from playground.netlab.wire import FeedPackets


class SwitchCapture:
    """Packets from the switch's frame feed, handed to `deliver` in batches."""

    def __init__(
        self,
        switch: Switch,
        deliver: Callable[[list[Packet]], None],
        drained: Callable[[], None] | None = None,
    ) -> None:
        self.switch = switch
        self.deliver = deliver
        self.drained = drained
        self.count = 0
        self._decoder = FeedPackets()
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._unsubscribe = await self.switch.subscribe(self._records)

    def flush(self) -> None:
        """Deliver every frame the switch has seen by now, then call `drained` (soon, on the loop)."""
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._tasks:
            task.cancel()

    async def _flush(self) -> None:
        try:
            await self.switch.flush()
        except SwitchError:
            pass  # the switch is gone: nothing more will come, so all there was has been delivered
        if self.drained is not None:
            self.drained()

    def _records(self, records: list[FrameFate]) -> None:
        packets = self._decoder.packets(records)
        if packets and self._unsubscribe is not None:
            self.count += len(packets)
            self.deliver(packets)
