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
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from mspo_pipeline.lib.catalog import Endpoint, Kind, endpoint
from mspo_pipeline.lib.tables import CAPTURES, PLOT_HISTORY, VERSION_COLUMNS

if TYPE_CHECKING:
    import pandera.polars as pa

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
class Rule:
    """A hard rule on one column: its name, as quarantine reasons give it, and the pandera
    built-in check that tests it (``Check.<check>(*args)``).

    Declared as data so that reading a schema does not import pandera: the ledger, the warehouse
    and the CLI read the declarations, and only validation needs the checks.
    """

    name: str
    check: Literal["in_range", "ge", "isin", "str_matches"]
    args: tuple[Any, ...]

    def pandera_check(self) -> pa.Check:
        import pandera.polars as pa

        return getattr(pa.Check, self.check)(*self.args, error=self.name)


@dataclass(frozen=True, slots=True)
class Column:
    """One tidy column and the raw field it comes from."""

    name: str
    dtype: pl.DataType
    description: str
    raw: str
    """The API's field name."""
    nullable: bool = True
    rules: tuple[Rule, ...] = ()
    """Hard rules: a row that breaks one is quarantined."""
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


def _in_range(name: str, low: int, high: int) -> Rule:
    return Rule(f"{name} not in {low}..{high}", "in_range", (low, high))


def _positive(name: str) -> Rule:
    return Rule(f"{name} < 1", "ge", (1,))


def _id_rules(name: str) -> tuple[Rule, ...]:
    """Ids with a documented reference range get it; every other id must be positive."""
    if name == "state_id":
        return (_in_range(name, *STATE_IDS),)
    if name == "zone_id":
        return (_in_range(name, *ZONE_IDS),)
    return (_positive(name),)


def _id(raw: str, description: str, *, nullable: bool = True) -> Column:
    name = snake_case(raw)
    return Column(name, pl.Int32(), description, raw, nullable, _id_rules(name))


def _text(raw: str, description: str, *, nullable: bool = True) -> Column:
    return Column(snake_case(raw), pl.String(), description, raw, nullable)


