"""The MSPO endpoint catalogue: every endpoint the pipeline captures, as data.

Factories turn each row into a raw asset, a typed asset, checks and a schema; the emulator serves
each row; the IO manager derives storage paths from it. Adding an endpoint is adding one row here
(and its tidy schema in ``schemas.py``).

Field names are the API's own (camelCase for the reference tables, snake_case for the smallholder
lists). Where the docs in ``shared/seeds`` show a sample record, ``fields`` follows it exactly;
where they only name the endpoint (countries, audit scopes/types, entity types, group managers,
districts), the fields are our best reading of the API's naming habits and are marked
``documented=False`` so nobody mistakes them for a documented contract. Fields the API sends that
are not listed here are still captured (the raw layer keeps every field) and reported as drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

DEFAULT_BASE_URL = "https://api.mspots.org.my/api"


class Kind(StrEnum):
    """What an endpoint publishes: a small reference table or a smallholder register."""

    REFERENCE = "reference"
    SMALLHOLDERS = "smallholders"


_SMALLHOLDER_FIELDS = (
    "entity_smallholder_id",
    "entity_name",
    "mpob_no",
    "planted_area",
    "certified_area",
    "gps_coordinate_lat",
    "gps_coordinate_long",
    "geolocation",
    "name",
    "stateId",
    "state",
    "daerahId",
    "daerah",
    "mukimId",
    "mukim",
    "lot_no",
    "cert_status",
    "zoneId",
    "zone",
    "cert_no",
    "spoc_code",
    "created_at",
    "updated_at",
    "track_id",
    "record_status",
    "deleted",
)
"""The SPOC sample record of ``001_4588b9e25b4b0202.txt``, in the order the API sends it."""

_OSH_FIELDS = (
    "entity_smallholder_id",
    "entity_code",
    "entity_name",
    "mpob_no",
    "planted_area",
    "certified_area",
    "gps_coordinate_lat",
    "gps_coordinate_long",
    "name",
    "stateId",
    "state",
    "daerahId",
    "daerah",
    "lot_no",
    "cert_status",
    "cert_no",
    "created_at",
    "updated_at",
    "track_id",
)
"""The OSH sample record of ``002_7c3cf5683692fa34.txt`` (no zone, mukim, SPOC code, deleted)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One MSPO endpoint and everything the pipeline needs to know to capture it.

    ``name`` is the table's one name everywhere: asset keys (``raw/<name>``, ``typed/<name>``),
    non-raw storage paths (``<layer>/mspo/<name>/YYYYMMDD/<name>.parquet``) and the docs.
    """

    name: str
    path: str
    """URL path under the API base, without a leading slash (``references/states``)."""
    kind: Kind
    records_at: tuple[str, ...]
    """Keys leading from the top of the JSON body to the records array."""
    primary_key: tuple[str, ...]
    """Raw field names that identify one record."""
    fields: tuple[str, ...]
    """Raw field names the API sends, in its order."""
    expected_rows: int
    """Order of magnitude of the record count, from the docs."""
    raw_dir: str
    """Folder of the raw snapshots under the data root (the docs' "GCS Storage" layout)."""
    raw_file: str
    """File name of one raw snapshot inside ``raw_dir/YYYYMMDD/``."""
    description: str
    trailing_question_mark: bool = False
    """The server answers 404 unless the request line ends in a literal ``?``."""
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Query parameters the docs' examples send; the API accepts and ignores them."""
    documented: bool = True
    """False when the docs name the endpoint but show no sample record."""

    @property
    def records_path(self) -> str:
        """``data.results``-style spelling of ``records_at``, for messages and docs."""
        return ".".join(self.records_at)

    def raw_key(self, partition_folder: str) -> str:
        """Object key of one raw snapshot, relative to the data root (``YYYYMMDD`` folder)."""
        return f"{self.raw_dir}/{partition_folder}/{self.raw_file}"


_PAGINATION = MappingProxyType({"page": "1", "pageSize": "10"})


def _reference(
    name: str,
    path: str,
    primary_key: tuple[str, ...],
    fields: tuple[str, ...],
    expected_rows: int,
    description: str,
    *,
    documented: bool = True,
) -> Endpoint:
    """A reference table: records under ``data``; ``spoc/`` ones need the trailing ``?``."""
    leaf = path.rsplit("/", 1)[-1]
    return Endpoint(
        name=name,
        path=path,
        kind=Kind.REFERENCE,
        records_at=("data",),
        primary_key=primary_key,
        fields=fields,
        expected_rows=expected_rows,
        raw_dir=f"raw/mspo/api/{path}",
        raw_file=f"{leaf}.parquet",
        description=description,
        trailing_question_mark=path.startswith("spoc/"),
        documented=documented,
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    _reference(
        "states",
        "references/states",
        ("stateId",),
        ("stateId", "state"),
        16,
        "Malaysian states.",
    ),
    _reference(
        "countries",
        "references/countries",
        ("countryId",),
        ("countryId", "countryCode", "country"),
        200,
        "Country codes.",
        documented=False,
    ),
    _reference(
        "cb",
        "references/cb",
        ("cbId",),
        ("cbId", "cbCode", "cbName"),
        30,
        "Certification bodies accredited to audit MSPO.",
    ),
    _reference(
        "audit_scopes",
        "references/audit-scopes",
        ("auditScopeId",),
        ("auditScopeId", "auditScope"),
        10,
        "Audit scope types.",
        documented=False,
    ),
    _reference(
        "audit_types",
        "references/audit-types",
        ("auditTypeId",),
        ("auditTypeId", "auditType"),
        5,
        "Audit types.",
        documented=False,
    ),
    _reference(
        "entity_types",
        "references/entity-types",
        ("entityTypeId",),
        ("entityTypeId", "entityTypeCode", "entityType"),
        10,
        "Entity type codes.",
        documented=False,
    ),
    _reference(
        "groupmanagers",
        "references/groupmanagers",
        ("groupManagerId",),
        ("groupManagerId", "gmCode", "groupManagerName", "stateId"),
        50,
        "Group manager organisations.",
        documented=False,
    ),
    _reference(
        "zones",
        "spoc/zones",
        ("zoneId",),
        ("zoneId", "zone"),
        11,
        "MSPO zones.",
    ),
    _reference(
        "zone_state",
        "spoc/zone-state",
        ("zoneId", "stateId"),
        ("zoneId", "stateId", "state"),
        16,
        "Which states each MSPO zone covers (a state split between zones appears once per zone).",
    ),
    _reference(
        "spocs",
        "spoc/spocs",
        ("spocId",),
        ("spocId", "zoneId", "spocCode"),
        162,
        "SPOC (sustainable palm oil cluster) codes and their zones.",
    ),
    _reference(
        "daerah",
        "spoc/daerah",
        ("daerahId",),
        ("daerahId", "daerah", "stateId"),
        150,
        "Districts (daerah) by state.",
        documented=False,
    ),
    Endpoint(
        name="spoc_smallholders",
        path="spoc/get-spoc-list-public",
        kind=Kind.SMALLHOLDERS,
        records_at=("data", "results"),
        primary_key=("entity_smallholder_id",),
        fields=_SMALLHOLDER_FIELDS,
        expected_rows=306_000,
        raw_dir="raw/mspo/api/smallholders/spoc/list-public",
        raw_file="list-public.parquet",
        description="Independent smallholder plots certified through SPOC clusters.",
        params=_PAGINATION,
    ),
    Endpoint(
        name="osh_smallholders",
        path="osh/all-smallholder",
        kind=Kind.SMALLHOLDERS,
        records_at=("data", "data"),
        primary_key=("entity_smallholder_id",),
        fields=_OSH_FIELDS,
        expected_rows=47_500,
        raw_dir="raw/mspo/api/smallholders/osh/all-smallholder",
        raw_file="all-smallholder.parquet",
        description="Organised smallholder plots managed by FELDA, FELCRA, RISDA and the like.",
        params=_PAGINATION,
    ),
    Endpoint(
        name="gm_smallholders",
        path="groupmanager/list-public",
        kind=Kind.SMALLHOLDERS,
        records_at=("data", "results"),
        primary_key=("entity_smallholder_id",),
        fields=(*_SMALLHOLDER_FIELDS, "gm_code"),
        expected_rows=2_300,
        raw_dir="raw/mspo/api/smallholders/groupmanager/list-public",
        raw_file="list-public.parquet",
        description="Smallholder plots certified through private group managers.",
        params=_PAGINATION,
        documented=False,
    ),
)

ENDPOINTS_BY_NAME: Mapping[str, Endpoint] = MappingProxyType({e.name: e for e in ENDPOINTS})
ENDPOINTS_BY_PATH: Mapping[str, Endpoint] = MappingProxyType({e.path: e for e in ENDPOINTS})


def endpoint(name: str) -> Endpoint:
    """The catalogue row called ``name``, with the known names in the error if there is none."""
    try:
        return ENDPOINTS_BY_NAME[name]
    except KeyError:
        known = ", ".join(sorted(ENDPOINTS_BY_NAME))
        raise KeyError(f"no MSPO endpoint named {name!r}; the catalogue has: {known}") from None
