"""split_valid: every row lands in validated or quarantine, quarantined rows say why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from mspo_pipeline.lib.casting import to_typed
from mspo_pipeline.lib.catalog import endpoint
from mspo_pipeline.lib.schemas import CAST_ERRORS, REASONS, RULES, SCHEMAS, SOFT_FLAGS
from mspo_pipeline.lib.validation import EXAMPLES, ValidationResult, split_valid
from mspo_pipeline_tests.unit.test_schemas import OSH_SAMPLE, SAMPLES, SPOC_SAMPLE, raw_frame

SPOC = "spoc_smallholders"


def _split(records: list[dict[str, Any]], table: str = SPOC) -> ValidationResult:
    return split_valid(to_typed(raw_frame(records), table).frame, table)


def _reasons(record: dict[str, Any]) -> str:
    """The reasons of ``record`` when it sits next to the valid sample."""
    result = _split([SPOC_SAMPLE, {**record, "entity_smallholder_id": 1}])
    assert result.validated["entity_smallholder_id"].to_list() == [73042]
    assert result.quarantine.height == 1
    return str(result.quarantine[REASONS][0])


def test_the_spoc_sample_is_valid_and_flagged_created_after_updated() -> None:
    result = _split([SPOC_SAMPLE])
    assert result.quarantine.height == 0
    assert result.rule_summary.height == 0
    assert result.flag_counts == {
        f.name: int(f.name == "flag_created_after_updated") for f in SOFT_FLAGS
    }
    assert CAST_ERRORS not in result.validated.columns
    assert result.validated.columns[-len(SOFT_FLAGS) :] == [f.name for f in SOFT_FLAGS]


def test_the_osh_sample_with_null_mpob_no_is_valid() -> None:
    result = _split([OSH_SAMPLE], "osh_smallholders")
    assert result.validated.height == 1
    assert result.flag_counts["flag_created_after_updated"] == 1


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("stateId", 17, "state_id not in 1..16: 17"),
        ("stateId", 0, "state_id not in 1..16: 0"),
        ("stateId", None, "state_id is null"),
        ("zoneId", 12, "zone_id not in 1..11: 12"),
        ("zoneId", None, "zone_id is null"),
        ("daerahId", 0, "daerah_id < 1: 0"),
        ("mukimId", -3, "mukim_id < 1: -3"),
        (
            "cert_status",
            "PENDING",
            'cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}: "PENDING"',
        ),
        ("cert_status", None, "cert_status is null"),
        ("planted_area", "-1", "planted_area < 0: -1.0"),
        ("certified_area", "-0.5", "certified_area < 0: -0.5"),
        ("mpob_no", "12345", 'mpob_no is not 12 digits: "12345"'),
        ("mpob_no", "83245200109X", 'mpob_no is not 12 digits: "83245200109X"'),
        ("planted_area", "2,43", 'value could not be cast: planted_area="2,43"'),
        ("created_at", "03/06/2025", 'value could not be cast: created_at="03/06/2025"'),
        ("deleted", "maybe", 'value could not be cast: deleted="maybe"'),
    ],
)
def test_each_hard_rule_quarantines_with_its_reason(field: str, value: Any, reason: str) -> None:
    assert _reasons({**SPOC_SAMPLE, field: value}) == reason


def test_a_failed_id_cast_names_the_cast_and_the_null() -> None:
    reasons = _reasons({**SPOC_SAMPLE, "stateId": "three"})
    assert reasons == 'state_id is null; value could not be cast: state_id="three"'


def test_every_broken_rule_of_a_row_is_listed_once() -> None:
    reasons = _reasons(
        {
            **SPOC_SAMPLE,
            "cert_status": "PENDING",
            "planted_area": "-1",
            "gps_coordinate_lat": "N/A",
            "certified_area": "2,43",
        }
    )
    assert reasons.split("; ") == [
        "planted_area < 0: -1.0",
        'cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}: "PENDING"',
        'value could not be cast: certified_area="2,43"',
    ]


def test_rules_name_each_broken_rule_once_without_its_values() -> None:
    rows = [
        {**SPOC_SAMPLE, "entity_smallholder_id": 1, "planted_area": "-1", "cert_status": "X"},
        {**SPOC_SAMPLE, "entity_smallholder_id": 2, "planted_area": "-7"},
        {**SPOC_SAMPLE, "entity_smallholder_id": 3, "certified_area": "2,43"},
        {**SPOC_SAMPLE, "entity_smallholder_id": 4, "certified_area": "1,5"},
    ]
    result = _split(rows)
    assert result.quarantine[RULES].to_list() == [
        ["planted_area < 0", "cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}"],
        ["planted_area < 0"],
        ["value could not be cast"],
        ["value could not be cast"],
    ]
    counted = result.quarantine.select(pl.col(RULES).explode()).group_by(RULES).len().sort(RULES)
    assert counted.rows() == [
        ("cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}", 1),
        ("planted_area < 0", 2),
        ("value could not be cast", 2),
    ]


def test_a_gps_cast_failure_is_soft() -> None:
    result = _split([{**SPOC_SAMPLE, "gps_coordinate_lat": "N/A"}])
    assert result.quarantine.height == 0
    assert result.validated["flag_gps_missing"].to_list() == [True]


def test_every_row_of_a_duplicated_key_is_quarantined() -> None:
    other = {**SPOC_SAMPLE, "entity_smallholder_id": 2}
    result = _split([SPOC_SAMPLE, other, SPOC_SAMPLE, SPOC_SAMPLE])
    assert result.validated["entity_smallholder_id"].to_list() == [2]
    assert (
        result.quarantine[REASONS].to_list()
        == ["duplicate primary key (entity_smallholder_id): 73042"] * 3
    )


def test_a_duplicated_composite_key_names_both_parts() -> None:
    row = SAMPLES["zone_state"]
    result = _split([row, {**row, "stateId": 2}, row], "zone_state")
    assert result.validated["state_id"].to_list() == [2]
    assert (
        result.quarantine[REASONS].to_list()
        == ["duplicate primary key (zone_id, state_id): 1, 8"] * 2
    )


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"certified_area": "3.0"}, "flag_certified_above_planted"),
        ({"gps_coordinate_long": None}, "flag_gps_missing"),
        ({"gps_coordinate_lat": "0", "gps_coordinate_long": "0.0"}, "flag_gps_zero"),
        ({"gps_coordinate_lat": "5551060"}, "flag_gps_outside_malaysia"),
        (
            {"gps_coordinate_lat": "101.920321", "gps_coordinate_long": "5.551060"},
            "flag_gps_swapped",
        ),
        ({"created_at": "2023-01-01T00:00:00Z"}, None),
    ],
)
def test_each_soft_flag_keeps_the_row(changes: dict[str, Any], flag: str | None) -> None:
    """The sample is created after it was updated; the last case repairs that."""
    result = _split([{**SPOC_SAMPLE, **changes}])
    assert result.quarantine.height == 0
    raised = {f.name for f in SOFT_FLAGS if result.validated[f.name][0]}
    expected = {flag} if flag else set()
    if "created_at" not in changes:
        expected.add("flag_created_after_updated")
    if flag in {"flag_gps_zero", "flag_gps_swapped"}:
        expected.add("flag_gps_outside_malaysia")
    assert raised == expected


def _nasty(table: str) -> pl.DataFrame:
    """The table's sample, a copy, a null key, a key that is not a number and a valid other key
    (the last row, the only valid one), each with unknown fields: one numbering it, two named
    like the splitter's own columns."""
    sample = SAMPLES[table]
    key = endpoint(table).primary_key[0]
    other = {**sample, key: sample[key] + 1}
    records = [sample, dict(sample), {**sample, key: None}, {**sample, key: "x1"}, other]
    extras = [{"surprise": i, "index": -i, "reasons": "not ours"} for i in range(len(records))]
    return raw_frame([{**r, **e} for r, e in zip(records, extras, strict=True)])


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_rows_are_conserved_on_nasty_input(table: str) -> None:
    raw = _nasty(table)
    typed = to_typed(raw, table).frame
    result = split_valid(typed, table)
    assert result.validated.height + result.quarantine.height == typed.height == raw.height
    assert result.validated["surprise"].to_list() == [4]
    assert sorted(result.quarantine["surprise"].to_list()) == [0, 1, 2, 3]
    assert result.quarantine[REASONS].null_count() == 0
    assert result.quarantine["reasons_raw"].to_list() == ["not ours"] * 4
    assert result.validated["index"].to_list() == [-4]
    assert result.quarantine_share == 4 / 5


