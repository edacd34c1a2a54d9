"""One call as strace writes it (`accept4(3<socket:[7]>, {sa_family=AF_INET, ...}, [16], SOCK_CLOEXEC) = 4<...>`)
rewritten in the script's syntax (`accept4(3, ...) = 4 from 127.0.0.1:40312`), and which calls are a socket's.

strace's `-y` decorates each descriptor with what it is (`3<socket:[7]>`; `-yy` says more,
`3<TCP:[127.0.0.1:8000]>`, at twice the cost to the program): that says which calls act on
sockets; the script writes descriptors as bare numbers, and addresses as `127.0.0.1:8000`.
"""

from __future__ import annotations

import re

from playground.script.exec_line import printable

# Calls that are a socket's whatever their arguments; those that are when their descriptor is a socket;
# those that wait on many descriptors (observed when one of them is a socket).
SOCKET_CALLS = frozenset(
    "socket socketpair bind listen accept accept4 connect getsockname getpeername setsockopt getsockopt "
    "sendto recvfrom sendmsg recvmsg sendmmsg recvmmsg shutdown".split()
)
FD_CALLS = frozenset("read write readv writev pread64 pwrite64 close fcntl dup dup2 dup3 sendfile ioctl".split())
WAIT_CALLS = frozenset("poll ppoll select pselect6".split())
EPOLL_CALLS = frozenset("epoll_create epoll_create1 epoll_ctl epoll_wait epoll_pwait epoll_pwait2".split())
PROCESS_CALLS = frozenset("clone clone3 fork vfork".split())
TRACED = SOCKET_CALLS | FD_CALLS | WAIT_CALLS | EPOLL_CALLS | PROCESS_CALLS

_SOCKET_TAG = re.compile(r"(?:TCP|UDP|UNIX|NETLINK|socket|RAW|PACKET|SCTP|PING|UDPLITE|MPTCP|L2TP|DCCP|ICMP)")
_INET = re.compile(r'\{sa_family=AF_INET, sin_port=htons\(([0-9]+)\), sin_addr=inet_addr\("([0-9.]+)"\)\}\Z')
_INET6 = re.compile(
    r"\{sa_family=AF_INET6, sin6_port=htons\(([0-9]+)\), sin6_flowinfo=htonl\([0-9]+\), "
    r'inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)", &sin6_addr\), sin6_scope_id=[0-9]+\}\Z'
)
_PEER = re.compile(r"->(\[[0-9a-fA-F:.]+\]:[0-9]+|[0-9.]+:[0-9]+)\]")
_FD_HEAD = re.compile(r"-?[0-9]+<")


# What split_top steps over: a string literal (with the `...` of one cut short), a descriptor's
# decoration (`3<socket:[7]>`, `<TCP:[a->b]>`: after a digit, `->` inside), or a bracket or comma.
_DECORATION = re.compile(r'(?<=[0-9])<(?:->|[^<>"])*+>')
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*+"(?:\.\.\.)?|(?<=[0-9])<(?:->|[^<>"])*+>|[()\[\]{},]')


def split_top(text: str) -> tuple[list[str], str]:
    """The arguments before the call's closing parenthesis, without descriptors' decorations, and what follows
    it (` = 4<...>`). One regex pass: strings and decorations are stepped over whole, never read a character
    at a time."""
    if '"' not in text:  # most calls: no data; then no nesting before the closing parenthesis is the rule
        text = _DECORATION.sub("", text)
        close = text.find(")")
        head = text[:close]
        if close >= 0 and "(" not in head and "[" not in head and "{" not in head:
            return ([arg.strip() for arg in head.split(",")] if head.strip() else []), text[close + 1 :]
    args: list[str] = []
    pieces: list[str] = []
    depth = pos = 0
    for match in _TOKEN.finditer(text):
        first = match.group()[0]
        if first == '"':
            continue
        if first == "<":
            pieces.append(text[pos : match.start()])
            pos = match.end()
        elif first in "([{":
            depth += 1
        elif first == ")" and depth == 0:
            pieces.append(text[pos : match.start()])
            arg = "".join(pieces).strip()
            if arg or args:
                args.append(arg)
            return args, text[match.end() :]
        elif first in ")]}":
            depth -= 1
        elif depth == 0:  # a comma between two arguments
            pieces.append(text[pos : match.start()])
            args.append("".join(pieces).strip())
            pieces, pos = [], match.end()
    pieces.append(text[pos:])
    tail = "".join(pieces).strip()
    if tail:
        args.append(tail)
    return args, ""


