"""The code sent to a remote host runs on Python 3.8 (servers run older Pythons than laptops)."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from playground.errors import LabError
from playground.remote.payload import BOOTSTRAP, SHIPPED, module_path, payload, remote_command, sources
from playground.remote.ssh import failure, ssh_argv
from playground.script.errors import ScriptError
from playground.script.parser import parse_script
from tests.helpers import REPO
from tests.sshd import oldest_python

OLDEST = (3, 8)
# Names that came after 3.8 (str methods, os and signal functions, socket helpers, functools.cache...).
NEWER_ATTRIBUTES = {
    "removeprefix",
    "removesuffix",
    "pidfd_open",
    "pidfd_send_signal",
    "send_fds",
    "recv_fds",
    "waitstatus_to_exitcode",
    "bit_count",
    "is_relative_to",
    "with_stem",
    "cache",
    "pairwise",
    "aiter",
    "anext",
}
NEWER_MODULES = {"zoneinfo", "graphlib", "tomllib", "typing_extensions"}
BUILTIN_GENERICS = {"list", "dict", "tuple", "set", "frozenset", "type"}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node Python evaluates when it runs the module (with the `__future__` import, annotations are not)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)  # its body is read by type checkers only
            continue
        out.append(node)
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns"):
                continue
            children = value if isinstance(value, list) else [value]
            stack.extend(c for c in children if isinstance(c, ast.AST))
    return out


def too_new(source: str) -> list[str]:
    tree = ast.parse(source, feature_version=OLDEST)
    found = []
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    has_annotations = any(
        getattr(n, "annotation", None) is not None or getattr(n, "returns", None) is not None for n in ast.walk(tree)
    )
    if has_annotations and not future:
        found.append("annotations without `from __future__ import annotations`")
    abc_names = {
        alias.asname or alias.name
        for node in runtime_nodes(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "collections.abc"
        for alias in node.names
    }
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in abc_names:
            found.append(f"line {node.lineno}: collections.abc's {node.value.id}[...] evaluated (3.9)")
        elif isinstance(node, ast.Attribute) and node.attr in NEWER_ATTRIBUTES:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and any(k.arg == "strict" for k in node.keywords):
            found.append(f"line {node.lineno}: strict= (zip's, 3.10)")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id in BUILTIN_GENERICS:
            found.append(f"line {node.lineno}: {node.value.id}[...] evaluated (3.9)")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: import {n}" for n in names if n.split(".")[0] in NEWER_MODULES]
        elif isinstance(node, ast.Match):  # pragma: no cover - feature_version refuses it first
            found.append(f"line {node.lineno}: match")
    return found


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_module_runs_on_python_3_8(name: str) -> None:
    path, _ = module_path(name)
    assert path.is_file()
    assert too_new(path.read_text()) == []


def test_every_shipped_module_imports_on_a_real_python_3_8() -> None:
    python38 = oldest_python()
    if python38 is None:
        pytest.skip("no Python 3.8 on this machine (python3.8 on PATH, or pyenv's 3.8)")
    imports = "; ".join(f"import {name}" for name in SHIPPED)
    done = subprocess.run(
        [python38, "-S", "-E", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {imports}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_checker_catches_what_3_8_lacks() -> None:
    assert too_new("x = 'ab'.removeprefix('a')\n")
    assert too_new("for a, b in zip([], [], strict=True): pass\n")
    assert too_new("from __future__ import annotations\nx = list[int]\n")
    assert too_new("def f(x: list[int]) -> None: pass\n")
    assert not too_new("from __future__ import annotations\ndef f(x: list[int] | None) -> None: pass\n")
    assert too_new("from collections.abc import Callable as C\nF = C[[int], None]\n")
    assert not too_new("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    x = list[int]\n")
    with pytest.raises(SyntaxError):
        too_new("match x:\n    case 1: pass\n")


def test_the_bootstrap_reads_on_any_python3_and_names_its_version() -> None:
    ast.parse(BOOTSTRAP, feature_version=(3, 0))
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", BOOTSTRAP], input=b"", capture_output=True, timeout=30, check=False
    )
    v = sys.version_info
    assert done.stdout == f"sockplay-agent {v[0]}.{v[1]}.{v[2]}\n".encode()
    assert done.returncode == 4  # no code came after it: it stops, running nothing


def test_the_payload_holds_every_shipped_module() -> None:
    assert set(sources()) == set(SHIPPED)
    assert len(payload()) < 64 * 1024  # one quick write over a slow link
    assert remote_command().startswith("exec python3 -S -E -c '")


def test_the_destination_is_one_argument_after_the_options() -> None:
    argv = ssh_argv("user@machine.example")
    assert argv[-2:] == ["--", "user@machine.example"] and "BatchMode=yes" in argv
    with pytest.raises(LabError):
        ssh_argv("-oProxyCommand=x")


def test_what_ssh_said_becomes_a_reason() -> None:
    said = "ssh: connect to host 10.0.0.1 port 22: No route to host\n"
    assert "cannot be reached (ssh: connect to host" in failure("far", "x", 255, said, None)
    assert "authentication refused" in failure("far", "x", 255, "user@x: Permission denied (publickey).", None)
    assert "no python3" in failure("far", "x", 127, "sh: 1: exec: python3: not found", None)
    assert "its python3 is 3.6.9" in failure("far", "x", 3, "", "3.6.9")
    assert "host key" in failure("far", "x", 255, "Host key verification failed.", None)


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("cut far", "cut its cable"),
        ("mend far", "mend its cable"),
        ("crash far", "crash it"),
        ("+0.5 boot far", "boot it"),
        ("cable far delay 100ms", "impair its cable"),
    ],
)
def test_faults_on_a_remote_host_are_refused_naming_the_network_lab(line: str, what: str) -> None:
    with pytest.raises(ScriptError) as caught:
        parse_script(f"sockplay 1\nhost far ssh user@machine.example\n{line}\n")
    message = str(caught.value)
    assert f"does not apply to far: it is a real machine reached over ssh, and sockplay cannot {what}" in message
    assert "the network lab's hosts (`host NAME 192.0.2.1`)" in message
    assert message.startswith("<script>:3:")


def test_both_kinds_of_host_in_one_script() -> None:
    text = "sockplay 1\nhost alpha 192.0.2.1\nhost far ssh me@machine.example\nspawn a on alpha\nspawn b on far\n"
    script = parse_script(text + "cut alpha\n")
    assert [line.text.strip() for line in script.lines][-3:] == ["spawn a on alpha", "spawn b on far", "cut alpha"]
    with pytest.raises(ScriptError, match="does not apply to far: it is a real machine"):
        parse_script(text + "crash far\n")
    with pytest.raises(ScriptError, match="already"):
        parse_script(text + "host far ssh other.example\n")
    with pytest.raises(ScriptError, match="already|taken"):
        parse_script(text + "host alpha ssh other.example\n")
