"""Resource quantities: just enough arithmetic for memory growth after OOMKilled."""

from __future__ import annotations

import math
import re
from decimal import Decimal

_SUFFIX: dict[str, Decimal | int] = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|([a-zA-Z]*))$")


def parse(value: str | int | float) -> Decimal:
    """A quantity as a number of base units ("1Gi" -> 1073741824, "500m" -> 0.5)."""
    if isinstance(value, int | float):
        return Decimal(str(value))
    match = _QUANTITY.match(value.strip())
    if not match or (match.group(3) or "") not in _SUFFIX:
        raise ValueError(f"not a quantity: {value!r}")
    number = Decimal(match.group(1))
    if match.group(2):
        return number * Decimal(10) ** int(match.group(2)[1:])
    return number * Decimal(_SUFFIX[match.group(3) or ""])


def format_bytes(amount: Decimal) -> str:
    """A byte count as a quantity, rounded up to whole MiB, in Gi when exact ("2Gi")."""
    mib = math.ceil(amount / Decimal(2**20))
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def as_string(value: str | int | float) -> str:
    """A quantity in the form a pod spec takes (numbers become strings: 0.5 -> "0.5")."""
    return (
        value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    )
