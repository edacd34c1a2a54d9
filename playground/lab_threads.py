"""Thread actors on the lab's side: starting one in a lab process, and signalling one thread.

`thread NAME in PROC` asks the process to start a pthread (playground.worker.threads);
the lab believes the TID it answers only once the kernel lists it among that process's
tasks. The thread is then an actor: a Process record that shares its process's names,
dispositions, children, channel and calls in flight (the same objects), with its own
TID and its own blocked calls. It lives as long as its process does.

`kill NAME SIG` on a thread is thread-directed, as pthread_kill (tgkill(2)) sends it: the
process is asked to send it to that thread, which takes it, and only a call in that thread
is interrupted. On a process it stays process-directed (sent from outside, through its
pidfd): the kernel gives it to one thread that does not block it (in a lab process, one
inside a call).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from playground import lab_channel, protocol
from playground.constants import SIGNALS
from playground.errors import LabError
from playground.events import CallDone, DirectiveDone, Event
from playground.lab_process import CallHandle, Process
from playground.script.checks import ProcessScope
from playground.script.format import format_node
from playground.script.model import Kill, Segment, Step, Thread

if TYPE_CHECKING:
    from playground.lab import Lab

START_TIMEOUT = 10.0


def owner_of(proc: Process) -> Process:
    """The process an actor belongs to: itself, or a thread's process."""
    return proc.thread_of if proc.thread_of is not None else proc


def with_threads(threads: dict[str, Process], scope: dict[str, ProcessScope]) -> dict[str, ProcessScope]:
    """The processes' scope and the thread actors', for parsing a typed line: a thread shares its names."""
    for name, thread in threads.items():
        owner = owner_of(thread).name
        unstated = sum(1 for h in thread.blocked if not h.stated)
        scope[name] = ProcessScope(
            scope[owner].fds, scope[owner].children, unstated, scope[owner].data, owner
        )  # the same sets
    return scope


def tag(actor: Process) -> tuple[str, ...]:
    """What a call's request adds to say which thread actor makes it: nothing for a process's own."""
    return () if actor.thread_of is None else (actor.name,)


def check_step(lab: Lab, step: Step) -> None:
    """LabError for a call a thread actor cannot make now (it is still in one), or pthread_exit by a process."""
    thread = lab.threads.get(step.actor or "")
    if thread is None:
        if step.call.name == "pthread_exit" and step.actor in lab.processes:
            raise LabError(
                f"{step.actor} is a process: pthread_exit ends a thread actor (a process ends with exit(STATUS))"
            )
        return
    for handle in thread.inflight.values():
        if handle.process is thread and handle.node is not None and not handle.future.done():
            call = handle.text.split(": ", 1)[-1]
            raise LabError(f"{thread.name} is still in {call}: a thread makes one call at a time")


def by_process(lab: Lab, segment: Segment) -> Segment:
    """A `~` line's segment with each end that names a thread actor named by its process instead."""

    def end(spec: str | None) -> str | None:
        actor, dot, var = (spec or "").partition(".")
        thread = lab.threads.get(actor)
        return spec if thread is None else owner_of(thread).name + dot + var

    return dataclasses.replace(segment, src=end(segment.src), dst=end(segment.dst))


def live_threads(lab: Lab) -> int:
    return sum(1 for thread in lab.threads.values() if thread.alive)


