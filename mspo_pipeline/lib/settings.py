"""Reading settings from environment variables: the one spelling of a boolean."""

from __future__ import annotations

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def flag(name: str, value: str | None, *, default: bool) -> bool:
    """The boolean variable ``name`` set to ``value`` (None or blank: ``default``).

    Raises ``ValueError`` naming the variable for anything but true/false, yes/no, on/off, 1/0.
    """
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{name}={text!r} is not a boolean; use true or false")
