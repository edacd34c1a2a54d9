"""The lab's packets kept in columns (PacketLog): every packet reads back as it was captured, renamed
where the lab renames it, whether its chunk is filling, sealed (compressed) or frozen (older still)."""

from __future__ import annotations

import random
import struct

from playground.capture import _FLAG_TUPLES, Packet, decode
from playground.compact import EndpointPairs, IntMap, Owners, PortOwners, PortSet, Strings, endpoint_key
from playground.packet_log import CHUNK, PacketLog, SeenPackets

FIELDS = (
    "t_ns protocol src dst length flags seq ack relative_seq relative_ack window preview icmp icmp_about"
    " frame wall_ns fate delivered_ns src_label dst_label summary lost"
).split()


def _same(packet: object, stored: object) -> None:
    for name in FIELDS:
        assert getattr(stored, name) == getattr(packet, name), name


def _made(rnd: random.Random, i: int) -> Packet:
    """A packet as a test makes one: any fields, a frame that tells nothing."""
    protocol = rnd.choice(["TCP", "UDP", "ICMP", "ICMPv6"])
    t_ns = 10**12 + i * 1000 + rnd.randint(-500, 500)
    return Packet(
        t_ns,
        protocol,
        (rnd.choice(["127.0.0.1", "::1", "10.0.0.2"]), rnd.randint(0, 65535)),
        ("127.0.0.1", rnd.randint(0, 65535)),
        rnd.randint(0, 70000),
        _FLAG_TUPLES[rnd.randint(0, 63)] if protocol == "TCP" else (),
        rnd.getrandbits(32),
        rnd.getrandbits(32),
        rnd.getrandbits(32),
        rnd.getrandbits(32),
        rnd.randint(0, 65535),
        rnd.randbytes(rnd.choice([0, 0, 5, 48])),
        "port unreachable" if protocol.startswith("ICMP") else None,
        (("1.2.3.4", 5), ("5.6.7.8", 9)) if protocol == "ICMP" and i % 2 else None,
        rnd.choice([None, "a.b", "client.c[3]"]),
        rnd.choice([None, "x.y"]),
        rnd.randbytes(rnd.randint(0, 120)),
        t_ns + 1_700_000_000_000_000_000 + rnd.randint(-(10**6), 10**6),
        rnd.choice([None, None, "delivered", "lost on cable"]),
        rnd.choice([None, t_ns + 5]),
    )


def _ip4(proto: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0, b"\x7f\0\0\1", b"\x7f\0\0\2")
    return b"\0" * 12 + b"\x08\x00" + header + payload


def _tcp(seq: int, ack: int, flags: int, data: bytes) -> bytes:
    return struct.pack("!HHIIHHHH", 40000, 5000, seq, ack, (5 << 12) | flags, 512, 0, 0) + data


def test_packets_read_back_as_made_newest_maxlen_kept_and_found_by_serial():
    rnd = random.Random(1)
    log = PacketLog(2000)
    packets = [_made(rnd, i) for i in range(5000)]
    stored = [log.add(packet) for packet in packets]
    assert len(log) == 2000 and log
    for packet, kept in zip(packets[-2000:], log, strict=True):
        _same(packet, kept)
    for packet, kept in zip(packets, stored, strict=True):  # a view outlives its packet's place in the log
        _same(packet, kept)
    for _ in range(500):
        index = rnd.randrange(-2000, 2000)
        _same(packets[-2000:][index], log[index])
    assert [p.t_ns for p in reversed(log)] == [p.t_ns for p in reversed(packets[-2000:])]
    assert log.get(stored[4000].serial) == stored[4000] and log.get(stored[5].serial) is None


