"""Tidy schemas: every typed table's columns, declared once.

One ``TableSchema`` per catalogue endpoint drives the cast (``casting.to_typed``), the hard rules
(``pandera_schema``), the soft flags (``SOFT_FLAGS``), schema drift (``drift.schema_drift``) and
the column docs the UI shows (``column_schema``). Descriptions come from the MSPO API's
documentation where it describes the field.

What a bad value costs, decided here:

- a value that cannot be cast to its column's type is a **hard** failure (the row is quarantined)
  for every column except the GPS pair: an id, key or timestamp that does not parse, or an area
  like ``"2,43"`` that would put wrong hectares into every sum;
- a GPS coordinate that does not parse (``"N/A"``) is **soft**: it becomes null, the row is
  flagged ``flag_gps_missing`` and ``cast_errors`` keeps the original text. A plot without a
  position is still a certified plot.

The pandera side is a ``DataFrameSchema`` generated from these declarations rather than a
hand-written ``DataFrameModel`` class per table: a class would repeat every column a second time,
and the point of this module is that a column is declared in one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from types import MappingProxyType
from typing import Literal

import pandera.polars as pa
import polars as pl

from mspo_pipeline.lib.catalog import Endpoint, Kind, endpoint

UTC_DATETIME = pl.Datetime(time_unit="us", time_zone="UTC")
CAST_ERRORS = "cast_errors"
REASONS = "reasons"
RULES = "rules"
CERT_STATUSES = ("ACTIVE", "DELAYED", "EXPIRED", "SUSPENDED")
STATE_IDS = (1, 16)
ZONE_IDS = (1, 11)
MALAYSIA_LAT = (0.8, 7.5)
MALAYSIA_LONG = (99.5, 119.5)
"""A bounding box around Peninsular Malaysia, Sabah, Sarawak and Labuan, with a little margin."""

Layer = Literal["typed", "validated", "quarantine"]


@dataclass(frozen=True, slots=True)
class Column:
    """One tidy column and the raw field it comes from."""

    name: str
    dtype: pl.DataType
    description: str
    raw: str
    """The API's field name."""
    nullable: bool = True
    checks: tuple[pa.Check, ...] = ()
    """Hard rules; each check's ``error`` is the rule's name in quarantine reasons."""
    soft_cast: bool = False
    """A failed cast only nulls the value (GPS); otherwise it quarantines the row."""

    @property
    def tidy_description(self) -> str:
        """The description under the tidy name, which says what the API calls the field when the
        name differs (the raw layer shows ``description`` under the API's own name)."""
        if self.raw == self.name:
            return self.description
        return f"{self.description} Renamed from `{self.raw}`."

    @property
    def raw_dtype(self) -> pl.DataType:
        """The polars type of the raw field when the API sends what the docs say.

        Integers arrive as JSON numbers, booleans as JSON booleans; everything else, areas, GPS
        and timestamps included, arrives as a JSON string.
        """
        if self.dtype.is_integer():
            return pl.Int64()
        if self.dtype == pl.Boolean:
            return pl.Boolean()
        return pl.String()


@dataclass(frozen=True, slots=True)
class TableSchema:
    """The tidy schema of one catalogue endpoint."""

    name: str
    columns: tuple[Column, ...]
    dropped_raw_fields: tuple[str, ...] = ()
    """Raw fields the schema knows but does not type (``geolocation`` repeats lat/long)."""
    endpoint: Endpoint = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", endpoint(self.name))

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def raw_fields(self) -> tuple[str, ...]:
        """Every raw field this schema knows, typed or deliberately dropped."""
        return (*(c.raw for c in self.columns), *self.dropped_raw_fields)

    @property
    def primary_key(self) -> tuple[str, ...]:
        """Tidy names of the catalogue's primary key."""
        by_raw = {c.raw: c.name for c in self.columns}
        return tuple(by_raw[raw] for raw in self.endpoint.primary_key)

    @property
    def has_flags(self) -> bool:
        return self.endpoint.kind is Kind.SMALLHOLDERS

    @property
    def hard_cast_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if not c.soft_cast)

    @property
    def raw_descriptions(self) -> dict[str, str]:
        """The docs' description of each field under the API's own name, for the raw layer, the
        fields left untyped included."""
        typed = {column.raw: column.description for column in self.columns}
        return typed | {raw: DROPPED_FIELDS[raw] for raw in self.dropped_raw_fields}

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(
            f"{self.name} has no column {name!r}; it has: {', '.join(self.column_names)}"
        )


