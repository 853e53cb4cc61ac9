"""The emulator's data: what the MSPO API would serve on a given date, for a given seed.

Each smallholder register is generated once per (seed, scale) as a *timeline*: every plot the
register will ever hold between ``EPOCH`` and ``LAST_DATE``, with the day it appears, and the days
(if any) its certificate status changes, it is soft-deleted (``deleted: true``) or it disappears.
A date's snapshot is then one vectorised filter-and-select over that timeline, so any date costs
the same and nothing is replayed day by day. Same (seed, scale, date), same bytes.

The data carries the quirks the real API has (see the rate constants below, which the tests read):
unparseable GPS, areas with a decimal comma, null districts, shared MPOB numbers, ``created_at``
later than ``updated_at``, zone names that contradict their zone id, codes missing from the
reference tables. Every dataset also contains the docs' own sample records verbatim.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import polars as pl

from mspo_pipeline.emulator import references as ref
from mspo_pipeline.lib.catalog import ENDPOINTS, ENDPOINTS_BY_NAME, Endpoint, Kind

EPOCH: Final = dt.date(2026, 1, 1)
"""First date the emulator serves: the registers' timelines start here."""
LAST_DATE: Final = dt.date(2030, 12, 31)
"""Last date the emulator serves."""
REFERENCE_DATE: Final = dt.date(2026, 11, 20)
"""The date on which the registers hold ``FULL_SCALE_ROWS[name] * scale`` plots (about)."""
HORIZON_DAYS: Final = (LAST_DATE - EPOCH).days + 1
NEVER: Final = 1 << 30
"""Day index of an event that does not happen."""

FULL_SCALE_ROWS: Final = MappingProxyType(
    {"spoc_smallholders": 306_000, "osh_smallholders": 47_500, "gm_smallholders": 2_300}
)

# Evolution, per plot and per day.
NEW_PLOT_RATE: Final = 0.0002
STATUS_CHANGE_RATE: Final = 0.0003
SOFT_DELETE_RATE: Final = 0.00005
HARD_REMOVAL_RATE: Final = 0.00002

# State at the epoch, per plot.
DELETED_RATE: Final = 0.02
UPDATED_RATE: Final = 0.10
"""Share of plots already ``record_status: "UPDATED"`` at the epoch."""

# Data-quality quirks, per plot.
GPS_NULL_RATE: Final = 0.02
GPS_ZERO_RATE: Final = 0.002
GPS_SWAPPED_RATE: Final = 0.002
GPS_NO_DECIMAL_RATE: Final = 0.002
GPS_TEXT_RATE: Final = 0.001
AREA_DECIMAL_COMMA_RATE: Final = 0.0005
CERTIFIED_ABOVE_PLANTED_RATE: Final = 0.005
CREATED_AFTER_UPDATED_RATE: Final = 0.35
"""Plots whose ``updated_at`` is the 2024-07-24 migration stamp both doc samples carry."""
MPOB_SHARED_RATE: Final = 0.15
"""Plots whose MPOB number (and owner) is another plot's: one smallholder, several lots."""
MUKIM_NULL_RATE: Final = 0.90
ZONE_NAME_MISMATCH_RATE: Final = 0.01
STATE_NOT_IN_ZONE_RATE: Final = 0.003
UNKNOWN_SPOC_CODE_RATE: Final = 0.001
UNKNOWN_DAERAH_ID_RATE: Final = 0.001
DAERAH_NULL_RATE: Final = MappingProxyType(
    {"spoc_smallholders": 0.85, "osh_smallholders": 0.10, "gm_smallholders": 0.50}
)
MPOB_NULL_RATE: Final = MappingProxyType(
    {"spoc_smallholders": 0.01, "osh_smallholders": 0.70, "gm_smallholders": 0.02}
)
UNKNOWN_DAERAH_ID_BASE: Final = 900
"""``daerahId`` values from here up are deliberately missing from ``spoc/daerah``."""
UNKNOWN_SPOC_CODES: Final = ("A24", "B12", "J44", "Z1")
"""``spoc_code`` values deliberately missing from ``spoc/spocs``."""
MIGRATION_UPDATED_AT: Final = "2024-07-24T01:17:06.101Z"

STATUSES: Final = MappingProxyType(
    {
        "spoc_smallholders": (("ACTIVE", 70), ("DELAYED", 12), ("EXPIRED", 15), ("SUSPENDED", 3)),
        "osh_smallholders": (("ACTIVE", 75), ("EXPIRED", 15), ("DELAYED", 10)),
        "gm_smallholders": (("ACTIVE", 75), ("DELAYED", 10), ("EXPIRED", 12), ("SUSPENDED", 3)),
    }
)

SAMPLE_RECORDS: Final[Mapping[str, Mapping[str, Any]]] = MappingProxyType(
    {endpoint.name: endpoint.sample for endpoint in ENDPOINTS if endpoint.sample is not None}
)
"""The docs' sample records, served verbatim (and never changed) in every dataset."""

