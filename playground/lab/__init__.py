"""The lab: real processes with real sockets, driven from asyncio.

    lab = await Lab.start()
    await lab.spawn("server")
    result = await lab.run_line("server: l = socket(tcp)")
    snapshot = await lab.inspect()
    await lab.shutdown()

Every event (calls started, pending, done; signals; deaths) goes to the
subscribers registered with `subscribe`. Its parts, each a module:

    coordinator  Lab: sends calls, learns from their results, reports events
    process      Process and CallHandle: a lab process and a call sent to one
    lifecycle    starting, verifying, signalling and reaping lab processes
    channel      frames to and from lab processes, checked before they are believed
    labels       packet capture, each end named by its socket (`proc.var`)
    inspection   the kernel's view of the lab's sockets (getsockopt snapshots, sock_diag)
"""

from playground.errors import LabError
from playground.lab.coordinator import PENDING_AFTER, Lab
from playground.lab.process import CallHandle, Process

__all__ = ["Lab", "LabError", "Process", "CallHandle", "PENDING_AFTER"]