def snake_case(raw: str) -> str:
    """``stateId`` -> ``state_id``, ``cbCode`` -> ``cb_code``; snake_case names pass unchanged."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", raw).lower()


def _in_range(name: str, low: int, high: int) -> pa.Check:
    return pa.Check.in_range(low, high, error=f"{name} not in {low}..{high}")


def _positive(name: str) -> pa.Check:
    return pa.Check.ge(1, error=f"{name} < 1")


def _id_checks(name: str) -> tuple[pa.Check, ...]:
    """Ids with a documented reference range get it; every other id must be positive."""
    if name == "state_id":
        return (_in_range(name, *STATE_IDS),)
    if name == "zone_id":
        return (_in_range(name, *ZONE_IDS),)
    return (_positive(name),)


def _id(raw: str, description: str, *, nullable: bool = True) -> Column:
    name = snake_case(raw)
    return Column(name, pl.Int32(), description, raw, nullable, _id_checks(name))


def _text(raw: str, description: str, *, nullable: bool = True) -> Column:
    return Column(snake_case(raw), pl.String(), description, raw, nullable)


def _area(raw: str, description: str) -> Column:
    return Column(raw, pl.Float64(), description, raw, checks=(pa.Check.ge(0, error=f"{raw} < 0"),))


def _gps(raw: str, description: str) -> Column:
    return Column(raw, pl.Float64(), description, raw, soft_cast=True)


def _timestamp(raw: str, description: str) -> Column:
    return Column(raw, UTC_DATETIME, description, raw)


_SMALLHOLDER_COLUMNS: Mapping[str, Column] = MappingProxyType(
    {
        c.name: c
        for c in (
            Column(
                "entity_smallholder_id",
                pl.Int64(),
                "Unique smallholder plot ID (primary key).",
                "entity_smallholder_id",
                nullable=False,
                checks=(_positive("entity_smallholder_id"),),
            ),
            _text("entity_code", 'Entity code (e.g. "ORS15721").'),
            _text("entity_name", "Cluster/entity name (often a district list)."),
            Column(
                "mpob_no",
                pl.String(),
                "MPOB registration number (12 digits).",
                "mpob_no",
                checks=(pa.Check.str_matches(r"^\d{12}$", error="mpob_no is not 12 digits"),),
            ),
            _text("name", "Smallholder name."),
            _area("planted_area", "Total planted area in hectares (cast from string)."),
            _area("certified_area", "MSPO certified area in hectares (cast from string)."),
            _gps("gps_coordinate_lat", "GPS latitude (cast from string; null when unusable)."),
            _gps("gps_coordinate_long", "GPS longitude (cast from string; null when unusable)."),
            _id("stateId", "Malaysian state ID (1-16).", nullable=False),
            _text("state", "Malaysian state name."),
            _id("daerahId", "District ID (nullable)."),
            _text("daerah", "District name (nullable)."),
            _id("mukimId", "Mukim ID (nullable)."),
            _text("mukim", "Mukim/subdistrict name (nullable)."),
            _text("lot_no", "Land lot number."),
            _id("zoneId", "MSPO zone ID (1-11).", nullable=False),
            _text("zone", "MSPO zone name as the record gives it."),
            _text("spoc_code", 'SPOC cluster code (e.g. "A1", "D1").'),
            _text("gm_code", "Group manager code."),
            _text("cert_no", "MSPO certificate number."),
            Column(
                "cert_status",
                pl.String(),
                "Certification status: ACTIVE, DELAYED, EXPIRED or SUSPENDED.",
                "cert_status",
                nullable=False,
                checks=(
                    pa.Check.isin(
                        CERT_STATUSES, error=f"cert_status not in {{{', '.join(CERT_STATUSES)}}}"
                    ),
                ),
            ),
            _text("track_id", 'Tracking ID (e.g. "OPMC205946").'),
            _text("record_status", 'Change status: "NO CHANGE" or "UPDATED".'),
            Column("deleted", pl.Boolean(), "Soft delete flag.", "deleted"),
            _timestamp("created_at", "Record creation time (UTC), parsed from ISO 8601."),
            _timestamp("updated_at", "Last update time (UTC), parsed from ISO 8601."),
        )
    }
)

_SPOC_ORDER = (
    "entity_smallholder_id",
    "entity_name",
    "mpob_no",
    "name",
    "planted_area",
    "certified_area",
    "gps_coordinate_lat",
    "gps_coordinate_long",
    "state_id",
    "state",
    "daerah_id",
    "daerah",
    "mukim_id",
    "mukim",
    "lot_no",
    "zone_id",
    "zone",
    "spoc_code",
    "cert_no",
    "cert_status",
    "track_id",
    "record_status",
    "deleted",
    "created_at",
    "updated_at",
)
"""The docs' "Tidy Parquet Schema" for SPOC, in its order."""