_FIRST_ID: Final = MappingProxyType(
    {"spoc_smallholders": 1, "osh_smallholders": 455_000, "gm_smallholders": 900_000}
)
_GPS_DECIMALS: Final = MappingProxyType(
    {"spoc_smallholders": 6, "osh_smallholders": 5, "gm_smallholders": 6}
)
_DAY_MS: Final = 86_400_000
_EPOCH_MS: Final = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.3fZ"

_MALE = (
    "AHMAD", "MOHD", "MUHAMMAD", "ABDUL RAHMAN", "ISMAIL", "A.LATIF", "OTHMAN", "HASSAN",
    "ZAKARIA", "ROSLAN", "AZMAN", "KAMARUDDIN", "SULAIMAN", "MAT", "YUSOF", "HAMZAH", "IBRAHIM",
)  # fmt: skip
_FEMALE = (
    "ROSNANI", "SITI", "NOR AZIZAH", "FATIMAH", "ZAINAB", "AMINAH", "NORMA", "HALIMAH",
    "ROHANA", "SALMAH", "MARIAM", "KHADIJAH", "ZURAIDAH", "NORHAYATI",
)  # fmt: skip
_FATHER = (
    "IBRAHIM", "BENU", "ABDULLAH", "AHMAD", "YAACOB", "SALLEH", "OMAR", "AWANG", "DAUD",
    "HUSIN", "JUSOH", "MAMAT", "SAID", "ISMAIL", "YUSOF", "ARIFFIN", "HARUN", "MOHAMAD",
)  # fmt: skip
_CHINESE = ("TAN", "LIM", "LEE", "WONG", "CHONG", "NG", "ONG", "CHAN", "TEO", "YAP")
_CHINESE_GIVEN = ("AH KOW", "KIM HOCK", "SIEW LAN", "BOON HUAT", "MEI LING", "CHEE KEONG")
_INDIAN = ("MUTHU", "RAMASAMY", "SUPPIAH", "KRISHNAN", "GANESAN", "LETCHUMY", "SARASWATHY")
_NATIVE = ("JOHNNY", "JANTING", "MARIA", "ROBERT", "LINDA", "PETRUS", "AGNES", "UNTING")
_NATIVE_FATHER = ("NYAGANG", "JUGAH", "LANGGAU", "MAJAU", "GINDUNG", "SIGAR", "AMIT")
_PLACES = (
    "LOK HENG", "BUKIT BESAR", "SUNGAI TEKAM", "JENGKA", "PALONG", "TROLAK", "KERATONG",
    "AIR TAWAR", "SAHABAT", "KEMAHANG", "CHINI", "BUKIT GOH", "LEPAR HILIR", "MENCHALI",
    "ULU TIRAM", "TENGGAROH", "KAMPUNG AWAH", "SUNGAI KOYAN", "BELITONG", "TELUK ANSON",
)  # fmt: skip
_PLACE_SUFFIXES = ("", " BARAT", " TIMUR", " UTARA", " SELATAN", " 1", " 2", " 3")
_MUKIMS = (
    "AIR HITAM", "BUKIT BESAR", "SUNGAI PETANI", "KUALA", "HULU", "TANJUNG", "PADANG",
    "TELUK", "BATU", "PERMATANG", "KAMPUNG BARU", "SIMPANG",
)  # fmt: skip
_ZONE_WEIGHTS = MappingProxyType(
    {1: 4, 2: 4, 3: 3, 4: 4, 5: 8, 6: 8, 7: 10, 8: 6, 9: 10, 10: 10, 11: 16}
)
_STATE_WEIGHTS = MappingProxyType(
    {1: 12, 2: 3, 3: 4, 4: 1, 5: 8, 6: 16, 7: 6, 8: 0.5, 9: 0.5, 10: 14, 11: 8, 12: 3,
     13: 5, 14: 0.05, 15: 0.2, 16: 0.05}
)  # fmt: skip
_OSH_ORGANISATIONS = MappingProxyType(
    {"FELDA": None, "FELCRA": None, "RISDA": None, "KESEDAR": 3, "KEJORA": 1, "KETENGAH": 13,
     "KEDA": 2}
)  # fmt: skip
"""Scheme owner and the only state it works in (None: anywhere)."""


def day_index(date: dt.date) -> int:
    """Days since ``EPOCH``; the one place a date outside the served range is refused."""
    if not EPOCH <= date <= LAST_DATE:
        raise ValueError(
            f"the MSPO emulator serves dates from {EPOCH} to {LAST_DATE}, not {date}: "
            "pin a date in that range (--date, EmulatorServer(date=...), POST /_emulator/date)"
        )
    return (date - EPOCH).days


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _pick(options: Sequence[Any], index: np.ndarray, dtype: pl.DataType | None = None) -> pl.Series:
    return pl.Series(list(options), dtype=dtype).gather(index)


