"""The MSPO endpoint catalogue: every endpoint the pipeline captures, as data.

Factories turn each row into a raw asset, a typed asset, checks and a schema; the emulator serves
each row; the IO manager derives storage paths from it. Adding an endpoint is adding one row here
(and its tidy schema in ``schemas.py``).

Field names are the API's own (camelCase for the reference tables, snake_case for the smallholder
lists). Where the API's documentation shows a sample record, ``fields`` follows it exactly;
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


_SPOC_SAMPLE: Mapping[str, object] = MappingProxyType(
    {
        "entity_smallholder_id": 73042,
        "entity_name": "JELI/ GUA MUSANG/ KRAI/ MACHANG",
        "mpob_no": "832452001098",
        "planted_area": "2.4300",
        "certified_area": "2.4300",
        "gps_coordinate_lat": "5.551060",
        "gps_coordinate_long": "101.920321",
        "geolocation": "5.551060, 101.920321",
        "name": "ROSNANI BINTI IBRAHIM",
        "stateId": 3,
        "state": "Kelantan",
        "daerahId": None,
        "daerah": None,
        "mukimId": None,
        "mukim": None,
        "lot_no": "14165",
        "cert_status": "DELAYED",
        "zoneId": 11,
        "zone": "Zon Timur 2",
        "cert_no": "MSPO-492/24",
        "spoc_code": "D1",
        "created_at": "2025-06-03T04:46:41.581Z",
        "updated_at": "2024-07-24T01:17:06.101Z",
        "track_id": "OPMC205946",
        "record_status": "NO CHANGE",
        "deleted": False,
    }
)
"""The SPOC sample record of ``001_4588b9e25b4b0202.txt``, verbatim: zone id 11 named "Zon Timur 2"
(zone 8's name) and created after it was updated, as real data is."""

_OSH_SAMPLE: Mapping[str, object] = MappingProxyType(
    {
        "entity_smallholder_id": 474748,
        "entity_code": "ORS15721",
        "entity_name": "FELDA LOK HENG BARAT",
        "mpob_no": None,
        "planted_area": "3.9520",
        "certified_area": "3.9520",
        "gps_coordinate_lat": "1.70941",
        "gps_coordinate_long": "104.08802",
        "name": "A.LATIF BIN BENU",
        "stateId": 1,
        "state": "Johor",
        "daerahId": 4,
        "daerah": "KOTA TINGGI",
        "lot_no": "5722",
        "cert_status": "EXPIRED",
        "cert_no": "MYMS12195673",
        "created_at": "2025-10-29T03:15:10.612Z",
        "updated_at": "2024-07-24T01:17:06.101Z",
        "track_id": "MTS0000014",
    }
)
"""The OSH sample record of ``002_7c3cf5683692fa34.txt``, verbatim (no zone, mukim, SPOC code or
delete flag; ``mpob_no`` null, as the docs say it often is)."""


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
    sample: Mapping[str, object] | None = None
    """The docs' own sample record, verbatim, where they show one."""

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
        20,  # the docs' summary says 16 (one per state); split states appear once per zone
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
        fields=tuple(_SPOC_SAMPLE),
        expected_rows=306_000,
        raw_dir="raw/mspo/api/smallholders/spoc/list-public",
        raw_file="list-public.parquet",
        description="Independent smallholder plots certified through SPOC clusters.",
        params=_PAGINATION,
        sample=_SPOC_SAMPLE,
    ),
    Endpoint(
        name="osh_smallholders",
        path="osh/all-smallholder",
        kind=Kind.SMALLHOLDERS,
        records_at=("data", "data"),
        primary_key=("entity_smallholder_id",),
        fields=tuple(_OSH_SAMPLE),
        expected_rows=47_500,
        raw_dir="raw/mspo/api/smallholders/osh/all-smallholder",
        raw_file="all-smallholder.parquet",
        description="Organised smallholder plots managed by FELDA, FELCRA, RISDA and the like.",
        params=_PAGINATION,
        sample=_OSH_SAMPLE,
    ),
    Endpoint(
        name="gm_smallholders",
        path="groupmanager/list-public",
        kind=Kind.SMALLHOLDERS,
        records_at=("data", "results"),
        primary_key=("entity_smallholder_id",),
        fields=(*_SPOC_SAMPLE, "gm_code"),
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