_AFTER_SPOC_CODE = _SPOC_ORDER.index("spoc_code") + 1
_GM_ORDER = (*_SPOC_ORDER[:_AFTER_SPOC_CODE], "gm_code", *_SPOC_ORDER[_AFTER_SPOC_CODE:])

_OSH_ORDER = (
    "entity_smallholder_id",
    "entity_code",
    "entity_name",
    "mpob_no",
    "name",
    "planted_area",
    "certified_area",
    "gps_coordinate_lat",
    "gps_coordinate_long",
    "state_id",
    "state",
    "daerah_id",
    "daerah",
    "lot_no",
    "cert_status",
    "cert_no",
    "track_id",
    "created_at",
    "updated_at",
)

_OSH_DESCRIPTIONS = {
    "entity_name": "Organisation/scheme name (FELDA, FELCRA, RISDA...).",
    "mpob_no": "MPOB registration number (12 digits; often null for OSH).",
}


DROPPED_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "geolocation": 'Latitude and longitude in one "lat, long" string. Kept in raw only: '
        "gps_coordinate_lat and gps_coordinate_long carry the same values, typed."
    }
)
"""Raw fields the tidy schema leaves out on purpose, with what each held."""


def _smallholders(
    name: str, order: tuple[str, ...], descriptions: Mapping[str, str]
) -> TableSchema:
    columns = tuple(
        replace(_SMALLHOLDER_COLUMNS[c], description=descriptions[c])
        if c in descriptions
        else _SMALLHOLDER_COLUMNS[c]
        for c in order
    )
    dropped = tuple(raw for raw in DROPPED_FIELDS if raw in endpoint(name).fields)
    return TableSchema(name, columns, dropped)


def _reference(name: str, *columns: Column) -> TableSchema:
    """Reference tables: the catalogue's key columns may not be null."""
    key = endpoint(name).primary_key
    return TableSchema(name, tuple(replace(c, nullable=c.raw not in key) for c in columns))


_STATE_ID = _id("stateId", "Malaysian state ID (1-16).")
_ZONE_ID = _id("zoneId", "MSPO zone ID (1-11).")

