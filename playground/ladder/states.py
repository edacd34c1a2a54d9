"""Inference: RFC 793's state machine, driven by the segments each side sent and received."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from playground.ladder.model import (
    CLOSE_WAIT,
    CLOSED,
    CLOSING,
    ESTABLISHED,
    FIN_WAIT_1,
    FIN_WAIT_2,
    LAST_ACK,
    LISTEN,
    SEQ_SPACE,
    SYN_RECV,
    SYN_SENT,
    TIME_WAIT,
    seq_ge,
)
from playground.packet_log import AnyPacket


@dataclass(frozen=True)
class Machine:
    states: tuple[str, str]
    fin_acked_by: tuple[int | None, int | None] = (None, None)  # the ack that acknowledges each side's FIN

    def with_state(self, side: int, state: str) -> Machine:
        states = list(self.states)
        states[side] = state
        return Machine((states[0], states[1]), self.fin_acked_by)


def advance(machine: Machine, packet: AnyPacket, sender: int) -> Machine:
    """Both sides' states after `sender` sent this segment and the other side received it."""
    receiver = 1 - sender
    states = list(machine.states)
    fins = list(machine.fin_acked_by)
    flags = set(packet.flags)
    if "RST" in flags:
        # The sender has (or keeps) no connection; the receiver drops its own, unless it is a listener.
        states[sender] = CLOSED
        if states[receiver] != LISTEN and not packet.lost:
            states[receiver] = CLOSED
        return Machine((states[0], states[1]), (fins[0], fins[1]))
    syn, ack, fin = "SYN" in flags, "ACK" in flags, "FIN" in flags
    # What sending it did to the sender.
    if syn and not ack and states[sender] in (CLOSED, LISTEN):
        states[sender] = SYN_SENT
    elif syn and ack and states[sender] in (CLOSED, LISTEN):
        states[sender] = SYN_RECV
    if fin:
        fins[sender] = (packet.relative_seq + packet.length + (1 if syn else 0) + 1) % SEQ_SPACE
        states[sender] = {ESTABLISHED: FIN_WAIT_1, SYN_RECV: FIN_WAIT_1, CLOSE_WAIT: LAST_ACK}.get(
            states[sender], states[sender]
        )
    if packet.lost:  # the network lab's cable dropped it: the receiver never knew
        return Machine((states[0], states[1]), (fins[0], fins[1]))
    # What receiving it did to the receiver: the SYN, then the ACK, then the FIN (RFC 793, 3.9).
    state = states[receiver]
    if syn and not ack:
        if state == LISTEN:
            state = SYN_RECV
        elif state == SYN_SENT:  # simultaneous open
            state = SYN_RECV
    if ack:
        acks_syn = seq_ge(packet.relative_ack, 1)
        if state == SYN_SENT and syn and acks_syn:
            state = ESTABLISHED
        elif state == SYN_RECV and acks_syn:
            state = ESTABLISHED
        ours = fins[receiver]
        if ours is not None and seq_ge(packet.relative_ack, ours):
            state = {FIN_WAIT_1: FIN_WAIT_2, CLOSING: TIME_WAIT, LAST_ACK: CLOSED}.get(state, state)
    if fin:
        state = {ESTABLISHED: CLOSE_WAIT, SYN_RECV: CLOSE_WAIT, FIN_WAIT_1: CLOSING, FIN_WAIT_2: TIME_WAIT}.get(
            state, state
        )
    states[receiver] = state
    return Machine((states[0], states[1]), (fins[0], fins[1]))


def initial_states(first: AnyPacket | None, first_from_other: AnyPacket | None) -> tuple[str, str]:
    """Both sides' states before the first segment (side 0 sent it)."""
    if first is None:
        return (CLOSED, CLOSED)
    if "SYN" in first.flags and "ACK" not in first.flags:
        other = LISTEN
        if first_from_other is not None:
            answered = set(first_from_other.flags)
            if "RST" in answered or ("SYN" in answered and "ACK" not in answered):
                other = CLOSED  # nothing listened (RST), or it was opening too (simultaneous open)
        return (CLOSED, other)
    return (ESTABLISHED, ESTABLISHED)  # the capture began in mid-connection


def infer(packets: Sequence[AnyPacket]) -> list[tuple[str, str]]:
    """Both sides' states after each segment of one connection (side 0 sent the first one).

    The state machine alone, without calls or the kernel's view: for tests and quick looks.
    """
    if not packets:
        return []
    first = packets[0]
    other = next((p for p in packets if p.src != first.src), None)
    machine = Machine(initial_states(first, other))
    out = []
    for packet in packets:
        machine = advance(machine, packet, 0 if packet.src == first.src else 1)
        out.append(machine.states)
    return out


def segment_label(flags: Sequence[str], seq: int, ack: int | None, length: int) -> str:
    """`FIN|ACK seq 4 ack 1 len 0`: ack only when the ACK flag is set, len except on a pure ACK or a SYN."""
    text = f"{'|'.join(flags) or '-'} seq {seq}"
    if ack is not None and "ACK" in flags:
        text += f" ack {ack}"
    if length or not (set(flags) <= {"ACK", "SYN"}):
        text += f" len {length}"
    return text


def normal_state(state: str) -> str:
    state = state.upper().replace("_", "-")
    return {"CLOSE": CLOSED, "NEW-SYN-RECV": SYN_RECV, "SYN-RECEIVED": SYN_RECV}.get(state, state)


# The ways a connection's end moves through its states: each state comes after those before it on its way.
_WAYS = (
    (SYN_SENT, ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2, TIME_WAIT),
    (SYN_RECV, ESTABLISHED, FIN_WAIT_1, CLOSING, TIME_WAIT),
    (SYN_SENT, ESTABLISHED, CLOSE_WAIT, LAST_ACK),
    (SYN_RECV, ESTABLISHED, CLOSE_WAIT, LAST_ACK),
)
_BEHIND = frozenset((way[i], way[j]) for way in _WAYS for i in range(len(way)) for j in range(i + 1, len(way)))


def behind(state: str, than: str) -> bool:
    """Whether `state` comes before `than` on the way a connection's end moves (a reading that is behind
    the segments already drawn was taken before the kernel had handled one of them)."""
    return (state, than) in _BEHIND