def _area(raw: str, description: str) -> Column:
    return Column(raw, pl.Float64(), description, raw, rules=(Rule(f"{raw} < 0", "ge", (0,)),))


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
                rules=(_positive("entity_smallholder_id"),),
            ),
            _text("entity_code", 'Entity code (e.g. "ORS15721").'),
            _text("entity_name", "Cluster/entity name (often a district list)."),
            Column(
                "mpob_no",
                pl.String(),
                "MPOB registration number (12 digits).",
                "mpob_no",
                rules=(Rule("mpob_no is not 12 digits", "str_matches", (r"^\d{12}$",)),),
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
                rules=(
                    Rule(
                        f"cert_status not in {{{', '.join(CERT_STATUSES)}}}",
                        "isin",
                        (CERT_STATUSES,),
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
    import pandera.polars as pa

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
    import pandera.polars as pa

    schema = table_schema(table)
    single_key = len(schema.primary_key) == 1
    columns = {
        c.name: pa.Column(
            c.dtype,
            [rule.pandera_check() for rule in c.rules],
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
            tuple(rule.name for rule in c.rules),
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


# --- curated tables ------------------------------------------------------------------------------

EUDR_POINT_MAX_HA = 4.0
"""EUDR: a plot of at most this many hectares may be geolocated by a single point."""
EUDR_MIN_DECIMALS = 6
"""EUDR: coordinates need at least this many decimal places."""

REGISTER_TABLES: Mapping[str, str] = MappingProxyType(
    {"SPOC": "spoc_smallholders", "OSH": "osh_smallholders", "GM": "gm_smallholders"}
)
"""The validated table each scheme's plots come from (``curated.smallholders.scheme``)."""
CANONICAL_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "state": "Canonical state name of state_id, from this partition's references/states.",
        "daerah": "Canonical district name of daerah_id, from this partition's spoc/daerah.",
        "zone": "Canonical zone name of zone_id, from this partition's spoc/zones.",
    }
)
"""Names ``smallholders`` looks up by id in the references; the row's own is ``<name>_reported``."""
REFERENCE_FLAGS: Mapping[str, str] = MappingProxyType(
    {
        "zone_mismatch": "The row's zone name is not the reference name of its zone_id.",
        "state_mismatch": "The row's state name is not the reference name of its state_id.",
        "state_not_in_zone": "spoc/zone-state does not pair the row's state_id with its zone_id.",
        "unknown_spoc_code": "spoc/spocs does not list the row's spoc_code in its zone.",
        "unknown_daerah": "spoc/daerah does not list the row's daerah_id in its state.",
    }
)
"""Flags ``smallholders`` sets where a row disagrees with the reference tables."""


@dataclass(frozen=True, slots=True)
class CuratedColumn:
    """One column of a curated table, as it is written."""

    name: str
    dtype: pl.DataType
    description: str
    nullable: bool = True
    flag: bool = False
    """A boolean worth counting each day: the UI shows how many rows raise it."""


@dataclass(frozen=True, slots=True)
class RegisterColumn:
    """A tidy column of the smallholder registers, and the schemes whose register has it."""

    column: Column
    schemes: frozenset[str]


def register_columns() -> tuple[RegisterColumn, ...]:
    """The tidy columns of the three registers, aligned into one order.

    Each register's own order, merged: a column one register alone has follows the column it
    follows there. A column added to a register's tidy schema thereby reaches the curated tables
    without a second declaration.
    """
    registers = {scheme: table_schema(table) for scheme, table in REGISTER_TABLES.items()}
    order: list[str] = []
    first: dict[str, Column] = {}
    for schema in registers.values():
        previous = None
        for column in schema.columns:
            if column.name not in first:
                order.insert(order.index(previous) + 1 if previous else 0, column.name)
                first[column.name] = column
            previous = column.name
    return tuple(
        RegisterColumn(
            first[name],
            frozenset(s for s, schema in registers.items() if name in schema.column_names),
        )
        for name in order
    )


class CuratedSchemaError(ValueError):
    """A curated frame about to be written does not match its declaration."""


@dataclass(frozen=True, slots=True)
class CuratedTable:
    """A curated table's columns, declared once: they drive the UI's column docs, the flag counts
    and the check that every file written has exactly these columns and types."""

    name: str
    columns: tuple[CuratedColumn, ...]

    @property
    def schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def descriptions(self) -> dict[str, str]:
        return {c.name: c.description for c in self.columns}

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.flag)

    def column_docs(self) -> tuple[ColumnDoc, ...]:
        return tuple(
            ColumnDoc(c.name, _type_name(c.dtype), c.description, c.nullable, False, ())
            for c in self.columns
        )

    def conform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` in the declared column order, or ``CuratedSchemaError`` naming every column
        that is missing, undeclared, of another type, or null where it may not be.

        Nothing is cast, except a column of polars' ``Null`` type (an empty frame or an all-null
        literal from SQL) to its declared type, which loses nothing.
        """
        declared = self.schema
        problems = []
        if missing := [c for c in declared if c not in frame.columns]:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if undeclared := [c for c in frame.columns if c not in declared]:
            problems.append(f"undeclared column(s) {', '.join(undeclared)}")
        mistyped = [
            f"{name} is {dtype}, declared {declared[name]}"
            for name, dtype in frame.schema.items()
            if name in declared and dtype != declared[name] and dtype != pl.Null
        ]
        problems += mistyped
        if not problems:
            nulls = frame.select(c.name for c in self.columns if not c.nullable).null_count()
            problems += (
                [
                    f"{name} has {count} null(s) but may not be null"
                    for name, count in nulls.row(0, named=True).items()
                    if count
                ]
                if nulls.width
                else []
            )
        if problems:
            raise CuratedSchemaError(
                f"curated/{self.name} does not match its declaration: {'; '.join(problems)}. "
                "Change the code that builds it, or the table's declaration in "
                "mspo_pipeline/lib/schemas.py (CURATED)"
            )
        return frame.select(
            pl.col(name).cast(dtype) if frame.schema[name] == pl.Null else pl.col(name)
            for name, dtype in declared.items()
        )


def _from_register(column: Column, *, in_every_register: bool = True) -> CuratedColumn:
    """A register's tidy column as the curated tables carry it: null in the rows of a register
    without it (OSH has no zone)."""
    nullable = column.nullable or not in_every_register
    return CuratedColumn(column.name, column.dtype, column.tidy_description, nullable=nullable)


_PARTITION_DATE = CuratedColumn(
    "partition_date",
    pl.Date(),
    "The daily partition (Asia/Kuala_Lumpur) the row belongs to.",
    nullable=False,
)
_SNAPSHOT_DATE = CuratedColumn(
    "snapshot_date",
    pl.Date(),
    "The day whose register the API served for this scheme (raw footer).",
)
_LATE_CAPTURE = CuratedColumn(
    "late_capture",
    pl.Boolean(),
    "snapshot_date is after partition_date: the day's own register was never seen (a "
    "backfilled day holds a later register).",
)
_SCHEME = CuratedColumn(
    "scheme", pl.String(), "The register: SPOC, OSH or GM (group manager).", nullable=False
)
_PLOT_ID = _from_register(_SMALLHOLDER_COLUMNS["entity_smallholder_id"])


def _plot_columns() -> tuple[CuratedColumn, ...]:
    """A plot's columns in ``smallholders`` after its key: the registers' tidy columns, each
    canonical name beside the row's own (``_reported``), then what the pipeline derived."""
    columns: list[CuratedColumn] = []
    for register in register_columns():
        column = register.column
        if column.name == _PLOT_ID.name:
            continue
        if column.name in CANONICAL_NAMES:
            columns.append(CuratedColumn(column.name, pl.String(), CANONICAL_NAMES[column.name]))
            columns.append(
                CuratedColumn(
                    f"{column.name}_reported",
                    pl.String(),
                    f"The {column.name} name the row itself carries.",
                )
            )
        else:
            every = register.schemes == frozenset(REGISTER_TABLES)
            columns.append(_from_register(column, in_every_register=every))
    columns.append(
        CuratedColumn("gps_usable", pl.Boolean(), "None of the GPS flags is set.", nullable=False)
    )
    columns += [
        CuratedColumn(f.name, pl.Boolean(), f.description, nullable=False, flag=True)
        for f in SOFT_FLAGS
    ]
    columns += [
        CuratedColumn(name, pl.Boolean(), description, nullable=False, flag=True)
        for name, description in REFERENCE_FLAGS.items()
    ]
    return tuple(columns)


_PLOT_COLUMNS = _plot_columns()
_DAY = (_PARTITION_DATE, _SNAPSHOT_DATE, _LATE_CAPTURE)
_SMALLHOLDERS = (*_DAY, _SCHEME, _PLOT_ID, *_PLOT_COLUMNS)
_PLOT = {c.name: c for c in _PLOT_COLUMNS}
_VERSION_TYPES: Mapping[str, pl.DataType] = {
    "INTEGER": pl.Int32(),
    "DATE": pl.Date(),
    "BOOLEAN": pl.Boolean(),
}
_CELL_EXTENT = pl.Struct({side: pl.Float64() for side in ("xmin", "ymin", "xmax", "ymax")})


def _curated(name: str, *columns: CuratedColumn) -> CuratedTable:
    return CuratedTable(name, columns)


def _count(name: str, description: str) -> CuratedColumn:
    return CuratedColumn(name, pl.Int64(), description, nullable=False)


def _hectares(name: str, description: str) -> CuratedColumn:
    return CuratedColumn(name, pl.Float64(), description)


CURATED: Mapping[str, CuratedTable] = MappingProxyType(
    {
        t.name: t
        for t in (
            _curated(
                "geography",
                CuratedColumn(
                    "zone_id", pl.Int32(), "MSPO zone ID; null for a state no zone lists."
                ),
                CuratedColumn("zone", pl.String(), "Zone name, from spoc/zones."),
                CuratedColumn("state_id", pl.Int32(), "State ID; null for a zone with no state."),
                CuratedColumn(
                    "state",
                    pl.String(),
                    "State name, from references/states (spoc/zone-state's text for a state "
                    "references/states lacks).",
                ),
                CuratedColumn(
                    "spoc_codes",
                    pl.List(pl.String()),
                    "The zone's SPOC codes, from spoc/spocs, sorted (empty when none).",
                    nullable=False,
                ),
                CuratedColumn(
                    "districts",
                    pl.List(pl.Struct({"daerah_id": pl.Int32(), "daerah": pl.String()})),
                    "The state's districts as {daerah_id, daerah}, from spoc/daerah, by id "
                    "(empty when none).",
                    nullable=False,
                ),
            ),
            _curated("smallholders", *_SMALLHOLDERS),
            _curated(
                "certification_summary",
                *_DAY,
                *(_PLOT[name] for name in ("state_id", "state", "zone_id", "zone")),
                _SCHEME,
                _PLOT["cert_status"],
                _count("plots", "Plots in the group (deleted plots left out)."),
                _count(
                    "mpob_numbers",
                    "Distinct MPOB numbers in the group (do not add these up across groups).",
                ),
                _hectares("planted_ha", "Sum of planted_area of the group's plots."),
                _hectares("certified_ha", "Sum of certified_area of the group's plots."),
                _count("plots_gps_usable", "Plots of the group whose gps_usable is true."),
                CuratedColumn(
                    "gps_usable_share",
                    pl.Float64(),
                    "plots_gps_usable / plots (re-aggregate from the two counts, not this).",
                    nullable=False,
                ),
            ),
            _curated(
                "changes",
                *_DAY,
                CuratedColumn(
                    "compared_with",
                    pl.Date(),
                    "The partition this one was compared against (the newest stored before it).",
                    nullable=False,
                ),
                CuratedColumn(
                    "compared_snapshot_date",
                    pl.Date(),
                    "snapshot_date of the scheme in the partition compared with.",
                ),
                CuratedColumn(
                    "compared_late_capture",
                    pl.Boolean(),
                    "late_capture of the scheme in the partition compared with.",
                ),
                _SCHEME,
                _PLOT_ID,
                CuratedColumn(
                    "change_type",
                    pl.String(),
                    "new, removed (absent or newly deleted) or changed.",
                    nullable=False,
                ),
                CuratedColumn(
                    "column_name",
                    pl.String(),
                    "The column that changed (for new/removed: 'deleted' when by soft delete).",
                ),
                CuratedColumn("old_value", pl.String(), "The value before, as text."),
                CuratedColumn("new_value", pl.String(), "The value after, as text."),
            ),
            _curated(
                PLOT_HISTORY,
                _SCHEME,
                _PLOT_ID,
                *(
                    CuratedColumn(
                        c.name,
                        _VERSION_TYPES[c.sql_type],
                        c.description,
                        nullable=c.name not in ("version", "valid_from", "removed"),
                    )
                    for c in VERSION_COLUMNS
                ),
                *(replace(c, nullable=True) for c in _PLOT_COLUMNS),
            ),
            _curated(
                "plots_geo",
                *_SMALLHOLDERS,
                CuratedColumn(
                    "latitude_as_sent",
                    pl.String(),
                    "gps_coordinate_lat exactly as the API sent it (raw text; null when absent).",
                ),
                CuratedColumn(
                    "longitude_as_sent",
                    pl.String(),
                    "gps_coordinate_long exactly as the API sent it (raw text; null when absent).",
                ),
                CuratedColumn(
                    "gps_decimals",
                    pl.Int32(),
                    "Fewest decimal places of the two coordinates as sent (null when either is "
                    "not a plain decimal number, such as N/A).",
                ),
                CuratedColumn(
                    "gps_precision_ok",
                    pl.Boolean(),
                    f"Both coordinates were sent with at least {EUDR_MIN_DECIMALS} decimal "
                    "places (EUDR).",
                    nullable=False,
                    flag=True,
                ),
                CuratedColumn(
                    "point_sufficient",
                    pl.Boolean(),
                    f"certified_area is at most {EUDR_POINT_MAX_HA:g} ha: a single point "
                    "geolocates the plot under EUDR.",
                    nullable=False,
                    flag=True,
                ),
                CuratedColumn(
                    "polygon_required",
                    pl.Boolean(),
                    f"certified_area is above {EUDR_POINT_MAX_HA:g} ha, or unknown: EUDR needs "
                    "the plot's polygon, which the API does not have.",
                    nullable=False,
                    flag=True,
                ),
                CuratedColumn(
                    "eudr_point_ready",
                    pl.Boolean(),
                    "gps_usable, gps_precision_ok and point_sufficient: the point alone meets "
                    "EUDR's geolocation requirement.",
                    nullable=False,
                    flag=True,
                ),
                CuratedColumn(
                    "geometry",
                    pl.Binary(),
                    "The plot's point (WKB, WGS84 longitude/latitude) when gps_usable, else null.",
                ),
            ),
            _curated(
                "plots_hex",
                _PARTITION_DATE,
                CuratedColumn(
                    "h3_cell",
                    pl.String(),
                    "H3 cell (hexadecimal index) the plots' points fall in.",
                    nullable=False,
                ),
                CuratedColumn(
                    "h3_resolution",
                    pl.Int8(),
                    "H3 resolution of h3_cell (0 coarsest, 15 finest; 7 is about 5 km²).",
                    nullable=False,
                ),
                _count("plots", "Plots with a usable point in the cell (deleted plots left out)."),
                *(
                    _count(
                        f"plots_{status.lower()}", f"Of those, plots whose cert_status is {status}."
                    )
                    for status in CERT_STATUSES
                ),
                _hectares("planted_ha", "Sum of planted_area of the cell's plots."),
                _hectares("certified_ha", "Sum of certified_area of the cell's plots."),
                CuratedColumn("cell_lat", pl.Float64(), "Latitude of the cell's centre.", False),
                CuratedColumn("cell_long", pl.Float64(), "Longitude of the cell's centre.", False),
                CuratedColumn(
                    "geometry",
                    pl.Binary(),
                    "The cell's hexagon (WKB polygon, WGS84, counter-clockwise).",
                    nullable=False,
                ),
                CuratedColumn(
                    "bbox",
                    _CELL_EXTENT,
                    "The cell's extent (xmin, ymin, xmax, ymax): GeoParquet 1.1 covering column.",
                    nullable=False,
                ),
            ),
            _curated(
                CAPTURES,
                _PARTITION_DATE,
                CuratedColumn(
                    "endpoint",
                    pl.String(),
                    "The catalogue endpoint (`raw/<endpoint>`).",
                    nullable=False,
                ),
                CuratedColumn(
                    "endpoint_group",
                    pl.String(),
                    "`references` for the reference tables, else the register: `SPOC`, `OSH` or "
                    "`GM`.",
                    nullable=False,
                ),
                CuratedColumn(
                    "status",
                    pl.String(),
                    "`on_time` (the day's own register), `late` (a later register, from a "
                    "backfill) or `missing` (no raw file).",
                    nullable=False,
                ),
                CuratedColumn(
                    "snapshot_date",
                    pl.Date(),
                    "The Malaysian day whose register the file holds (from the API's `Date` "
                    "header).",
                ),
                CuratedColumn("captured_at", UTC_DATETIME, "When the API answered (UTC)."),
                CuratedColumn(
                    "lag_days",
                    pl.Int32(),
                    "`snapshot_date - partition_date`, in days (0: on time).",
                ),
                CuratedColumn("rows", pl.Int64(), "Records in the raw file (from its footer)."),
                CuratedColumn("response_bytes", pl.Int64(), "Bytes the API sent for the capture."),
                CuratedColumn(
                    "sha256", pl.String(), "SHA-256 of the stored raw Parquet file, hex."
                ),
                CuratedColumn("raw_file", pl.String(), "The raw file's path under the data root."),
            ),
        )
    }
)
"""Every curated table, by name: the tables ``lib/tables.py`` names, declared."""


def curated_table(name: str) -> CuratedTable:
    """The declaration of curated table ``name``, with the declared names in the error."""
    try:
        return CURATED[name]
    except KeyError:
        raise KeyError(
            f"no curated table {name!r} is declared; declared: {', '.join(sorted(CURATED))}"
        ) from None