SCHEMAS: Mapping[str, TableSchema] = MappingProxyType(
    {
        s.name: s
        for s in (
            _reference("states", _STATE_ID, _text("state", "Malaysian state name.")),
            _reference(
                "countries",
                _id("countryId", "Country ID (undocumented field)."),
                _text("countryCode", "Country code (undocumented field)."),
                _text("country", "Country name (undocumented field)."),
            ),
            _reference(
                "cb",
                _id("cbId", "Certification body ID."),
                _text("cbCode", 'Certification body code (e.g. "CB001").'),
                _text("cbName", "Certification body name."),
            ),
            _reference(
                "audit_scopes",
                _id("auditScopeId", "Audit scope ID (undocumented field)."),
                _text("auditScope", "Audit scope (undocumented field)."),
            ),
            _reference(
                "audit_types",
                _id("auditTypeId", "Audit type ID (undocumented field)."),
                _text("auditType", "Audit type (undocumented field)."),
            ),
            _reference(
                "entity_types",
                _id("entityTypeId", "Entity type ID (undocumented field)."),
                _text("entityTypeCode", "Entity type code (undocumented field)."),
                _text("entityType", "Entity type (undocumented field)."),
            ),
            _reference(
                "groupmanagers",
                _id("groupManagerId", "Group manager ID (undocumented field)."),
                _text("gmCode", "Group manager code (undocumented field)."),
                _text("groupManagerName", "Group manager organisation (undocumented field)."),
                _STATE_ID,
            ),
            _reference("zones", _ZONE_ID, _text("zone", "MSPO zone name.")),
            _reference(
                "zone_state",
                _ZONE_ID,
                _STATE_ID,
                _text("state", "State name (a state split between zones appears once per zone)."),
            ),
            _reference(
                "spocs",
                _id("spocId", "SPOC ID."),
                _ZONE_ID,
                _text("spocCode", 'SPOC cluster code (e.g. "A1"); the letter follows the zone.'),
            ),
            _reference(
                "daerah",
                _id("daerahId", "District ID (undocumented field)."),
                _text("daerah", "District name (undocumented field)."),
                _STATE_ID,
            ),
            _smallholders("spoc_smallholders", _SPOC_ORDER, {}),
            _smallholders("osh_smallholders", _OSH_ORDER, _OSH_DESCRIPTIONS),
            _smallholders("gm_smallholders", _GM_ORDER, {}),
        )
    }
)


def table_schema(table: str) -> TableSchema:
    """The tidy schema of ``table``, with the known names in the error if there is none."""
    try:
        return SCHEMAS[table]
    except KeyError:
        raise KeyError(
            f"no tidy schema for table {table!r}; schemas exist for: {', '.join(sorted(SCHEMAS))}"
        ) from None


# --- soft flags ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SoftFlag:
    """A boolean column on validated smallholder rows: worth a look, not worth quarantining."""

    name: str
    description: str
    expr: pl.Expr
    """Never null: a comparison with a missing value is false."""


def _in_box(lat: pl.Expr, long: pl.Expr) -> pl.Expr:
    return lat.is_between(*MALAYSIA_LAT) & long.is_between(*MALAYSIA_LONG)


_LAT = pl.col("gps_coordinate_lat")
_LONG = pl.col("gps_coordinate_long")
_GPS_PRESENT = _LAT.is_not_null() & _LONG.is_not_null()

SOFT_FLAGS: tuple[SoftFlag, ...] = (
    SoftFlag(
        "flag_certified_above_planted",
        "certified_area > planted_area (both present).",
        (pl.col("certified_area") > pl.col("planted_area")).fill_null(False),
    ),
    SoftFlag(
        "flag_gps_missing",
        'Latitude or longitude is null (absent, or text that is not a number such as "N/A").',
        _GPS_PRESENT.not_(),
    ),
    SoftFlag(
        "flag_gps_zero",
        "Latitude and longitude are both 0.",
        ((_LAT == 0) & (_LONG == 0)).fill_null(False),
    ),
    SoftFlag(
        "flag_gps_outside_malaysia",
        f"GPS present but outside lat {MALAYSIA_LAT[0]}..{MALAYSIA_LAT[1]}, long "
        f"{MALAYSIA_LONG[0]}..{MALAYSIA_LONG[1]} (also true for zero and swapped pairs, "
        "and for a lost decimal point such as 5551060).",
        (_GPS_PRESENT & _in_box(_LAT, _LONG).not_()).fill_null(False),
    ),
    SoftFlag(
        "flag_gps_swapped",
        "GPS outside Malaysia as given, inside once latitude and longitude are swapped.",
        (_in_box(_LAT, _LONG).not_() & _in_box(_LONG, _LAT)).fill_null(False),
    ),
    SoftFlag(
        "flag_created_after_updated",
        "created_at is later than updated_at (both present).",
        (pl.col("created_at") > pl.col("updated_at")).fill_null(False),
    ),
)


