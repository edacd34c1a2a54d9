"""`export --python` writes a script's values into the program, never its text as code.

A recording is downloaded and exported, so everything in it is hostile: header values,
comments, names, data and the file's own name. Each exported program is compiled and its
syntax tree checked: the runtime exactly as export_runtime/ has it, then only the
experiment's own calls (the runtime's functions on constants, numbers, strings and bytes),
with every text of the script surviving as a value, never as code.
"""

from __future__ import annotations

import ast
import builtins
import re
import subprocess
import symtable
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from playground.export import export_python
from playground.export_runtime import runtime_text
from playground.script.model import Host, RemoteHost, Script
from playground.script.parser import parse_script
from tests.helpers import FIRST, REPO
from tests.playground.test_parser_fuzz import SEEDS, mutated, parse_or_script_error, settings_
from tests.playground.test_script_md import examples

WHEN = datetime(2026, 1, 2, 3, 4)
_RUNTIME_TREE = ast.parse(runtime_text())
# What the experiment may call: the runtime's public functions (and its `repeat` block).
_API = {
    node.name
    for node in _RUNTIME_TREE.body
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_") and node.name[0].islower()
}
_CONSTANT = re.compile(r"[A-Z][A-Z0-9_]*")
_MODULES = {"socket", "signal", "select", "os"}
_NODES = (
    ast.ImportFrom,
    ast.alias,
    ast.Assign,
    ast.Expr,
    ast.Call,
    ast.FunctionDef,
    ast.arguments,
    ast.arg,
    ast.Return,
    ast.Pass,
    ast.With,
    ast.withitem,
    ast.If,
    ast.Compare,
    ast.Eq,
    ast.Name,
    ast.Load,
    ast.Store,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.BinOp,
    ast.BitOr,
    ast.Add,
    ast.Mult,
    ast.Tuple,
    ast.List,
    ast.keyword,
    ast.UnaryOp,
    ast.USub,
)


def experiment(program: str) -> list[ast.stmt]:
    """The program's statements after the runtime, once the docstring and runtime are checked."""
    assert program.startswith("#!/usr/bin/env python3\n")
    tree = ast.parse(program)
    compile(program, "exported.py", "exec")
    docstring, *rest = tree.body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert isinstance(docstring.value.value, str)
    runtime = _RUNTIME_TREE.body
    assert [ast.dump(node) for node in rest[: len(runtime)]] == [ast.dump(node) for node in runtime]
    return rest[len(runtime) :]


def assert_only_the_runtime_is_called(program: str) -> None:
    names = set(_API) | {"me", "at", "HEADER", "TIMEOUT", "CATCH", "_", "__name__"}
    for statement in experiment(program):
        if isinstance(statement, ast.ImportFrom):
            assert statement.module in _MODULES and statement.level == 0, ast.dump(statement)
            assert all(_CONSTANT.fullmatch(alias.name) and alias.asname is None for alias in statement.names)
        for node in ast.walk(statement):
            assert isinstance(node, _NODES), ast.dump(node)
            if isinstance(node, ast.Call):
                assert isinstance(node.func, ast.Name) and node.func.id in _API, ast.dump(node.func)
            elif isinstance(node, ast.Attribute):
                assert isinstance(node.value, ast.Name) and node.value.id == "me", ast.dump(node)
            elif isinstance(node, ast.Name):
                assert node.id in names or _CONSTANT.fullmatch(node.id), node.id
            elif isinstance(node, ast.Constant):
                assert isinstance(node.value, (str, bytes, int, float, bool, type(None))), ast.dump(node)
            elif isinstance(node, ast.FunctionDef):
                assert node.name == "_" and len(node.decorator_list) == 1
                assert [a.arg for a in node.args.args] in (["me"], ["me", "at"])


def header_and_docstring(program: str) -> tuple[list[str], str]:
    tree = ast.parse(program)
    docstring = ast.get_docstring(tree, clean=False) or ""
    for node in experiment(program):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            return ast.literal_eval(node.value), docstring
    raise AssertionError("no HEADER in the program")


