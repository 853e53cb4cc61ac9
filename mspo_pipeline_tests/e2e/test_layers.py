"""Typed, validated and quarantine layers and their checks, end to end on the emulator.

One module-scoped store holds two captured days of the whole graph (the emulator's quirks on,
as they are by default). Scenarios that need data the emulator does not serve (hard-rule
breakers, a shrunken capture) write a real raw Parquet file for a later partition, built from a
captured one, and materialise the layers above it; the previous day stays the row-count baseline.
"""

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from mspo_pipeline.defs.partitions import daily_partitions
from mspo_pipeline.defs.typed import SCHEMA_DRIFT_CHECK
from mspo_pipeline.defs.validated import (
    PRIMARY_KEY_CHECK,
    QUARANTINE_SHARE_CHECK,
    ROW_COUNT_CHECK,
    primary_key_check_result,
)
from mspo_pipeline.defs.warehouse import MANIFEST_KEY
from mspo_pipeline.emulator.server import EmulatorServer
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.casting import to_typed
from mspo_pipeline.lib.catalog import ENDPOINTS
from mspo_pipeline.lib.schemas import CAST_ERRORS, REASONS, SOFT_FLAGS
from mspo_pipeline.lib.validation import split_valid
from mspo_pipeline_tests import pipeline
from mspo_pipeline_tests.conftest import EMULATOR_DATE

DAY1 = "2026-11-19"
DAY2 = "2026-11-20"
PLANTED = "2026-11-21"
"""Raw files written by the tests from DAY2's capture."""
FETCHED = "2026-11-18"
"""Captured from the emulator with faults injected (a past day: it exists whatever the date)."""
TABLES = [endpoint.name for endpoint in ENDPOINTS]
LAYERS = ("typed", "validated", "quarantine")


@dataclasses.dataclass(frozen=True)
class Store:
    root: Path
    api_base_url: str
    instance: dg.DagsterInstance
    runs: Mapping[str, dg.ExecuteInProcessResult]