def test_captured_packets_decoded_again_from_their_frames():
    rnd = random.Random(2)
    frames = []
    for i in range(3 * CHUNK * 4):
        kind = i % 3
        if kind == 0:
            data = rnd.randbytes(rnd.choice([0, 3, 70, 600, 4000]))  # the long ones are kept apart
            frames.append(_ip4(6, _tcp(rnd.getrandbits(32), rnd.getrandbits(32), rnd.randint(0, 63), data)))
        elif kind == 1:
            frames.append(_ip4(17, struct.pack("!HHHH", 1234, 5678, 13, 0) + b"hello"))
        else:
            frames.append(_ip4(1, bytes([3, 3, 0, 0, 0, 0, 0, 0]) + _ip4(17, struct.pack("!HHHH", 1, 2, 8, 0))[14:]))
    log = PacketLog(100_000)
    packets = []
    for i, frame in enumerate(frames):
        packet = decode(frame, 10**12 + i * 7)
        assert packet is not None
        packet.wall_ns, packet.relative_seq, packet.src_label = packet.t_ns + 5, i, "a.b" if i % 2 else None
        packets.append(packet)
        log.add(packet)
    for packet, kept in zip(packets, log, strict=True):
        _same(packet, kept)


def test_renaming_a_packet_at_any_age():
    rnd = random.Random(3)
    log = PacketLog(100_000)
    packets = [_made(rnd, i) for i in range(CHUNK * 6)]
    for packet in packets:
        log.add(packet)
    for index in (0, CHUNK * 2 + 3, len(packets) - 1):  # frozen, sealed, filling
        kept = log[index]
        kept.src_label, kept.dst_label = "zz.top", None
        assert (log[index].src_label, log[index].dst_label) == ("zz.top", None)
        packets[index].src_label, packets[index].dst_label = "zz.top", None
    for packet, kept in zip(packets, log, strict=True):
        _same(packet, kept)


def test_compact_tables_map_as_dicts_do():
    rnd = random.Random(4)
    pairs, expected = EndpointPairs(), {}
    for _ in range(20_000):
        key = (("127.0.0.1", rnd.randint(0, 65535)), ("::1", rnd.randint(0, 65535)))
        expected[key] = pairs[key] = rnd.getrandbits(32)
    assert len(pairs) == len(expected) and all(pairs[key] == value for key, value in expected.items())
    assert (("1.1.1.1", 1), ("1.1.1.1", 2)) not in pairs and pairs.get((("1.1.1.1", 1), ("1.1.1.1", 2))) is None
    owners = Owners(Strings())
    owners[(["127.0.0.1", 4000], ("127.0.0.1", 5000))] = ("b", "b.s[1]")  # lists from JSON name the same ends
    assert owners.get((("127.0.0.1", 4000), ["127.0.0.1", 5000])) == ("b", "b.s[1]")
    assert owners.get((("127.0.0.1", 5000), ("127.0.0.1", 4000))) is None
    ports = PortSet()
    ports.add(0)
    ports.add(65535)
    assert 0 in ports and 65535 in ports and 1 not in ports and 70000 not in ports


def test_a_name_keeps_its_number_however_many_names_came_between() -> None:
    """Packets named by port come batch after batch: each name is numbered once, not once a batch."""
    names = Strings()
    first = [names.add(f"a.u[{i}]") for i in range(200)]  # more than the names it remembers lately
    for _ in range(50):
        assert [names.add(f"a.u[{i}]") for i in range(200)] == first
    assert len(names) == 200
    assert [names[n] for n in first] == [f"a.u[{i}]" for i in range(200)]


def test_a_port_names_its_owners_by_the_labels_the_packets_take() -> None:
    """A port's owners are kept as the numbers of their `proc.var`: the name a packet's column takes too."""
    names = Strings()
    owners = Owners(names)
    by_port = PortOwners(names, owners.processes)
    by_port.add(5000, "b", "u[3]")
    by_port.add(5000, "b", "u[3]")  # told again: once
    by_port.add(6000, "a.b", "x")  # a dot in a process's name too
    by_port.add(6000, "a", "b.x")
    assert [by_port.owner(n) for n in by_port.numbers(5000)] == [("b", "u[3]")]
    assert [by_port.owner(n) for n in by_port.numbers(6000)] == [("a.b", "x"), ("a", "b.x")]
    assert names.add("b.u[3]") == by_port.label_index(by_port.numbers(5000)[0])  # the packets' label: that number
    assert len(names) == 2  # "b.u[3]", "a.b.x": no bare var numbered beside them
    by_port.add(1 << 40, "b", "far")  # no port of a packet's: not kept (the index's keys are 32 bits)
    assert by_port.numbers(1 << 40) == () and len(names) == 2