# What a hostile recording can hold where the exporter writes text.
NASTY = [
    '""" if __import__("os").system("touch /tmp/PWNED") else """',
    '" + __import__("os").system("id") + "',
    "' + __import__('os').system('id') + '",
    "\\",
    '\\"',
    "x\rimport os; os.system('id')",
    "x\nimport os; os.system('id')",
    "x\r\nimport os",
    "x\x0bimport os",
    "x\x0cimport os",
    "x\x1cimport os",
    "x\x85import os",
    "x\u2028import os",
    "x\u2029import os",
    "\x00",
    "\x1b]52;c;cHduZWQ=\x07\x1b[2J",
    "\ud800",
    "é 中文 \U0001f600",
    "\\N{LATIN SMALL LETTER A}",
    "{__import__('os')}",
]


@pytest.mark.parametrize("nasty", NASTY)
def test_a_hostile_header_and_file_name_stay_values(nasty: str) -> None:
    source = f"a{nasty}.sockplay"  # a file name may hold a line end; a header line may not
    nasty = nasty.replace("\n", " ")
    text = f"#@ kernel: 6.1{nasty}\n#@ lab: host{nasty}\nsockplay 1\nspawn a\n"
    program = export_python(parse_script(text, "x.sockplay"), source, exported_at=WHEN)
    assert_only_the_runtime_is_called(program)
    header, docstring = header_and_docstring(program)
    # The values come back exactly as they were (the parser strips a header value's spaces).
    assert (
        header[0]
        == f"exported from {source} by sockplay {header[0].split(' by sockplay ')[1].split()[0]} on 2026-01-02 03:04"
    )
    assert header[1] == f"recorded on kernel {('6.1' + nasty).strip()}, in a lab on the {('host' + nasty).strip()}"
    assert docstring.startswith(f"{source}, as a standalone Python program")
    assert header[1] in docstring


@pytest.mark.parametrize("nasty", NASTY)
def test_hostile_comments_stay_comments(nasty: str) -> None:
    nasty = nasty.replace("\n", " ")  # a line end in a script ends the comment: that is the parser's business
    # A comment before a line, after a step, after a directive, and inside a repeat block.
    text = (
        "sockplay 1\n"
        f"# before{nasty}\n"
        f"spawn a  # after a directive{nasty}\n"
        f"a: u = socket(udp)  # after a step{nasty}\n"
        "repeat 2\n"
        f"  # inside{nasty}\n"
        f'  a: sendto(u, "x", 127.0.0.1:9)  # in the block{nasty}\n'
        "end\n"
    )
    program = export_python(parse_script(text, "x.sockplay"), "x.sockplay", exported_at=WHEN)
    assert_only_the_runtime_is_called(program)


def test_a_carriage_return_in_a_comment_does_not_end_the_line() -> None:
    # Python ends a line at a bare \r: before, the rest of the comment ran as code.
    text = "sockplay 1\nspawn a\n# hi\rimport os; os.system('touch /tmp/PWNED')\na: s = socket(tcp)  # x\rpass\n"
    program = export_python(parse_script(text, "x.sockplay"), "x.sockplay", exported_at=WHEN)
    assert "\r" not in program
    assert "# hi\\rimport os" in program
    assert_only_the_runtime_is_called(program)


def test_an_empty_repeat_block_exports_to_a_program() -> None:
    text = "sockplay 1\nspawn a\nrepeat 3\nend\n"
    assert_only_the_runtime_is_called(export_python(parse_script(text, "x.sockplay"), "x.sockplay", exported_at=WHEN))


def test_a_wait_too_long_for_a_float_is_refused_not_written_as_a_name() -> None:
    # `#@ wait 999...9` is inf seconds: written as `pause(inf)`, the program died of a NameError.
    text = "sockplay 1\n#@ wait " + "9" * 400 + "\nspawn a\n"
    with pytest.raises(ValueError, match="cannot export a time of inf seconds"):
        export_python(parse_script(text, "x.sockplay"), "x.sockplay", exported_at=WHEN)


