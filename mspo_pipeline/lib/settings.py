"""Reading settings from environment variables: the defaults of the pipeline's variables, and
the one spelling of a boolean."""

from __future__ import annotations

from types import MappingProxyType

from mspo_pipeline.lib.catalog import DEFAULT_BASE_URL
from mspo_pipeline.lib.late_capture import LatePolicy
from mspo_pipeline.lib.roots import DEFAULT_DATA_ROOT

ENV_DEFAULTS = MappingProxyType(
    {
        "MSPO_API_BASE_URL": DEFAULT_BASE_URL,
        "MSPO_DATA_ROOT": DEFAULT_DATA_ROOT,
        "MSPO_CA_BUNDLE": "",
        "MSPO_LATE_CAPTURE": LatePolicy.ALLOW.value,
        # About 5 km² a cell: a village's plots, not one farm.
        "MSPO_H3_RESOLUTION": "7",
        # k: a published cell holds at least this many plots.
        "MSPO_HEX_MIN_PLOTS": "5",
    }
)
"""What an unset variable means (README's configuration table)."""

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