async def start_thread(lab: Lab, node: Thread) -> Process:
    """Start a thread actor (LabError, saying why, if it cannot be)."""
    if node.name in lab.processes or node.name in lab.threads:
        raise LabError(f"an actor named {node.name!r} already exists; name the thread differently")
    owner = owner_of(lab.process(node.process))
    if not owner.alive:
        raise LabError(f"{owner.name} is {owner.state}: it cannot start a thread")
    in_flight = sum(1 for p in lab.processes.values() for h in p.inflight.values() if h.node is not None)
    if live_threads(lab) + in_flight >= lab.limits.pending:
        raise LabError(
            f"the lab's limit of {lab.limits.pending} threads (thread actors and calls in progress) is reached: "
            "raise it with --max-pending"
        )
    tid = await _ask_for_thread(lab, owner, node.name)
    if not lab.threads:
        lab.subscribe(lambda event: _note_thread_end(lab, event))
    thread = Process(
        name=node.name,
        pid=owner.pid,
        names=owner.names,
        inodes=owner.inodes,
        addresses=owner.addresses,
        children=owner.children,
        dispositions=owner.dispositions,
        channel=owner.channel,
        inflight=owner.inflight,
        frames=owner.frames,  # (the channel's reader is the process's; these are shared all the same)
        fd_queue=owner.fd_queue,
        outbox=owner.outbox,
        data=owner.data,  # the bytes a read named: the process's memory, shared by its threads
        closed=owner.closed,
        paths=owner.paths,
        host=owner.host,
        thread_of=owner,
        tid=tid,
    )
    lab.threads[node.name] = thread
    lab._emit(DirectiveDone(node, format_node(Thread(node.name, owner.name)), time.monotonic_ns()))
    return thread


def _note_thread_end(lab: Lab, event: Event) -> None:
    """A thread actor's pthread_exit has returned: the thread has ended (its process goes on)."""
    if isinstance(event, CallDone) and event.process in lab.threads and event.result.outcome.death is not None:
        thread = lab.threads[event.process]
        if isinstance(event.node, Step) and event.node.call.name == "pthread_exit" and thread.death is None:
            thread.death = event.result.outcome.death


async def _ask(lab: Lab, owner: Process, request: str, args: object, what: str) -> object:
    """Send the process a request about its threads and wait (bounded) for its answer ({} if it died)."""
    loop = asyncio.get_running_loop()
    handle = CallHandle(lab.next_id(), owner, None, what, loop.create_future(), time.monotonic_ns())
    owner.inflight[handle.call_id] = handle
    try:
        lab_channel.send(loop, owner, protocol.encode((handle.call_id, request, args)))
        return await asyncio.wait_for(asyncio.shield(handle.future), START_TIMEOUT)
    except OSError as exc:
        raise LabError(f"{owner.name} cannot be reached: {exc.strerror}") from None
    except TimeoutError:
        raise LabError(f"{owner.name} did not answer within {START_TIMEOUT:g} s ({what})") from None
    finally:
        owner.inflight.pop(handle.call_id, None)


async def _ask_for_thread(lab: Lab, owner: Process, name: str) -> int:
    """Have the process start the thread; its TID, checked with the kernel."""
    reply = await _ask(lab, owner, "thread", name, f"starting thread {name}")
    tid = reply.get("tid") if isinstance(reply, dict) else None
    if tid is None and not owner.alive:
        raise LabError(f"{owner.name} ended ({owner.state}) before thread {name} started")
    if not isinstance(tid, int) or tid <= 0 or not Path(f"/proc/{owner.pid}/task/{tid}").exists():
        lab.lifecycle.misbehaved(owner, f"a thread id ({tid!r}) that is not one of its threads")
        raise LabError(f"{owner.name} did not start thread {name}")
    return tid


async def kill_thread(lab: Lab, thread: Process, signame: str) -> None:
    """`kill THREAD SIG`: that thread takes the signal; a fatal one still ends the whole process."""
    owner = owner_of(thread)
    if not thread.alive or owner.zombie:
        raise LabError(f"{thread.name} is {thread.state}: there is nothing to signal")
    fatal = owner.fatal(signame)
    # The process sends it to its thread itself (pthread_kill, which is tgkill): it then knows
    # which thread took it, and a thread waiting between calls (signals blocked) takes it at once.
    # Its answer comes once the signal is sent: the lines after this one come after it, as in C.
    await _ask(lab, owner, "tkill", (thread.name, SIGNALS[signame]), f"kill {thread.name} {signame}")
    node = Kill(thread.name, signame)
    lab._emit(DirectiveDone(node, format_node(node), time.monotonic_ns()))
    if fatal:
        await lab.wait_dead(owner, 5.0)