def test_the_command_refuses_a_script_it_cannot_export_in_one_line(tmp_path: Path) -> None:
    script = tmp_path / "long.sockplay"
    script.write_text("sockplay 1\n#@ wait " + "9" * 400 + "\nspawn a\n")
    refused = subprocess.run(
        [sys.executable, "-m", "playground.cli", "export", str(script), "--python"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr == f"sockplay: {script}: cannot export a time of inf seconds\n"


def test_hostile_names_and_data_stay_values() -> None:
    text = (
        "sockplay 1\n"
        "spawn a\n"
        "a: s = socket(udp)\n"
        'a: sendto(s, "\\"\\"\\" + __import__(\\"os\\")\\r\\n\\x00\\xff" * 3 + "end", 127.0.0.1:9)\n'
        'a: writev(s, "\\\\", "\'\'\'")\n'
    )
    program = export_python(parse_script(text, "x.sockplay"), "x.sockplay", exported_at=WHEN)
    assert_only_the_runtime_is_called(program)
    # The data arguments, as values: bytes literals joined with + and * (checked above to hold nothing else).
    sent = [
        eval(compile(ast.Expression(arg), "data", "eval"), {"__builtins__": {}})
        for node in ast.walk(ast.Module(body=experiment(program), type_ignores=[]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("sendto", "writev")
        for arg in node.args
        if isinstance(arg, (ast.Constant, ast.BinOp))
    ]
    assert sent == [b'""" + __import__("os")\r\n\x00\xff' * 3 + b"end", b"\\", b"'''"]


def test_every_script_in_the_repository_exports_to_only_the_runtime() -> None:
    scripts = sorted(REPO.glob("playground/lessons/*.sockplay"))
    assert scripts
    refused = []
    for path in scripts:
        script = parse_script(path.read_text(), path.name)
        # What export cannot write (the network lab, sets, epoll...) is refused, saying so; never half written.
        try:
            program = export_python(script, path.name, exported_at=WHEN)
        except ValueError as exc:
            assert str(exc).startswith("cannot export") or "export cannot write" in str(exc), exc
            refused.append(path.name)
            continue
        assert_only_the_runtime_is_called(program)
    assert len(refused) <= len(scripts) - 16, refused  # lessons 1 to 17 (but 15) all export
    for text in [FIRST, *SEEDS]:
        assert_only_the_runtime_is_called(export_python(parse_script(text, "seed"), "seed", exported_at=WHEN))
    # The contract's examples (docs/script.md).
    exported = 0
    for name, text in examples():
        script = parse_script(text, name)
        # The network lab's and remote hosts' examples: export refuses them (every process would run here).
        if any(isinstance(line.node, (Host, RemoteHost)) for line in script.lines):
            continue
        # What export cannot write yet (`repeat N as VAR`) is refused, saying so.
        try:
            program = export_python(script, name, exported_at=WHEN)
        except ValueError as exc:
            assert "export cannot write" in str(exc), exc
            continue
        assert_only_the_runtime_is_called(program)
        exported += 1
    assert exported >= 2


def export_or_refuse(script: Script, source: str = "fuzz.sockplay") -> None:
    try:
        program = export_python(script, source, exported_at=WHEN)
    except ValueError as exc:  # a name that is no constant: refused with a message, never written
        assert str(exc).startswith("cannot export ")
        return
    assert_only_the_runtime_is_called(program)


@settings_
@given(mutated())
def test_mutated_scripts_export_to_only_the_runtime(text: str) -> None:
    script = parse_or_script_error(text)
    if script is not None:
        export_or_refuse(script)


@settings_
@given(st.sampled_from(SEEDS), st.text(min_size=1, max_size=40))
def test_any_comment_text_exports_as_a_comment(seed: str, nasty: str) -> None:
    lines = seed.split("\n")
    at = len(lines) // 2
    text = "\n".join([*lines[:at], "# " + nasty.replace("\n", " "), *lines[at:]])
    script = parse_or_script_error(text)
    if script is not None:
        export_or_refuse(script, source=nasty)  # the file's name is anything a file system allows


def test_the_runtime_parts_join_into_a_program_whose_every_name_is_defined() -> None:
    # The parts are linted without the undefined-name check (names cross between them): check the whole.
    table = symtable.symtable(runtime_text(), "runtime.py", "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    defined |= set(dir(builtins)) | {"__name__", "__file__"}
    undefined = set()

    def visit(scope: symtable.SymbolTable) -> None:
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and symbol.is_global() and symbol.get_name() not in defined:
                undefined.add(symbol.get_name())
        for child in scope.get_children():
            visit(child)

    visit(table)
    assert not undefined
