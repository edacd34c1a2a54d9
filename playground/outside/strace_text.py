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


def split_top(text: str) -> tuple[list[str], str]:
    """The arguments before the call's closing parenthesis, and what follows it (` = 4<...>`)."""
    args: list[str] = []
    depth, start, i, end = 0, 0, 0, len(text)
    while i < end:
        ch = text[i]
        if ch == '"':
            i = _string_end(text, i)
            continue
        if ch == "<" and i > 0 and text[i - 1].isdigit():
            i = _decoration_end(text, i)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0 and ch == ")":
                if text[start:i].strip():
                    args.append(text[start:i].strip())
                return args, text[i + 1 :]
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
        i += 1
    if text[start:].strip():
        args.append(text[start:].strip())
    return args, ""


def _string_end(text: str, i: int) -> int:
    """The index after the string literal starting at text[i] (and its `...` if strace cut it)."""
    i += 1
    while i < len(text) and text[i] != '"':
        i += 2 if text[i] == "\\" else 1
    i += 1
    return i + 3 if text.startswith("...", i) else i


def _decoration_end(text: str, i: int) -> int:
    """The index after a `<...>` decoration starting at text[i] (nested ones and quoted paths inside)."""
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i = _string_end(text, i)
            continue
        if ch == "<":
            depth += 1
        elif ch == ">" and text[i - 1] != "-":  # `->` joins the two ends of a connection
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def undecorated(arg: str) -> tuple[str, str | None]:
    """`3<TCP:[...]>` as `3` and its decoration (`TCP:[...]`); other text as it is (with no decoration)."""
    match = _FD_HEAD.match(arg)
    if match is None or not arg.endswith(">"):
        return arg, None
    return arg[: match.end() - 1], arg[match.end() : -1]


def strip_decorations(text: str) -> str:
    """Every descriptor's decoration taken out of a text, strings left as they are."""
    if "<" not in text:
        return text
    out, i, end = [], 0, len(text)
    while i < end:
        ch = text[i]
        if ch == '"':
            stop = _string_end(text, i)
            out.append(text[i:stop])
            i = stop
            continue
        if ch == "<" and i > 0 and text[i - 1].isdigit():
            i = _decoration_end(text, i)
            continue
        out.append(ch)
        i += 1
    return "".join(out)


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
    raw_args, after = split_top(rest)
    outcome = after.strip()
    ret_decoration = None
    if outcome.startswith("="):
        value, _, tail = outcome[1:].strip().partition(" ")
        value, ret_decoration = undecorated(value)
        outcome = f"= {value}" + (f" {tail}" if tail else "")
    args = [strip_decorations(arg) for arg in raw_args]
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
    del duration_ns  # kept beside the text, not in it
    return printable(f"{name}({', '.join(args)}) {outcome}".rstrip())


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