def undecorated(arg: str) -> tuple[str, str | None]:
    """`3<TCP:[...]>` as `3` and its decoration (`TCP:[...]`); other text as it is (with no decoration)."""
    match = _FD_HEAD.match(arg)
    if match is None or not arg.endswith(">"):
        return arg, None
    return arg[: match.end() - 1], arg[match.end() : -1]


def is_socket(decoration: str | None) -> bool:
    return decoration is not None and _SOCKET_TAG.match(decoration) is not None


def is_observed(name: str, args: str) -> bool:
    """Whether a call (its arguments as strace wrote them, maybe only their start) is one the lab shows."""
    if name in SOCKET_CALLS or name in EPOLL_CALLS or name in PROCESS_CALLS:
        return True
    if name in FD_CALLS:
        first = args.split(",", 1)[0].split(")", 1)[0].strip()
        return is_socket(undecorated(first)[1])
    if name in WAIT_CALLS:
        return any(f"<{tag}" in args for tag in ("TCP", "UDP", "UNIX", "socket"))
    return False


def address(arg: str) -> str | None:
    """A socket address as the script writes it, if strace's text is an IPv4 or IPv6 one."""
    found = _INET.match(arg)
    if found is not None:
        return f"{found.group(2)}:{found.group(1)}"
    found = _INET6.match(arg)
    if found is not None:
        return f"[{found.group(2)}]:{found.group(1)}"
    return None


def call_text(name: str, rest: str, duration_ns: int | None) -> str:
    """`NAME(ARGS) = OUTCOME` in the script's syntax, from strace's arguments-and-outcome text."""
    del duration_ns  # kept beside the text, not in it
    return call_parts(name, rest)[0]


def call_parts(name: str, rest: str) -> tuple[str, tuple[str, ...], str]:
    """call_text's text, with its arguments and its outcome as it writes them (read once, not again from the text)."""
    raw_args, after = split_top(rest)
    outcome = after.strip()
    ret_decoration = None
    if outcome.startswith("="):
        value, _, tail = outcome[1:].strip().partition(" ")
        value, ret_decoration = undecorated(value)
        outcome = f"= {value}" + (f" {tail}" if tail else "")
    args = raw_args
    if name in ("accept", "accept4"):
        found = _PEER.search(ret_decoration or "")  # -yy names the connection's ends; -y leaves the sockaddr
        peer = found.group(1) if found is not None else (address(args[1]) if len(args) > 1 else None)
        args = args[:1] + ["..."]
        if peer is not None and outcome.startswith("= ") and not outcome.startswith("= -1"):
            outcome += f" from {peer}"
    elif name in PROCESS_CALLS:
        args = ["..."]
    else:
        args = _addresses(args)
        if name in ("sendto", "recvfrom") and args[-2:] in (["NULL", "0"], ["NULL", "NULL"]):
            args = args[:-2]
    return printable(f"{name}({', '.join(args)}) {outcome}".rstrip()), tuple(args), printable(outcome.strip())


def _addresses(args: list[str]) -> list[str]:
    """Socket addresses written as addresses, without the length strace shows after each."""
    out: list[str] = []
    skip_length = False
    for arg in args:
        if skip_length and (arg.isdigit() or arg.startswith("[")):
            skip_length = False
            continue
        skip_length = False
        written = address(arg)
        if written is not None:
            out.append(written)
            skip_length = True
        else:
            out.append(arg)
    return out
