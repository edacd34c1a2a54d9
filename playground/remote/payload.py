"""What is sent to a remote host: a bootstrap on ssh's command line, then the lab-process code on stdin.

The remote machine needs nothing but python3 (3.8 or newer). The bootstrap is
written so that any Python can read it, says which version it runs on (so an
older one is refused by name), then reads the modules from stdin and imports
them from memory: nothing is written to the remote disk.
"""

from __future__ import annotations

import marshal
import shlex
import struct
import zlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
# The modules a remote lab process runs (the whole worker package, and what it imports), and the agent.
SHIPPED = (
    "playground",
    "playground.protocol",
    "playground.constants",
    "playground.worker",
    *sorted(f"playground.worker.{path.stem}" for path in (PACKAGE / "worker").glob("*.py") if path.stem != "__init__"),
    "playground.remote",
    "playground.remote.agent",
)
MIN_PYTHON = (3, 8)
GREETING = b"sockplay-agent "
# The first line is Python 2 and 3 alike, so even a very old python3 (or a python2 named so) answers.
BOOTSTRAP = (
    "import sys;v=sys.version_info;sys.stdout.write('sockplay-agent %d.%d.%d\\n'%(v[0],v[1],v[2]));"
    "sys.stdout.flush()\n"
    "if v<(3,8):sys.exit(3)\n"
    "import os,struct,zlib,marshal,importlib.util\n"
    "def rd(n):\n"
    " b=b''\n"
    " while len(b)<n:\n"
    "  c=os.read(0,n-len(b))\n"
    "  if not c:sys.exit(4)\n"
    "  b+=c\n"
    " return b\n"
    "M=marshal.loads(zlib.decompress(rd(struct.unpack('>I',rd(4))[0])))\n"
    "class F:\n"
    " def find_spec(s,n,p=None,t=None):\n"
    "  return importlib.util.spec_from_loader(n,s,is_package=M[n][0]) if n in M else None\n"
    " def create_module(s,spec):return None\n"
    " def exec_module(s,m):exec(compile(M[m.__name__][1],'<sockplay>/'+m.__name__,'exec'),m.__dict__)\n"
    "sys.meta_path.insert(0,F())\n"
    "from playground.remote.agent import main\n"
    "main()\n"
)


def module_path(name: str) -> tuple[Path, bool]:
    """The source file of a shipped module, and whether it is a package."""
    parts = name.split(".")[1:]
    folder = PACKAGE.joinpath(*parts)
    if folder.is_dir():
        return folder / "__init__.py", True
    return PACKAGE.joinpath(*parts[:-1], parts[-1] + ".py"), False


def sources() -> dict[str, tuple[bool, str]]:
    """Each shipped module's (is a package, source)."""
    out = {}
    for name in SHIPPED:
        path, is_package = module_path(name)
        out[name] = (is_package, path.read_text())
    return out


def payload() -> bytes:
    """The modules as the bootstrap reads them: a length, then the compressed marshalled dict."""
    body = zlib.compress(marshal.dumps(sources(), 4), 6)
    return struct.pack(">I", len(body)) + body


def remote_command() -> str:
    """The command ssh asks the remote shell to run: python3 without site or environment, and the bootstrap.

    It is sockplay's own text (nothing of the script's), quoted for a POSIX shell.
    """
    return "exec python3 -S -E -c " + shlex.quote(BOOTSTRAP) + " sockplay-agent"