class _SameHash(str):
    def __hash__(self) -> int:
        return 12345


def test_names_whose_hashes_meet_each_keep_their_number() -> None:
    """The index keeps 31 bits of a name's hash: names that share them take the next free keys."""
    names = Strings()
    alike = [_SameHash(f"a.s[{i}]") for i in range(10)]
    first = [names.add(name) for name in alike]
    assert len(set(first)) == 10
    for _ in range(3):
        for i in range(100):  # more than the names it remembers lately
            names.add(f"b.t[{i}]")
        assert [names.add(name) for name in alike] == first
    assert len(names) == 110 and [names[n] for n in first] == [str(name) for name in alike]


def test_names_past_the_probes_read_back_right_and_the_first_keep_their_numbers() -> None:
    names = Strings()
    alike = [_SameHash(f"a.s[{i}]") for i in range(20)]  # its own key and the 16 after it: 17 indexed
    first = [names.add(name) for name in alike]
    for i in range(100):
        names.add(f"b.t[{i}]")
    again = [names.add(name) for name in alike]
    assert again[:17] == first[:17] and all(a != f for a, f in zip(again[17:], first[17:], strict=True))
    assert [names[n] for n in again] == [str(name) for name in alike]


WIDE_HOSTS = r'''
import asyncio, random, sys
sys.path.insert(0, sys.argv[1])
from playground.compact import HOSTS, EndpointPairs, Owners, Strings, endpoint_key
from playground.packet_log import CHUNK, PacketLog, SeenPackets
from playground.runner import run_script
from playground.script.parser import parse_script
from tests.playground.test_packet_log import _made, _same

for i in range(70_000):  # a long session on a host network: more hosts than 16 bits number
    HOSTS.index(f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
assert endpoint_key(("192.0.2.1", 7)) >> 32  # a new host's endpoints take more than 32 bits

log, rnd, made = PacketLog(10_000), random.Random(3), []
for i in range(5 * CHUNK):  # sealed, frozen and filling chunks, new hosts among the old
    packet = _made(rnd, i)
    if i % 3 == 0:
        packet.src = (f"198.51.100.{i % 250}", packet.src[1])
    made.append(packet)
    log.add(packet)
for packet, kept in zip(made, log, strict=True):
    _same(packet, kept)

pairs, owners = EndpointPairs(), Owners(Strings())
wide, narrow = (("192.0.2.1", 0), ("10.0.0.1", 0)), (("127.0.0.1", 0), ("192.0.2.1", 0))
pairs[wide], pairs[narrow] = 1, 2
assert (pairs[wide], pairs[narrow], len(pairs)) == (1, 2, 2) and (("192.0.2.1", 0), ("10.0.0.2", 0)) not in pairs
owners[wide] = ("a", "a.s")
assert owners.get(wide) == ("a", "a.s") and owners.label_index(*map(endpoint_key, wide)) is not None

SCRIPT = """sockplay 1
spawn a
spawn b
a: u = socket(udp)
a: bind(u, 127.8.8.8:0) = 0
b: v = socket(udp)
b: bind(v, 127.9.9.9:0) = 0
b: sendto(v, "hi", a.u) = 2
~ b.v > a.u UDP len 2
a: recvfrom(u, 10) = 2 "hi"
"""
report = asyncio.run(run_script(parse_script(SCRIPT)))
assert not report.divergences, [(s.text, s.divergence, s.error, s.notes) for s in report.divergences]
print("ok")
'''


