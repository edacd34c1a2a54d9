"""A family member's name (`c[7]`) as a 32-bit number: its family's number and its index.

With 10,000 connections held, every socket's name was a str (56 bytes) held by six tables (the
lab's names and their index by descriptor, the inodes' and addresses' owners, the session's
tracked names, the view's lists), each a pointer of 8 bytes (issue 13). A name of a family is a
code here instead: those tables keep it in 4 bytes, and the str is made when it is read.

A code is the family's number (1..255, numbered as first seen: the numbering is the process's,
never written anywhere) above 24 bits of index. A name outside a family, a family past the
255th, an index past 24 bits or written with a leading zero has no code (0): whoever keeps
names keeps those as strs.
"""

from __future__ import annotations

__all__ = ["INDEX_BITS", "INDEX_MASK", "code_of", "family_code", "family_name", "name_of", "natural_key", "split_name"]

INDEX_BITS = 24
INDEX_MASK = (1 << INDEX_BITS) - 1
_FAMILIES_MAX = 255

_bases: list[str] = [""]  # family number -> its name (0: none)
_base_numbers: dict[str, int] = {}


def family_code(base: str) -> int:
    """The family's number (0: a base that is not an identifier, or past the 255th family)."""
    number = _base_numbers.get(base)
    if number is not None:
        return number
    if not (base.isidentifier() and base.isascii()) or len(_bases) > _FAMILIES_MAX:
        return 0
    number = _base_numbers[base] = len(_bases)
    _bases.append(base)
    return number


def code_of(name: str) -> int:
    """`c[7]`'s code; 0 for a name without one."""
    split = split_name(name)
    if split is None or split[1] > INDEX_MASK:
        return 0
    base, index = split
    digits = name[len(base) + 1 : -1]
    if digits[0] == "0" and len(digits) > 1:  # c[07] is not c[7]: the name comes back as written
        return 0
    family = family_code(base)
    return family << INDEX_BITS | index if family else 0


def family_name(code: int) -> str:
    """The family's name (`c`) of a (non-zero) code."""
    return _bases[code >> INDEX_BITS]


def name_of(code: int) -> str:
    """The name a (non-zero) code stands for."""
    return f"{_bases[code >> INDEX_BITS]}[{code & INDEX_MASK}]"


def split_name(name: str | None) -> tuple[str, int] | None:
    """("c", 7) for `c[7]` (or `c[07]`); None for a name that is not indexed."""
    # NAME as an ASCII identifier, INDEX ASCII digits; str methods, not a regex: a view asks this of
    # every name at each refresh, 10,000 a few times a second while a block runs (a regex took half
    # the grouping's time)
    if name is None or not name.endswith("]"):
        return None
    at = name.find("[")
    base, digits = name[:at], name[at + 1 : -1]
    if at <= 0 or not (digits.isdigit() and digits.isascii() and base.isidentifier() and base.isascii()):
        return None
    if len(digits) > 18:  # (past any index a script can write: the grouping keeps indices as 64-bit numbers)
        return None
    return (base, int(digits))


def natural_key(name: str) -> tuple[str, int]:
    """A name's place among a process's names: a family's by index (c[2] before c[10]), the family where
    `c[` sorts among the other names."""
    split = split_name(name)
    return (name, -1) if split is None else (split[0] + "[", split[1])