@pytest.fixture(scope="module")
def store(emulator: EmulatorServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The whole graph materialised for DAY1 then DAY2 into one root and one instance."""
    root = tmp_path_factory.mktemp("layers")
    instance = dg.DagsterInstance.ephemeral()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)
        env.setenv("MSPO_DATA_ROOT", str(root))
        env.setenv("MSPO_LATE_CAPTURE", "allow")
        runs = {}
        try:
            for day in (DAY1, DAY2):
                emulator.set_date(dt.date.fromisoformat(day))
                runs[day] = pipeline.materialize(day, instance=instance)
        finally:
            emulator.set_date(EMULATOR_DATE)
        yield Store(root, emulator.base_url, instance, runs)


def stored(root: Path, layer: str, table: str, partition: str) -> pl.DataFrame:
    return pl.read_parquet(root / storage.relative_path([layer, table], partition))


def plant_raw(root: Path, table: str, partition: str, frame: pl.DataFrame) -> None:
    path = root / storage.relative_path(["raw", table], partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def with_values(frame: pl.DataFrame, changes: Mapping[int, Mapping[str, Any]]) -> pl.DataFrame:
    """``frame`` with ``changes[row][column] = value`` applied (rows by position)."""
    row = pl.int_range(pl.len())
    for position, values in changes.items():
        frame = frame.with_columns(
            pl.when(row == position)
            .then(pl.lit(value, dtype=frame.schema[column]))
            .otherwise(pl.col(column))
            .alias(column)
            for column, value in values.items()
        )
    return frame


probe_runs: list[int] = []


@dg.asset(
    key=["curated", "probe"],
    ins={"validated": dg.AssetIn(key=["validated", "osh_smallholders"])},
    partitions_def=daily_partitions,
)
def downstream_probe(validated: pl.DataFrame) -> dg.MaterializeResult:
    """A stand-in for the curated layer: it must not run after a blocking check errors."""
    probe_runs.append(validated.height)
    return dg.MaterializeResult(metadata={"rows": validated.height})


def run_layers(
    store: Store,
    tables: Sequence[str],
    partition: str,
    *,
    run_config: Mapping[str, Any] | None = None,
    extra: Sequence[dg.AssetsDefinition] = (),
) -> dg.ExecuteInProcessResult:
    """Typed, validated and quarantine of ``tables`` (and ``extra``) from the stored raw files."""
    graph = pipeline.definitions()
    selection = [f"{layer}/{t}" for t in tables for layer in LAYERS]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_API_BASE_URL", store.api_base_url)
        env.setenv("MSPO_DATA_ROOT", str(store.root))
        return dg.materialize(
            [
                *(a for a in graph.assets or [] if isinstance(a, dg.AssetsDefinition)),
                *(graph.asset_checks or []),
                *extra,
            ],
            selection=[*selection, *(a.key.to_user_string() for a in extra)],
            partition_key=partition,
            resources=pipeline.resources(),
            instance=store.instance,
            run_config=run_config,
            raise_on_error=False,
        )


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    """The run's check evaluations by (asset key, check name)."""
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def markdown_rows(markdown: object) -> list[list[str]]:
    """A Markdown table's header and rows as stripped cells (separator lines left out)."""
    assert isinstance(markdown, str), markdown
    rows = []
    for line in markdown.strip().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not all(set(cell) <= set("-: ") for cell in cells):
            rows.append(cells)
    return rows


def meta(evaluation: dg.AssetCheckEvaluation | dg.AssetMaterialization, key: str) -> Any:
    return evaluation.metadata[key].value


# --- the graph ----------------------------------------------------------------------------------


def test_every_table_has_its_layers_checks_and_partitions() -> None:
    graph = pipeline.definitions().resolve_asset_graph()
    specs = {s.key.to_user_string(): s for s in pipeline.definitions().resolve_all_asset_specs()}
    for table in TABLES:
        typed, validated, quarantine = (specs[f"{layer}/{table}"] for layer in LAYERS)
        assert [d.asset_key.to_user_string() for d in typed.deps] == [f"raw/{table}"]
        assert [d.asset_key.to_user_string() for d in validated.deps] == [f"typed/{table}"]
        assert (typed.group_name, validated.group_name, quarantine.group_name) == LAYERS
        assert typed.kinds == {"polars", "parquet"}
        for spec in (typed, validated, quarantine):
            assert spec.partitions_def == specs[f"raw/{table}"].partitions_def
        found = {
            (k.asset_key.to_user_string(), k.name): graph.get_check_spec(k).blocking
            for k in graph.asset_check_keys
            if k.asset_key.path[1] == table
        }
        assert found == {
            (f"typed/{table}", SCHEMA_DRIFT_CHECK): False,
            (f"validated/{table}", PRIMARY_KEY_CHECK): False,
            (f"validated/{table}", ROW_COUNT_CHECK): True,
            (f"quarantine/{table}", QUARANTINE_SHARE_CHECK): False,
        }


def test_raw_captures_carry_the_daily_freshness_policy() -> None:
    """Freshness of the daily capture: a time window on every raw asset."""
    for spec in pipeline.definitions().resolve_all_asset_specs():
        if spec.key.path[0] != "raw":
            continue
        policy = spec.freshness_policy
        assert policy is not None, f"{spec.key.to_user_string()} has no freshness policy"
        warn, fail = policy.warn_window.to_timedelta(), policy.fail_window.to_timedelta()
        # Later than one schedule interval, by less than a second missed day.
        assert dt.timedelta(hours=24) < warn <= fail < dt.timedelta(hours=48)


# --- two clean days -----------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_rows_are_conserved_from_raw_to_validated_plus_quarantine(store: Store, table: str) -> None:
    for day in (DAY1, DAY2):
        raw = stored(store.root, "raw", table, day)
        typed = stored(store.root, "typed", table, day)
        validated = stored(store.root, "validated", table, day)
        quarantine = stored(store.root, "quarantine", table, day)
        assert raw.height > 0
        assert typed.height == raw.height
        assert validated.height + quarantine.height == raw.height, (table, day)


def test_both_days_ran_and_every_check_passed(store: Store) -> None:
    for day, result in store.runs.items():
        assert result.success, day
        evaluations = checks(result)
        graph = pipeline.definitions().resolve_asset_graph()
        assert set(evaluations) == {
            (key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys
        }
        assert [key for key, e in evaluations.items() if not e.passed] == [], day


def test_the_rederive_job_rebuilds_a_stored_day_without_the_api(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mspo_rederive`` reads the stored raw snapshots only: with the API unreachable every
    layer above raw is rebuilt, to the same rows."""
    job = pipeline.definitions().resolve_job_def("mspo_rederive")
    selection = sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
    daily_files = [key.split("/") for key in selection if key != MANIFEST_KEY.to_user_string()]
    before = {
        (layer, table): stored(store.root, layer, table, DAY2) for layer, table in daily_files
    }
    monkeypatch.setenv("MSPO_API_BASE_URL", "http://127.0.0.1:9/api")  # nothing listens there
    monkeypatch.setenv("MSPO_DATA_ROOT", str(store.root))
    result = pipeline.materialize(DAY2, selection, instance=store.instance)
    assert result.success, pipeline.failure_messages(result)
    assert sorted(pipeline.materializations(result)) == selection
    for pair, frame in before.items():
        assert stored(store.root, *pair, DAY2).equals(frame), pair


def test_typed_metadata_reports_the_emulators_unparseable_gps(store: Store) -> None:
    written = pipeline.materializations(store.runs[DAY2])
    typed = written["typed/spoc_smallholders"].metadata
    frame = stored(store.root, "typed", "spoc_smallholders", DAY2)
    failed = frame.filter(pl.col(CAST_ERRORS).is_not_null())
    assert failed.height > 0  # the emulator's "N/A" coordinates
    assert typed["rows_with_cast_errors"].value == failed.height
    lat_failures = failed.filter(pl.col(CAST_ERRORS).str.contains('gps_coordinate_lat="N/A"'))
    assert lat_failures.height > 0
    assert ["gps_coordinate_lat", str(lat_failures.height), '"N/A"'] in markdown_rows(
        typed["cast_failures"].value
    )
    assert typed["unknown_columns"].value == "none"
    assert typed["missing_columns"].value == "none"
    columns = {c.name: c for c in typed["dagster/column_schema"].value.columns}
    assert list(columns) == frame.columns
    assert columns["planted_area"].description.startswith("Total planted area in hectares")
    assert columns["entity_smallholder_id"].constraints.unique
    assert columns["cert_status"].constraints.other == [
        "cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}"
    ]


@pytest.mark.parametrize("table", ["spoc_smallholders", "osh_smallholders", "gm_smallholders"])
def test_validated_metadata_counts_every_soft_flag(store: Store, table: str) -> None:
    metadata = pipeline.materializations(store.runs[DAY2])[f"validated/{table}"].metadata
    frame = stored(store.root, "validated", table, DAY2)
    for flag in SOFT_FLAGS:
        assert frame.schema[flag.name] == pl.Boolean
        assert metadata[flag.name].value == frame.get_column(flag.name).sum(), flag.name
    assert metadata["typed_rows"].value == frame.height + metadata["quarantine_rows"].value
    assert metadata["quarantine_share"].value == 0.0


def test_spoc_carries_every_soft_flag_of_the_emulator(store: Store) -> None:
    frame = stored(store.root, "validated", "spoc_smallholders", DAY2)
    assert {f.name: frame.get_column(f.name).sum() > 0 for f in SOFT_FLAGS} == {
        f.name: True for f in SOFT_FLAGS
    }


def test_row_count_compares_with_the_previous_partition(store: Store) -> None:
    first = checks(store.runs[DAY1])[("validated/spoc_smallholders", ROW_COUNT_CHECK)]
    assert first.passed
    assert meta(first, "previous_partition") == "none"
    assert "nothing to compare" in (first.description or "")
    second = checks(store.runs[DAY2])[("validated/spoc_smallholders", ROW_COUNT_CHECK)]
    assert second.passed
    assert meta(second, "previous_partition") == DAY1
    assert (
        meta(second, "previous_rows") == stored(store.root, "raw", "spoc_smallholders", DAY1).height
    )
    assert meta(second, "rows") == stored(store.root, "raw", "spoc_smallholders", DAY2).height


# --- hard rules, cast failures and soft flags planted into a capture ----------------------------

SPOC_PLANTS: dict[int, tuple[dict[str, Any], Sequence[str]]] = {
    10: ({"planted_area": "2,43"}, ['value could not be cast: planted_area="2,43"']),
    11: (
        {"created_at": "2025-13-45T00:00:00Z"},
        ['value could not be cast: created_at="2025-13-45T00:00:00Z"'],
    ),
    12: ({"stateId": "Kelantan"}, ['state_id="Kelantan"', "state_id is null"]),
    13: ({"deleted": "maybe"}, ['value could not be cast: deleted="maybe"']),
    14: (
        {"cert_status": "PENDING"},
        ['cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}: "PENDING"'],
    ),
    15: ({"certified_area": "-1.0"}, ["certified_area < 0: -1.0"]),
    16: ({"mpob_no": "12345"}, ['mpob_no is not 12 digits: "12345"']),
    17: ({"stateId": "17"}, ["state_id not in 1..16: 17"]),
    18: ({"zoneId": 12}, ["zone_id not in 1..11: 12"]),
    19: ({"entity_smallholder_id": 0}, ["entity_smallholder_id < 1: 0"]),
    20: ({"cert_status": None}, ["cert_status is null"]),
}
"""Row -> raw values that break a hard rule -> fragments its ``reasons`` must contain."""

SPOC_FLAGS: dict[int, tuple[dict[str, Any], str]] = {
    30: ({"gps_coordinate_lat": "N/A"}, "flag_gps_missing"),
    31: ({"planted_area": "1.0", "certified_area": "2.0"}, "flag_certified_above_planted"),
    32: ({"gps_coordinate_lat": "0.0", "gps_coordinate_long": "0.0"}, "flag_gps_zero"),
    33: ({"gps_coordinate_lat": "101.9", "gps_coordinate_long": "5.5"}, "flag_gps_swapped"),
    34: (
        {"gps_coordinate_lat": "55.1", "gps_coordinate_long": "101.9"},
        "flag_gps_outside_malaysia",
    ),
    35: (
        {"created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"},
        "flag_created_after_updated",
    ),
}
DUPLICATED = (40, 41)


@pytest.fixture(scope="module")
def planted_spoc(store: Store) -> tuple[pl.DataFrame, dg.ExecuteInProcessResult]:
    """SPOC of DAY2 with every hard rule broken in one row each, then typed and validated."""
    raw = stored(store.root, "raw", "spoc_smallholders", DAY2).with_columns(
        pl.col("stateId", "deleted").cast(pl.String)  # so text can be planted there
    )
    raw = with_values(raw, {row: values for row, (values, _) in SPOC_PLANTS.items()})
    raw = with_values(raw, {row: values for row, (values, _) in SPOC_FLAGS.items()})
    first_id = raw.get_column("entity_smallholder_id")[DUPLICATED[0]]
    raw = with_values(raw, {DUPLICATED[1]: {"entity_smallholder_id": first_id}})
    plant_raw(store.root, "spoc_smallholders", PLANTED, raw)
    return raw, run_layers(store, ["spoc_smallholders"], PLANTED)


def _ids(raw: pl.DataFrame, rows: Sequence[int]) -> list[int]:
    return [raw.get_column("entity_smallholder_id")[r] for r in rows]


def test_each_hard_rule_quarantines_its_row_with_the_reason(
    store: Store, planted_spoc: tuple[pl.DataFrame, dg.ExecuteInProcessResult]
) -> None:
    raw, result = planted_spoc
    assert result.success  # quarantining is not failing: only checks may complain
    quarantine = stored(store.root, "quarantine", "spoc_smallholders", PLANTED)
    validated = stored(store.root, "validated", "spoc_smallholders", PLANTED)
    assert validated.height + quarantine.height == raw.height
    reasons = dict(zip(quarantine["entity_smallholder_id"], quarantine[REASONS], strict=True))
    for row, (values, fragments) in SPOC_PLANTS.items():
        (key,) = _ids(raw, [row])
        assert key in reasons, (row, values)
        for fragment in fragments:
            assert fragment in reasons[key], (row, reasons[key])
    (duplicated,) = set(_ids(raw, DUPLICATED))
    copies = quarantine.filter(pl.col("entity_smallholder_id") == duplicated)
    assert copies.height == 2
    assert (
        copies[REASONS]
        .str.contains(f"duplicate primary key (entity_smallholder_id): {duplicated}", literal=True)
        .all()
    )
    already = stored(store.root, "quarantine", "spoc_smallholders", DAY2)["entity_smallholder_id"]
    planted = {*_ids(raw, list(SPOC_PLANTS)), duplicated}
    assert set(quarantine["entity_smallholder_id"]) == planted | set(already)


def test_each_cast_failure_is_null_and_recorded_in_typed(
    store: Store, planted_spoc: tuple[pl.DataFrame, dg.ExecuteInProcessResult]
) -> None:
    _, result = planted_spoc
    typed = stored(store.root, "typed", "spoc_smallholders", PLANTED).with_row_index("row")
    expected = {
        10: ("planted_area", 'planted_area="2,43"'),
        11: ("created_at", 'created_at="2025-13-45T00:00:00Z"'),
        12: ("state_id", 'state_id="Kelantan"'),
        13: ("deleted", 'deleted="maybe"'),
        30: ("gps_coordinate_lat", 'gps_coordinate_lat="N/A"'),
    }
    for row, (column, entry) in expected.items():
        assert typed[column][row] is None, column
        assert entry in typed[CAST_ERRORS][row], column
    metadata = pipeline.materializations(result)["typed/spoc_smallholders"].metadata
    failures = {row[0]: row[2] for row in markdown_rows(metadata["cast_failures"].value)[1:]}
    for column, entry in expected.values():
        assert entry.split("=", 1)[1] in failures[column], column


def test_each_soft_flag_marks_a_validated_row(
    store: Store, planted_spoc: tuple[pl.DataFrame, dg.ExecuteInProcessResult]
) -> None:
    raw, _ = planted_spoc
    validated = stored(store.root, "validated", "spoc_smallholders", PLANTED)
    for row, (_, flag) in SPOC_FLAGS.items():
        (key,) = _ids(raw, [row])
        plot = validated.filter(pl.col("entity_smallholder_id") == key)
        assert plot.height == 1, flag
        assert plot[flag][0] is True, flag


def test_quarantine_metadata_and_checks_summarise_the_failures(
    store: Store, planted_spoc: tuple[pl.DataFrame, dg.ExecuteInProcessResult]
) -> None:
    raw, result = planted_spoc
    written = pipeline.materializations(result)
    quarantine = written["quarantine/spoc_smallholders"].metadata
    rows = stored(store.root, "quarantine", "spoc_smallholders", PLANTED).height
    assert quarantine["dagster/row_count"].value == rows
    assert quarantine["quarantine_share"].value == rows / raw.height
    summary = {row[0]: row[1:] for row in markdown_rows(quarantine["rule_summary"].value)[1:]}
    assert summary["cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}"] == [
        "cert_status",
        "1",
        '"PENDING"',
    ]
    assert summary["duplicate primary key (entity_smallholder_id)"][1] == "2"
    evaluations = checks(result)
    key = evaluations[("validated/spoc_smallholders", PRIMARY_KEY_CHECK)]
    assert key.passed
    assert meta(key, "duplicate_rows_quarantined") == 2
    assert str(_ids(raw, DUPLICATED)[0]) in meta(key, "examples")
    share = evaluations[("quarantine/spoc_smallholders", QUARANTINE_SHARE_CHECK)]
    assert share.passed  # a dozen of ~3,000 rows: under 1 %
    assert "mpob_no is not 12 digits" in meta(share, "rules")
    drift = evaluations[("typed/spoc_smallholders", SCHEMA_DRIFT_CHECK)]
    assert not drift.passed  # stateId and deleted were planted as text
    assert meta(drift, "retyped_fields") == "stateId, deleted"


def test_primary_key_check_fails_when_duplicates_reach_validated() -> None:
    raw = pl.DataFrame({"stateId": [1, 2], "state": ["Johor", "Kedah"]})
    result = split_valid(to_typed(raw, "states").frame, "states")
    leaked = dataclasses.replace(result, validated=pl.concat([result.validated, result.validated]))
    evaluation = primary_key_check_result(leaked, dg.AssetKey(["validated", "states"]))
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["duplicate_rows_validated"].value == 4
    assert markdown_rows(evaluation.metadata["examples"].value) == [
        ["state_id"],
        ["1"],
        ["1"],
        ["2"],
        ["2"],
    ]
    assert primary_key_check_result(result, dg.AssetKey(["validated", "states"])).passed


# --- quarantine share and row count, failing ----------------------------------------------------


def _config(table: str, **thresholds: float) -> dict[str, Any]:
    return {"ops": {f"validate_{table}": {"config": thresholds}}}


def test_quarantine_share_warns_then_errors_with_a_lower_threshold(store: Store) -> None:
    raw = stored(store.root, "raw", "gm_smallholders", DAY2)
    plant_raw(
        store.root,
        "gm_smallholders",
        PLANTED,
        with_values(raw, {0: {"cert_status": "PENDING"}, 1: {"cert_status": "PENDING"}}),
    )
    share = 2 / raw.height  # 2 of 27: above 1 %, below 10 %
    warned = checks(run_layers(store, ["gm_smallholders"], PLANTED))
    evaluation = warned[("quarantine/gm_smallholders", QUARANTINE_SHARE_CHECK)]
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert meta(evaluation, "quarantine_share") == pytest.approx(share)
    assert '"PENDING"' in meta(evaluation, "rules")

    config = _config("gm_smallholders", quarantine_error_share=0.05)
    errored = checks(run_layers(store, ["gm_smallholders"], PLANTED, run_config=config))
    evaluation = errored[("quarantine/gm_smallholders", QUARANTINE_SHARE_CHECK)]
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert meta(evaluation, "error_above") == 0.05


def _shrunk_osh(store: Store, keep: float) -> pl.DataFrame:
    raw = stored(store.root, "raw", "osh_smallholders", DAY2)
    shrunk = raw.head(int(raw.height * keep))
    plant_raw(store.root, "osh_smallholders", PLANTED, shrunk)
    return shrunk


def test_a_row_drop_above_5_percent_warns_and_downstream_still_runs(store: Store) -> None:
    shrunk = _shrunk_osh(store, keep=0.9)
    probe_runs.clear()
    result = run_layers(store, ["osh_smallholders"], PLANTED, extra=[downstream_probe])
    evaluation = checks(result)[("validated/osh_smallholders", ROW_COUNT_CHECK)]
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert meta(evaluation, "previous_partition") == DAY2
    assert meta(evaluation, "rows") == shrunk.height
    assert result.success
    assert probe_runs == [shrunk.height]


def test_a_row_drop_above_20_percent_errors_and_blocks_downstream(store: Store) -> None:
    shrunk = _shrunk_osh(store, keep=0.7)
    previous = stored(store.root, "raw", "osh_smallholders", DAY2).height
    probe_runs.clear()
    result = run_layers(store, ["osh_smallholders"], PLANTED, extra=[downstream_probe])
    evaluation = checks(result)[("validated/osh_smallholders", ROW_COUNT_CHECK)]
    assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert meta(evaluation, "drop_share") == pytest.approx(1 - shrunk.height / previous)
    assert "held back" in (evaluation.description or "")
    assert not result.success
    assert "blocking asset check" in pipeline.failure_messages(result)
    assert probe_runs == []
    assert "curated/probe" not in pipeline.materializations(result)
    # Dagster stores a step's outputs before judging its blocking checks: the files are there,
    # the steps after it are not run.
    assert stored(store.root, "validated", "osh_smallholders", PLANTED).height == shrunk.height


# --- schema drift from the emulator's faults ----------------------------------------------------


def test_schema_drift_names_a_new_a_missing_and_a_retyped_field(
    store: Store, emulator: EmulatorServer
) -> None:
    emulator.inject("states", "extra_field", field="region", value="Peninsular")
    emulator.inject("zones", "missing_field", field="zone")
    emulator.inject("spocs", "type_change", field="zoneId")
    tables = ["states", "zones", "spocs"]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MSPO_API_BASE_URL", emulator.base_url)
        env.setenv("MSPO_DATA_ROOT", str(store.root))
        result = pipeline.materialize(
            FETCHED,
            [f"{layer}/{t}" for t in tables for layer in ("raw", "typed")],
            instance=store.instance,
        )
    assert result.success
    evaluations = checks(result)
    states, zones, spocs = (evaluations[(f"typed/{t}", SCHEMA_DRIFT_CHECK)] for t in tables)
    for evaluation in (states, zones, spocs):
        assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert meta(states, "new_fields") == "region"
    assert markdown_rows(meta(states, "changes"))[1] == [
        "new",
        "region",
        "String",
        "(not declared)",
    ]
    assert meta(zones, "missing_fields") == "zone"
    assert meta(spocs, "retyped_fields") == "zoneId"
    assert "zoneId (String, expected Int64)" in (spocs.description or "")
    # The typed layer coped: the new field carried on, the missing one null, the retyped one cast.
    written = pipeline.materializations(result)
    assert meta(written["typed/states"], "unknown_columns") == "region"
    assert stored(store.root, "typed", "states", FETCHED)["region"].unique().to_list() == [
        "Peninsular"
    ]
    assert meta(written["typed/zones"], "missing_columns") == "zone"
    assert stored(store.root, "typed", "zones", FETCHED)["zone"].null_count() > 0
    spocs_typed = stored(store.root, "typed", "spocs", FETCHED)
    assert spocs_typed.schema["zone_id"] == pl.Int32
    assert spocs_typed["zone_id"].null_count() == 0
    assert meta(written["typed/spocs"], "rows_with_cast_errors") == 0