def test_more_hosts_than_sixteen_bits_number_are_kept_named_and_captured(tmp_path) -> None:
    # The hosts table is the session's: a fresh interpreter fills it, not the test process.
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", WIDE_HOSTS, root], capture_output=True, text=True, timeout=120, cwd=root
    )
    # (the same run on the code before: OverflowError sealing the first chunk, and pairs' keys too big)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]


def test_packets_seen_since_a_step_are_kept_as_chunk_and_row_and_read_as_they_were_however_many_came_since() -> None:
    rnd = random.Random(7)
    log = PacketLog(4 * CHUNK)
    made = [_made(rnd, i) for i in range(3 * CHUNK)]
    stored = [log.add(packet) for packet in made]
    foreign = _made(rnd, 10_000)  # not a log's: kept as it is
    seen = SeenPackets()
    seen.extend([*stored[CHUNK:], foreign])
    assert len(seen) == 2 * CHUNK + 1
    assert seen[0] == stored[CHUNK] and seen[-2] == stored[-1] and seen[-1] is foreign
    assert seen[5:8] == stored[CHUNK + 5 : CHUNK + 8] and list(seen)[-1] is foreign
    for packet in (_made(rnd, i) for i in range(3 * CHUNK, 8 * CHUNK)):  # the log lets the oldest go
        log.add(packet)
    assert log.get(stored[CHUNK].serial) is None
    _same(made[CHUNK], seen[0])
    _same(made[-1], seen[-2])


def test_owners_past_65536_names_and_values_past_32_bits_read_back() -> None:
    """Owners pack a name's number above 16 bits of process in 32 bits; past them the map's values widen."""
    names = Strings()
    owners = Owners(names)
    for k in range(70_000):  # (names past 16 bits: values past 32)
        owners[(("127.0.0.1", k % 60_000 + 1), (f"10.0.0.{k // 60_000}", 80))] = (f"p{k % 3}", f"p{k % 3}.c[{k}]")
    assert len(owners) == 70_000
    for k in (0, 65_535, 65_536, 69_999):
        pair = (("127.0.0.1", k % 60_000 + 1), (f"10.0.0.{k // 60_000}", 80))
        assert owners.get(pair) == (f"p{k % 3}", f"p{k % 3}.c[{k}]")
        found = owners.label_index(endpoint_key(pair[0]), endpoint_key(pair[1]))
        assert found is not None and names[found] == f"p{k % 3}.c[{k}]"
    wide = IntMap("I")
    wide[1] = 7
    wide[2] = 1 << 40
    assert wide.get(1) == 7 and wide.get(2) == 1 << 40 and wide.get(3) is None


def test_an_owner_past_65535_process_names_is_not_kept_and_nothing_fails() -> None:
    names = Strings()
    owners = Owners(names)
    by_port = PortOwners(names, owners.processes)
    for k in range(65_535):
        owners.processes.index(f"p{k}")
    owners[(("127.0.0.1", 1), ("127.0.0.1", 2))] = ("late", "late.s")
    by_port.add(1, "late", "s")
    assert owners.get((("127.0.0.1", 1), ("127.0.0.1", 2))) is None and by_port.numbers(1) == ()
    owners[(("127.0.0.1", 3), ("127.0.0.1", 4))] = ("p7", "p7.s")  # a process numbered before: kept
    assert owners.get((("127.0.0.1", 3), ("127.0.0.1", 4))) == ("p7", "p7.s")
    owners[(("127.0.0.1", 3), ("127.0.0.1", 4))] = ("later", "later.s")  # the pair's owner now: none known
    assert owners.get((("127.0.0.1", 3), ("127.0.0.1", 4))) is None
    assert owners.label_index(endpoint_key(("127.0.0.1", 3)), endpoint_key(("127.0.0.1", 4))) is None