def test_an_empty_table_splits_into_two_empty_frames() -> None:
    result = _split([SPOC_SAMPLE])
    empty = split_valid(to_typed(raw_frame([SPOC_SAMPLE]).clear(), SPOC).frame, SPOC)
    assert (empty.rows, empty.quarantine_share) == (0, 0.0)
    assert empty.validated.schema == result.validated.schema


def test_a_frame_that_is_not_typed_is_refused_with_advice() -> None:
    typed = to_typed(raw_frame([SPOC_SAMPLE]), SPOC).frame.drop("zone_id")
    with pytest.raises(ValueError, match=r"spoc_smallholders.*zone_id.*to_typed"):
        split_valid(typed, SPOC)


def test_rule_summary_counts_rows_and_shows_a_few_examples() -> None:
    bad = [
        {**SPOC_SAMPLE, "entity_smallholder_id": i, "cert_status": status}
        for i, status in enumerate(["A", "B", "C", "D", "A"], start=1)
    ]
    result = _split([SPOC_SAMPLE, *bad, {**SPOC_SAMPLE, "entity_smallholder_id": 9, "stateId": 99}])
    summary = result.rule_summary.rows(named=True)
    assert [r["rule"] for r in summary] == [
        "cert_status not in {ACTIVE, DELAYED, EXPIRED, SUSPENDED}",
        "state_id not in 1..16",
    ]
    assert summary[0]["rows"] == 5
    assert summary[0]["examples"].split(", ") == ['"A"', '"B"', '"C"'][:EXAMPLES]
    assert result.rule_counts == {summary[0]["rule"]: 5, "state_id not in 1..16": 1}
    markdown = result.rule_summary_markdown().splitlines()
    assert len(markdown) == 2 + len(summary)
    assert markdown[3] == "| state_id not in 1..16 | state_id | 1 | 99 |"


def test_loading_the_definitions_imports_neither_pandera_nor_pandas(tmp_path: Path) -> None:
    """The webserver, the daemon and the code server load the definitions and never validate;
    pandera (and the pandas it imports when installed, as here) waits for the first validation.
    A fresh interpreter, since this one has imported both for the tests above."""
    probe = (
        "import sys\n"
        "from mspo_pipeline.definitions import defs\n"
        "defs()\n"
        "print(sorted({'pandera', 'pandas'} & {m.partition('.')[0] for m in sys.modules}))\n"
        "from mspo_pipeline_tests.unit.test_validation import _split, SPOC_SAMPLE\n"
        "assert _split([SPOC_SAMPLE]).validated.height == 1\n"
        "print(sorted({'pandera'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "MSPO_DATA_ROOT": str(tmp_path / "data")},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "['pandera']"]
