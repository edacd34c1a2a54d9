"""Data arguments are kept as runs: parsed, capped and written back without building their bytes."""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playground.script.data import Data
from playground.script.errors import ScriptError
from playground.script.format import data_runs, format_data, format_node, quote, short_data
from playground.script.lexer import tokenize
from playground.script.model import DataArg, Step
from playground.script.parser import parse_script
from tests.playground.test_cli_run import sockplay

HEAD = "sockplay 1\nspawn a\na: s = socket(AF_INET, SOCK_STREAM, 0) = 3\n"
MIB = 1024 * 1024


def _reference_quote(data: bytes) -> str:
    """The per-byte quote the fast one replaced: the two must agree on every input."""
    escapes = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x00: "\\0", 0x5C: "\\\\", 0x22: '\\"'}
    out = []
    for i, b in enumerate(data):
        if b in escapes:
            text = escapes[b]
            if b == 0 and i + 1 < len(data) and 0x30 <= data[i + 1] <= 0x37:
                text = "\\x00"
            out.append(text)
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return '"' + "".join(out) + '"'


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_quote_agrees_with_the_per_byte_reference_and_reads_back(data: bytes) -> None:
    text = quote(data)
    assert text == _reference_quote(data)
    (token,) = tokenize(text)
    assert token.value == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=24), st.integers(min_value=1, max_value=50))
def test_data_runs_rebuild_the_bytes(unit: bytes, count: int) -> None:
    data = unit * count + unit[:3]
    assert b"".join(chunk * n for chunk, n in data_runs(data)) == data


def test_sixteen_lines_of_64_mib_each_parse_to_runs_not_bytes() -> None:
    """16 x `"x" * 67108864` then a syntax error: the error comes without building a gigabyte."""
    script = HEAD + 'a: write(s, "x" * 67108864)\n' * 3 + "a: oops(\n"
    tracemalloc.start()
    try:
        with pytest.raises(ScriptError) as caught:
            parse_script(script, "big.sp", max_data=1 << 40)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.line == 7
    assert peak < 4 * MIB  # was 3 x 64 MiB and more


def test_a_script_whose_data_passes_the_cap_is_refused_naming_the_line() -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(HEAD + 'a: write(s, "x" * 67108864)\n' * 5)
    assert (caught.value.line, caught.value.column) == (8, 13)
    assert "268435456 bytes a script may hold" in caught.value.message
    assert "--max-data" in caught.value.message
    raised = parse_script(HEAD + 'a: write(s, "x" * 67108864)\n' * 5, max_data=5 * 64 * MIB)
    assert len(raised.lines) == 7


def test_the_cap_counts_writev_arguments_and_expected_data() -> None:
    writev = HEAD + "a: writev(s, " + ", ".join(['"x" * 67108864'] * 5) + ")\n"
    with pytest.raises(ScriptError) as caught:
        parse_script(writev)
    assert caught.value.line == 4
    read = HEAD + 'a: read(s, 67108864) = 67108864 "x" * 67108864\n' * 5
    with pytest.raises(ScriptError) as caught:
        parse_script(read)
    assert caught.value.line == 8


def test_a_long_unit_is_kept_and_written_back_repeated() -> None:
    line = 'a: write(s, "network programming" * 1000000)'
    script = parse_script(HEAD + line + "\n")
    step = script.lines[-1].node
    assert isinstance(step, Step)
    arg = step.call.args[1]
    assert isinstance(arg, DataArg)
    assert arg.value.runs == ((b"network programming", 1000000),)
    assert len(arg.value) == 19_000_000
    assert format_node(step) == line
    assert bytes(arg.value)[:40] == b"network programming" * 2 + b"ne"
    assert arg.value.head(21) == b"network programmingne"


def test_kernel_data_with_a_long_period_is_written_repeated() -> None:
    assert format_data(b"network programming" * 1000000) == '"network programming" * 1000000'
    assert format_data(b"GET " + b"a" * 100) == '"GET " + "a" * 100'
    assert short_data(bytes(range(256)) * 4000, 512) is None
    assert short_data(b"network programming" * 4, 512) == '"network programming" * 4'


def test_data_equals_the_same_bytes_however_it_is_split() -> None:
    assert Data([(b"ab", 2), (b"ab", 1)]) == Data([(b"ababab", 1)]) == b"ababab"
    assert Data([(b"GET ", 1), (b"/", 1)]).runs == ((b"GET /", 1),)
    assert Data([(b"", 5), (b"x", 0)]) == b""
    assert not Data()


def test_a_call_over_the_frame_limit_is_refused_not_reported_as_an_exit() -> None:
    """A writev past 256 MB used to kill the lab process, reported as `= exited 0`."""
    script = "sockplay 1\nspawn a\na: s = socket(AF_INET, SOCK_DGRAM, 0) = 3\n"
    script += "a: writev(s, " + ", ".join(['"x" * 67108864'] * 5) + ")\n"
    result = sockplay("run", "--max-data", str(400 * MIB), "-", stdin=script)
    assert result.returncode == 1, result.stderr
    assert "a call carries at most" in result.stderr
    assert "exited" not in result.stdout
    assert "Traceback" not in result.stderr
    refused = sockplay("run", "-", stdin=script)
    assert refused.returncode == 2
    assert "<stdin>:4:14: the script's data reaches 335544320 bytes" in refused.stderr


def test_the_event_book_shows_a_big_write_in_hex_from_its_runs() -> None:
    from playground.session.eventbook import Entry, EventBook

    book = EventBook(0)
    data = Data([(b"network programming", 1_000_000)])
    book.add_entry(Entry("ok", 1, "client", "write(c, ...) = 19000000", data=data))
    book.hex = True
    [line] = book.relist()
    assert "hex 6e 65 74 77" in line and "+18999968 B" in line