# --- pandera -----------------------------------------------------------------------------------

HARD_CAST_RULE = "value could not be cast"


def hard_cast_pattern(schema: TableSchema) -> str:
    """Regex matching one hard entry of ``cast_errors`` (``planted_area="2,43"``).

    ``cast_errors`` escapes quotes and backslashes inside values, so ``name="`` only occurs where
    ``casting`` wrote an entry.
    """
    names = "|".join(re.escape(n) for n in schema.hard_cast_columns)
    return rf'(?:^|; )(?:{names})="(?:[^"\\]|\\.)*"'


def _no_hard_cast_failure(pattern: str) -> pa.Check:
    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col(data.key).str.contains(pattern).not_().fill_null(True))

    return pa.Check(check, error=HARD_CAST_RULE)


@cache
def pandera_schema(table: str) -> pa.DataFrameSchema:
    """The hard rules of ``table`` as a pandera polars schema, built from its declaration.

    Primary-key uniqueness reports every row of a duplicated key (pandera uses
    ``is_duplicated``), so no copy is kept arbitrarily. Unknown columns are allowed: the typed
    layer carries them on.
    """
    schema = table_schema(table)
    single_key = len(schema.primary_key) == 1
    columns = {
        c.name: pa.Column(
            c.dtype,
            list(c.checks),
            nullable=c.nullable,
            unique=single_key and c.name in schema.primary_key,
            description=c.tidy_description,
        )
        for c in schema.columns
    }
    columns[CAST_ERRORS] = pa.Column(
        pl.String, [_no_hard_cast_failure(hard_cast_pattern(schema))], nullable=True
    )
    return pa.DataFrameSchema(
        columns,
        name=table,
        strict=False,
        unique=None if single_key else list(schema.primary_key),
    )


# --- column docs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ColumnDoc:
    """One column as the UI shows it (the lead maps it to ``dagster/column_schema``)."""

    name: str
    type: str
    description: str
    nullable: bool
    unique: bool
    rules: tuple[str, ...]


def _type_name(dtype: pl.DataType) -> str:
    return "Datetime(us, UTC)" if dtype == UTC_DATETIME else str(dtype)


def column_schema(table: str, layer: Layer = "typed") -> tuple[ColumnDoc, ...]:
    """The declared columns of ``table`` in one layer (unknown carried-on columns excluded)."""
    schema = table_schema(table)
    unique = len(schema.primary_key) == 1
    docs = [
        ColumnDoc(
            c.name,
            _type_name(c.dtype),
            c.tidy_description,
            c.nullable,
            unique and c.name in schema.primary_key,
            tuple(str(check.error) for check in c.checks),
        )
        for c in schema.columns
    ]
    cast_errors = ColumnDoc(
        CAST_ERRORS,
        "String",
        'Values that could not be cast, as column="original text"; null when the row cast cleanly.',
        True,
        False,
        (),
    )
    if layer == "typed":
        docs.append(cast_errors)
    elif layer == "quarantine":
        docs.append(cast_errors)
        docs.append(
            ColumnDoc(
                REASONS,
                "String",
                "Every hard rule the row broke, with the value.",
                False,
                False,
                (),
            )
        )
        docs.append(
            ColumnDoc(
                RULES,
                "List(String)",
                "The names of the hard rules the row broke, without values, for counting "
                "(`SELECT rule, count(*) FROM quarantine_x, UNNEST(rules) AS r(rule) GROUP BY 1`).",
                False,
                False,
                (),
            )
        )
    elif schema.has_flags:
        docs.extend(
            ColumnDoc(f.name, "Boolean", f.description, False, False, ()) for f in SOFT_FLAGS
        )
    return tuple(docs)