def _weighted(
    rng: np.random.Generator, weights: Sequence[float] | np.ndarray, n: int
) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _decimal(micro: pl.Expr, decimals: int) -> pl.Expr:
    """Integer ``micro`` (value x 10**decimals) as the API's fixed-decimal string, exactly."""
    unit = 10**decimals
    return pl.concat_str(
        (micro // unit).cast(pl.String),
        pl.lit("."),
        (micro % unit).cast(pl.String).str.zfill(decimals),
    )


def _timestamp(ms: pl.Expr) -> pl.Expr:
    return pl.from_epoch(ms, time_unit="ms").dt.strftime(_TIMESTAMP_FORMAT)


def _ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


def _plot_ids(name: str, rng: np.random.Generator, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Ids and birth days: a gappy sorted base at the epoch, then daily growth with higher ids.

    Birth day -1 means "already there at the epoch". The docs' sample id is always a base plot.
    """
    target = max(round(FULL_SCALE_ROWS[name] * scale), 10)
    per_day = target * NEW_PLOT_RATE
    n_base = max(round(target - per_day * (REFERENCE_DATE - EPOCH).days), 5)
    n_new = round(per_day * HORIZON_DAYS)
    first = _FIRST_ID[name]
    span = int(n_base * 1.1) + 1
    sample = SAMPLE_RECORDS.get(name)
    reserved = int(sample["entity_smallholder_id"]) if sample else -1
    pool = np.arange(first, first + span)
    base = rng.choice(pool[pool != reserved], n_base - (reserved >= 0), replace=False)
    if reserved >= 0:
        base = np.append(base, reserved)
    later = np.arange(first + span, first + span + n_new + 1)
    later = later[later != reserved][:n_new]
    birth = np.concatenate([np.full(n_base, -1), np.sort(rng.integers(0, HORIZON_DAYS, n_new))])
    return np.concatenate([np.sort(base), later]).astype(np.int64), birth.astype(np.int32)


def _event_days(rng: np.random.Generator, birth: np.ndarray, rate: float) -> np.ndarray:
    """Day of a once-only event at ``rate`` per plot per day after the plot's birth (or NEVER)."""
    day = np.maximum(birth + 1, 0) + rng.exponential(1 / rate, birth.size).astype(np.int64)
    return np.where(day < HORIZON_DAYS, day, NEVER).astype(np.int32)


def _owner_names(rng: np.random.Generator, state: np.ndarray) -> pl.Series:
    """Malaysian owner names: mostly Malay, some Chinese and Indian, natives in Borneo."""
    n = state.size
    kind = _weighted(rng, (85, 10, 5), n)
    kind = np.where(np.isin(state, (10, 11, 15)) & (rng.random(n) < 0.5), 3, kind)

    def pick(options: Sequence[str]) -> pl.Series:
        return _pick(options, rng.integers(0, len(options), n))

    frame = pl.DataFrame(
        {
            "kind": kind,
            "female": rng.random(n) < 0.4,
            "male": pick(_MALE),
            "fem": pick(_FEMALE),
            "father": pick(_FATHER),
            "cn": pick(_CHINESE),
            "cn_given": pick(_CHINESE_GIVEN),
            "in": pick(_INDIAN),
            "in_father": pick(_INDIAN),
            "nat": pick(_NATIVE),
            "nat_father": pick(_NATIVE_FATHER),
        }
    )
    col, lit = pl.col, pl.lit
    female = col("female")
    malay = (
        pl.when(female)
        .then(pl.concat_str(col("fem"), lit(" BINTI "), col("father")))
        .otherwise(pl.concat_str(col("male"), lit(" BIN "), col("father")))
    )
    relation = pl.when(female).then(lit(" A/P ")).otherwise(lit(" A/L "))
    return frame.select(
        pl.when(col("kind") == 0)
        .then(malay)
        .when(col("kind") == 1)
        .then(pl.concat_str(col("cn"), lit(" "), col("cn_given")))
        .when(col("kind") == 2)
        .then(pl.concat_str(col("in"), relation, col("in_father")))
        .otherwise(pl.concat_str(col("nat"), lit(" ANAK "), col("nat_father")))
    ).to_series()


def _unique_numbers(rng: np.random.Generator, n: int, digits: int, exclude: int) -> np.ndarray:
    """``n`` distinct numbers of at most ``digits`` digits, none equal to a sample's."""
    drawn = rng.choice(10**digits - 1, n + 1, replace=False) + 1
    return drawn[drawn != exclude][:n]


def _null_unless(mask: np.ndarray, values: pl.Series) -> pl.Series:
    return pl.select(pl.when(pl.lit(pl.Series(mask))).then(pl.lit(values))).to_series()


def _state_columns(
    name: str, rng: np.random.Generator, state: np.ndarray, mukims: bool
) -> dict[str, Any]:
    """Owner, district (mostly null for SPOC), mukim and GPS columns for plots in ``state``."""
    n = state.size
    null_rate = DAERAH_NULL_RATE[name]
    daerah_ids = np.array([d[0] for d in ref.DAERAH])
    daerah_state = np.array([d[2] for d in ref.DAERAH])
    first = np.searchsorted(daerah_state, state, side="left")
    count = np.searchsorted(daerah_state, state, side="right") - first
    daerah = daerah_ids[first + (rng.random(n) * count).astype(np.int64)]
    present = rng.random(n) >= null_rate
    unknown = rng.random(n) < UNKNOWN_DAERAH_ID_RATE / (1 - null_rate)
    daerah_id = np.where(unknown, UNKNOWN_DAERAH_ID_BASE + daerah % 100, daerah)

    boxes = np.array([ref.STATE_BOXES[s] for s, _ in ref.STATES])[state - 1]
    lat = boxes[:, 0] + rng.random(n) * (boxes[:, 1] - boxes[:, 0])
    long = boxes[:, 2] + rng.random(n) * (boxes[:, 3] - boxes[:, 2])
    gps_rates = (GPS_NULL_RATE, GPS_ZERO_RATE, GPS_SWAPPED_RATE, GPS_NO_DECIMAL_RATE, GPS_TEXT_RATE)
    columns: dict[str, Any] = {
        "name": _owner_names(rng, state),
        "stateId": state.astype(np.int64),
        "state": _pick([s for _, s in ref.STATES], state - 1),
        "daerahId": _null_unless(present, pl.Series(daerah_id, dtype=pl.Int64)),
        "daerah": _null_unless(present, _pick([d[1] for d in ref.DAERAH], daerah - 1)),
        "_lat": (lat * 1e6).astype(np.int64),
        "_long": (long * 1e6).astype(np.int64),
        "_gps_kind": _weighted(rng, (1 - sum(gps_rates), *gps_rates), n),
    }
    if mukims:
        has_mukim = present & (rng.random(n) < (1 - MUKIM_NULL_RATE) / (1 - null_rate))
        k = rng.integers(0, len(_MUKIMS), n)
        columns["mukimId"] = _null_unless(has_mukim, pl.Series(daerah * 100 + k, dtype=pl.Int64))
        columns["mukim"] = _null_unless(has_mukim, _pick([f"MUKIM {m}" for m in _MUKIMS], k))
    return columns


def _certificate_columns(
    name: str, rng: np.random.Generator, ids: np.ndarray, birth: np.ndarray
) -> dict[str, Any]:
    """MPOB number, areas, lot, status and the timeline: the same for every register."""
    n = ids.size
    mpob = rng.integers(100_000_000_000, 1_000_000_000_000, n)
    shared = rng.random(n) < MPOB_SHARED_RATE
    owner_of = np.where(shared, np.maximum(np.arange(n) - rng.integers(1, 4, n), 0), np.arange(n))
    mpob_text = pl.Series(np.char.mod("%012d", mpob[owner_of]))
    planted = (np.clip(rng.lognormal(np.log(2.2), 0.7, n), 0.1, 40.0) * 10_000).astype(np.int64)
    certified = np.where(
        rng.random(n) < 0.1, (planted * rng.uniform(0.5, 1.0, n)).astype(np.int64), planted
    )
    above = rng.random(n) < CERTIFIED_ABOVE_PLANTED_RATE
    certified = np.where(above, planted + rng.integers(1_000, 20_000, n), certified)
    statuses = [s for s, _ in STATUSES[name]]
    status0 = _weighted(rng, [w for _, w in STATUSES[name]], n)
    status1 = (status0 + rng.integers(1, len(statuses), n)) % len(statuses)

    # Base plots were created 2019-2025; some carry the 2024 migration stamp as updated_at with a
    # later created_at (as both doc samples do); plots born after the epoch are created that day.
    base = birth < 0
    end = _EPOCH_MS - 1
    migrated = base & (rng.random(n) < CREATED_AFTER_UPDATED_RATE)
    created = rng.integers(_ms("2019-01-01T00:00:00Z"), end, n)
    created = np.where(migrated, rng.integers(_ms("2024-07-25T00:00:00Z"), end, n), created)
    born_at = _EPOCH_MS + birth.astype(np.int64) * _DAY_MS + rng.integers(0, _DAY_MS, n)
    created = np.where(base, created, born_at)
    updated = np.minimum(created + rng.integers(0, 500 * _DAY_MS, n), end)
    updated = np.where(base, np.where(migrated, _ms(MIGRATION_UPDATED_AT), updated), created)

    change = _event_days(rng, birth, STATUS_CHANGE_RATE)
    delete = _event_days(rng, birth, SOFT_DELETE_RATE)
    lot_prefix = _pick(("", "", "", "PT ", "LOT "), rng.integers(0, 5, n))
    return {
        "entity_smallholder_id": ids,
        "mpob_no": _null_unless(rng.random(n) >= MPOB_NULL_RATE[name], mpob_text),
        "_owner_of": owner_of,
        "_planted": planted,
        "_certified": certified,
        "_comma": rng.random(n) < AREA_DECIMAL_COMMA_RATE,
        "lot_no": lot_prefix + pl.Series(rng.integers(1, 30_000, n)).cast(pl.String),
        "_status0": _pick(statuses, status0),
        "_status1": _pick(statuses, status1),
        "_created": created,
        "_updated0": updated,
        "_birth": birth,
        "_change": change,
        "_delete": delete,
        "_remove": _event_days(rng, birth, HARD_REMOVAL_RATE),
        "_change_at": _EPOCH_MS + change.astype(np.int64) * _DAY_MS + rng.integers(0, _DAY_MS, n),
        "_delete_at": _EPOCH_MS + delete.astype(np.int64) * _DAY_MS + rng.integers(0, _DAY_MS, n),
        "_deleted0": base & (rng.random(n) < DELETED_RATE),
        "_record_status0": pl.Series(
            np.where(base & (rng.random(n) < UPDATED_RATE), "UPDATED", "NO CHANGE")
        ),
    }


def _zone_columns(rng: np.random.Generator, zone: np.ndarray) -> dict[str, Any]:
    """Zone names, a few of them another zone's (like the SPOC doc sample's)."""
    wrong = rng.random(zone.size) < ZONE_NAME_MISMATCH_RATE
    shown = np.where(wrong, (zone - 1 + rng.integers(1, 11, zone.size)) % 11 + 1, zone)
    return {"zoneId": zone.astype(np.int64), "zone": _pick([z for _, z in ref.ZONES], shown - 1)}


def _states_of_zones(
    rng: np.random.Generator, zone: np.ndarray, *, outside: np.ndarray | None = None
) -> np.ndarray:
    """A state each zone covers (weighted by palm area), or one it does not where ``outside``."""
    state = np.zeros(zone.size, dtype=np.int64)
    outside = np.zeros(zone.size, dtype=bool) if outside is None else outside
    for zone_id, _ in ref.ZONES:
        covered = {s for z, s in ref.ZONE_STATES if z == zone_id}
        for flip in (False, True):
            mask = (zone == zone_id) & (outside == flip)
            options = [s for s, _ in ref.STATES if (s in covered) != flip]
            weights = [_STATE_WEIGHTS[s] for s in options]
            state[mask] = np.asarray(options)[_weighted(rng, weights, int(mask.sum()))]
    return state


def _spoc_register(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Independent smallholders: SPOC code -> zone -> a state of that zone -> district."""
    codes = ref.SPOCS
    per_zone = {z: sum(1 for c in codes if c[1] == z) for z, _ in ref.ZONES}
    code = _weighted(rng, [_ZONE_WEIGHTS[c[1]] / per_zone[c[1]] for c in codes], n)
    zone = np.array([c[1] for c in codes])[code]
    state = _states_of_zones(rng, zone, outside=rng.random(n) < STATE_NOT_IN_ZONE_RATE)
    cluster_names = []
    for _, zone_id, _ in codes:
        home = next(s for z, s in ref.ZONE_STATES if z == zone_id)
        districts = ref.DISTRICTS_OF_STATE[home]
        size = min(len(districts), int(rng.integers(2, 5)))
        chosen = rng.choice(len(districts), size, replace=False)
        cluster_names.append("/ ".join(districts[i] for i in sorted(chosen)))
    unknown = rng.random(n) < UNKNOWN_SPOC_CODE_RATE
    spoc_code = _pick([c[2] for c in codes], code).zip_with(
        pl.Series(~unknown), _pick(UNKNOWN_SPOC_CODES, rng.integers(0, 4, n))
    )
    return {
        "entity_name": _pick(cluster_names, code),
        **_state_columns("spoc_smallholders", rng, state, mukims=True),
        **_zone_columns(rng, zone),
        "spoc_code": spoc_code,
        "cert_no": _mspo_cert_no(rng, n),
        "track_id": "OPMC"
        + pl.Series(_unique_numbers(rng, n, 6, 205946)).cast(pl.String).str.zfill(6),
    }


def _mspo_cert_no(rng: np.random.Generator, n: int) -> pl.Series:
    number = pl.Series(rng.integers(1, 1000, n)).cast(pl.String)
    return "MSPO-" + number + "/" + pl.Series(rng.integers(19, 26, n)).cast(pl.String)


def _gm_register(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Group-manager plots: a group manager -> mostly its own state -> a zone covering it."""
    managers = ref.GROUP_MANAGERS
    manager = _weighted(rng, rng.lognormal(0, 1, len(managers)), n)
    state = np.array([m[3] for m in managers])[manager]
    elsewhere = rng.random(n) < 0.1
    palm = [s for s, w in _STATE_WEIGHTS.items() if w >= 1]
    state = np.where(elsewhere, np.asarray(palm)[rng.integers(0, len(palm), n)], state)
    zone = np.zeros(n, dtype=np.int64)
    for state_id, _ in ref.STATES:
        zones = [z for z, s in ref.ZONE_STATES if s == state_id]
        mask = state == state_id
        zone[mask] = np.asarray(zones)[rng.integers(0, len(zones), int(mask.sum()))]
    return {
        "entity_name": _pick([m[2] for m in managers], manager),
        **_state_columns("gm_smallholders", rng, state, mukims=True),
        **_zone_columns(rng, zone),
        "spoc_code": pl.Series([None] * n, dtype=pl.String),
        "cert_no": _mspo_cert_no(rng, n),
        "track_id": "GMPC" + pl.Series(_unique_numbers(rng, n, 6, -1)).cast(pl.String).str.zfill(6),
        "gm_code": _pick([m[1] for m in managers], manager),
    }


def _osh_register(rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Organised smallholders: a scheme (FELDA LOK HENG BARAT...) -> its state and district."""
    n_schemes = max(20, n // 150)
    organisations = list(_OSH_ORGANISATIONS)
    org = _weighted(rng, [50, 20, 15, 4, 4, 4, 3][: len(organisations)], n_schemes)
    palm = [s for s, w in _STATE_WEIGHTS.items() if w >= 1]
    scheme_state = np.asarray(palm)[_weighted(rng, [_STATE_WEIGHTS[s] for s in palm], n_schemes)]
    home = np.array([_OSH_ORGANISATIONS[o] or 0 for o in organisations])[org]
    scheme_state = np.where(home > 0, home, scheme_state)
    place = rng.integers(0, len(_PLACES), n_schemes)
    suffix = rng.integers(0, len(_PLACE_SUFFIXES), n_schemes)
    scheme_names = [
        f"{organisations[o]} {_PLACES[p]}{_PLACE_SUFFIXES[s]}"
        for o, p, s in zip(org, place, suffix, strict=True)
    ]
    scheme_codes = "ORS" + pl.Series(_unique_numbers(rng, n_schemes, 5, 15721)).cast(
        pl.String
    ).str.zfill(5)
    scheme_certs = "MYMS" + pl.Series(_unique_numbers(rng, n_schemes, 8, 12195673)).cast(
        pl.String
    ).str.zfill(8)
    scheme = _weighted(rng, rng.lognormal(0, 1, n_schemes), n)
    state = scheme_state[scheme]
    return {
        "entity_code": scheme_codes.gather(scheme),
        "entity_name": _pick(scheme_names, scheme),
        **_state_columns("osh_smallholders", rng, state, mukims=False),
        "cert_no": scheme_certs.gather(scheme),
        "track_id": "MTS" + pl.Series(_unique_numbers(rng, n, 7, 14)).cast(pl.String).str.zfill(7),
    }


_REGISTERS: Final[Mapping[str, Callable[[np.random.Generator, int], dict[str, Any]]]] = (
    MappingProxyType(
        {
            "spoc_smallholders": _spoc_register,
            "osh_smallholders": _osh_register,
            "gm_smallholders": _gm_register,
        }
    )
)

_DYNAMIC: Final = frozenset({"cert_status", "updated_at", "record_status", "deleted"})
"""Fields whose value depends on the date served; the others are fixed at the plot's birth."""
_TIMELINE: Final = (
    "_birth", "_remove", "_change", "_delete", "_status0", "_status1", "_updated0",
    "_change_at", "_delete_at", "_record_status0", "_deleted0",
)  # fmt: skip


def _gps_exprs(decimals: int) -> tuple[pl.Expr, pl.Expr]:
    """Latitude and longitude strings, with the GPS quirk each plot drew."""
    col, lit = pl.col, pl.lit
    lat = _decimal(col("_lat") // 10 ** (6 - decimals), decimals)
    long = _decimal(col("_long") // 10 ** (6 - decimals), decimals)
    zero = lit("0." + "0" * decimals)
    kind = col("_gps_kind")

    def quirky(own: pl.Expr, other: pl.Expr, lost_point: pl.Expr) -> pl.Expr:
        return (
            pl.when(kind == 0).then(own)
            .when(kind == 1).then(lit(None, dtype=pl.String))
            .when(kind == 2).then(zero)
            .when(kind == 3).then(other)
            .when(kind == 4).then(lost_point)
            .otherwise(lit("N/A"))
        )  # fmt: skip

    return quirky(lat, long, lat.str.replace(".", "", literal=True)), quirky(long, lat, long)


def _area(e4: pl.Expr, comma: pl.Expr) -> pl.Expr:
    with_comma = pl.concat_str(
        (e4 // 10_000).cast(pl.String),
        pl.lit(","),
        (e4 % 10_000 // 100).cast(pl.String).str.zfill(2),
    )
    return pl.when(comma).then(with_comma).otherwise(_decimal(e4, 4))


def _with_sample(frame: pl.DataFrame, sample: Mapping[str, Any]) -> pl.DataFrame:
    """The docs' sample record in place of the plot with its id, frozen at its documented state."""
    key = pl.col("entity_smallholder_id") == sample["entity_smallholder_id"]
    values: dict[str, Any] = {
        **{f: v for f, v in sample.items() if f not in _DYNAMIC},
        "_status0": sample["cert_status"],
        "_updated0": _ms(sample["updated_at"]),
        "_record_status0": sample.get("record_status", "NO CHANGE"),
        "_deleted0": sample.get("deleted", False),
        **{f: NEVER for f in ("_remove", "_change", "_delete")},
    }
    return frame.with_columns(
        pl.when(key).then(pl.lit(v, dtype=frame.schema[f])).otherwise(pl.col(f)).alias(f)
        for f, v in values.items()
    )


def build_timeline(name: str, seed: int, scale: float) -> pl.DataFrame:
    """Every plot register ``name`` ever holds, with its fixed fields and its event days."""
    endpoint = ENDPOINTS_BY_NAME[name]
    rng = _rng(seed, sorted(FULL_SCALE_ROWS).index(name))
    ids, birth = _plot_ids(name, rng, scale)
    columns = {**_certificate_columns(name, rng, ids, birth), **_REGISTERS[name](rng, ids.size)}
    raw = pl.DataFrame(columns)
    lat, long = _gps_exprs(_GPS_DECIMALS[name])
    frame = raw.with_columns(
        pl.col("name").gather(pl.col("_owner_of")),
        _area(pl.col("_planted"), pl.col("_comma")).alias("planted_area"),
        _decimal(pl.col("_certified"), 4).alias("certified_area"),
        lat.alias("gps_coordinate_lat"),
        long.alias("gps_coordinate_long"),
        pl.concat_str(lat, pl.lit(", "), long).alias("geolocation"),
        _timestamp(pl.col("_created")).alias("created_at"),
    )
    if "deleted" not in endpoint.fields:
        frame = frame.with_columns(pl.lit(NEVER, dtype=pl.Int32).alias("_delete"))
    static = [f for f in endpoint.fields if f not in _DYNAMIC]
    frame = frame.select(*static, *_TIMELINE).sort("entity_smallholder_id")
    sample = SAMPLE_RECORDS.get(name)
    return frame if sample is None else _with_sample(frame, sample)


def snapshot_of(endpoint: Endpoint, timeline: pl.DataFrame, date: dt.date) -> pl.DataFrame:
    """The register's records as served on ``date``, in the catalogue's field order."""
    t = day_index(date)
    col = pl.col
    changed = (col("_change") <= t) & (col("_change") < col("_delete"))
    deleted_now = col("_delete") <= t
    updated = (
        pl.when(deleted_now).then(col("_delete_at"))
        .when(changed).then(col("_change_at"))
        .otherwise(col("_updated0"))
    )  # fmt: skip
    return (
        timeline.lazy()
        .filter((col("_birth") <= t) & (col("_remove") > t))
        .with_columns(
            pl.when(changed).then(col("_status1")).otherwise(col("_status0")).alias("cert_status"),
            _timestamp(updated).alias("updated_at"),
            pl.when(changed | deleted_now)
            .then(pl.lit("UPDATED"))
            .otherwise(col("_record_status0"))
            .alias("record_status"),
            (col("_deleted0") | deleted_now).alias("deleted"),
        )
        .select(endpoint.fields)
        .collect()
    )


def reference_frame(endpoint: Endpoint) -> pl.DataFrame:
    """A reference table, with the catalogue's field names."""
    if endpoint.name not in ref.REFERENCE_ROWS:
        raise NotEmulatedError(endpoint)
    rows = ref.REFERENCE_ROWS[endpoint.name]
    return pl.DataFrame(rows, schema=list(endpoint.fields), orient="row")


class NotEmulatedError(LookupError):
    """A catalogue endpoint the emulator has no profile for (no rows, no register)."""

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(
            f"the emulator has no records for endpoint {endpoint.name!r} (/{endpoint.path}): "
            "give it its rows in mspo_pipeline/emulator/references.py (REFERENCE_ROWS)"
        )


_PAGE_SIZE: Final = MappingProxyType(
    {"spoc_smallholders": "10", "gm_smallholders": "10", "osh_smallholders": 10}
)
"""``page_size`` sits beside the records: a string in SPOC-style lists, a number in OSH."""
_RECORDS = "\x00records\x00"


def envelope(endpoint: Endpoint, records_at: Sequence[str] | None = None) -> tuple[bytes, bytes]:
    """The JSON before and after the records array, with the records at ``records_at``."""
    path = tuple(records_at or endpoint.records_at)
    body: dict[str, Any] = {}
    parent = body
    for key in path[:-1]:
        parent = parent.setdefault(key, {})
    if endpoint.name in _PAGE_SIZE and len(path) > 1:
        parent["page_size"] = _PAGE_SIZE[endpoint.name]
    parent[path[-1]] = _RECORDS
    head, tail = json.dumps(body, separators=(",", ":")).split(json.dumps(_RECORDS))
    return head.encode(), tail.encode()


def encode(
    endpoint: Endpoint, frame: pl.DataFrame, records_at: Sequence[str] | None = None
) -> bytes:
    """The response body: compact JSON, like the real API, records in ``frame`` order."""
    head, tail = envelope(endpoint, records_at)
    buffer = io.BytesIO()
    buffer.write(head)
    if frame.height:
        frame.write_json(buffer)
    else:
        buffer.write(b"[]")
    buffer.write(tail)
    return buffer.getvalue()


class Dataset:
    """Everything the emulator serves for one (seed, scale): timelines built once, lazily."""

    def __init__(self, seed: int, scale: float) -> None:
        if scale <= 0:
            raise ValueError(f"the emulator's scale must be positive, got {scale}")
        self.seed = seed
        self.scale = scale
        self._timelines: dict[str, pl.DataFrame] = {}
        self._lock = threading.Lock()

    def timeline(self, name: str) -> pl.DataFrame:
        with self._lock:
            if name not in self._timelines:
                self._timelines[name] = build_timeline(name, self.seed, self.scale)
            return self._timelines[name]

    def frame(self, name: str, date: dt.date) -> pl.DataFrame:
        """The records endpoint ``name`` serves on ``date``."""
        endpoint = ENDPOINTS_BY_NAME[name]
        if endpoint.kind is Kind.REFERENCE:
            return reference_frame(endpoint)
        return snapshot_of(endpoint, self.timeline(name), date)


@functools.lru_cache(maxsize=2)
def dataset(seed: int, scale: float) -> Dataset:
    """The shared ``Dataset`` for (seed, scale), so servers and ground truth build it once."""
    return Dataset(seed, scale)


@dataclass(frozen=True, slots=True)
class RegisterChanges:
    """What changed in one smallholder register between two snapshots."""

    new: frozenset[int]
    """Ids served on the later date and not on the earlier one."""
    removed: frozenset[int]
    """Ids no longer served, or served with ``deleted`` newly true."""
    changed: Mapping[int, frozenset[str]]
    """Ids served on both dates (and not newly deleted), with the fields whose values differ."""


@dataclass(frozen=True, slots=True)
class ChangeSet:
    date_a: dt.date
    date_b: dt.date
    registers: Mapping[str, RegisterChanges]

    def __getitem__(self, name: str) -> RegisterChanges:
        return self.registers[name]


def register_changes(endpoint: Endpoint, a: pl.DataFrame, b: pl.DataFrame) -> RegisterChanges:
    """Compare two snapshots of one register by primary key, field by field."""
    key = "entity_smallholder_id"
    ids_a, ids_b = set(a[key].to_list()), set(b[key].to_list())
    both = a.join(b, on=key, how="inner", suffix="\x00b")
    newly_deleted: set[int] = set()
    if "deleted" in endpoint.fields:
        gone = both.filter(~pl.col("deleted") & pl.col("deleted\x00b"))
        newly_deleted = set(gone[key].to_list())
    differs = [
        pl.when(pl.col(f).ne_missing(pl.col(f"{f}\x00b"))).then(pl.lit(f))
        for f in endpoint.fields
        if f != key
    ]
    diffs = (
        both.filter(~pl.col(key).is_in(list(newly_deleted)))
        .select(key, pl.concat_list(differs).list.drop_nulls().alias("fields"))
        .filter(pl.col("fields").list.len() > 0)
    )
    return RegisterChanges(
        new=frozenset(ids_b - ids_a),
        removed=frozenset((ids_a - ids_b) | newly_deleted),
        changed=MappingProxyType({row[0]: frozenset(row[1]) for row in diffs.iter_rows()}),
    )


def changes_between(seed: int, scale: float, date_a: dt.date, date_b: dt.date) -> ChangeSet:
    """Ground truth for change detection: what each smallholder register's bodies differ by."""
    data = dataset(seed, scale)
    registers = {
        name: register_changes(
            ENDPOINTS_BY_NAME[name], data.frame(name, date_a), data.frame(name, date_b)
        )
        for name in FULL_SCALE_ROWS
    }
    return ChangeSet(date_a=date_a, date_b=date_b, registers=MappingProxyType(registers))
