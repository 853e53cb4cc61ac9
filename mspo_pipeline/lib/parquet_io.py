"""One Parquet IO manager for a local folder and ``gs://``, with provenance in every footer.

Built on Dagster's ``UPathIOManager`` (``dagster-polars`` breaks on polars 2). The asset hands
its provenance over as runtime output metadata, ``dg.Output(frame, metadata={"source_url": ...,
"captured_at": ..., "late_capture": ...})``: the same values then show in the UI and are written
into the Parquet key-value metadata, so the file and the event log cannot disagree. An asset that
keeps an existing on-time snapshot returns ``dg.Output(None, metadata={REUSE_EXISTING: True})``
(or the frame it read) and nothing is written. A ``geo`` JSON entry (``lib/geo.py``) becomes
the file's GeoParquet metadata, under its own unprefixed key.

A curated frame is written only if it matches its table's declaration (``schemas.CURATED``):
the same columns, types and non-null columns on every day, so a change to the SQL that builds a
table cannot quietly change what years of its files hold. A frame that does not match fails the
step and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

import mspo_pipeline
from mspo_pipeline.lib import storage
from mspo_pipeline.lib.provenance import StoredFrame
from mspo_pipeline.lib.roots import DEFAULT_DATA_ROOT
from mspo_pipeline.lib.schemas import CuratedSchemaError, curated_table
from mspo_pipeline.lib.storage import is_local, parquet_facts, read_parquet, write_parquet_atomic

_PROVENANCE_TYPES = (str, int, float, bool)
CURATED_LAYER = "curated"
COLUMNS = "columns"
"""Input metadata: the only columns to read (``load_from_path``)."""


def provenance_from_output_metadata(metadata: Mapping[str, Any]) -> dict[str, object]:
    """The scalar runtime metadata an asset attached to its output (not Dagster's own keys)."""
    provenance: dict[str, object] = {}
    for key, entry in metadata.items():
        if key.startswith("dagster/") or key == storage.REUSE_EXISTING:
            continue
        value = entry.value if isinstance(entry, dg.MetadataValue) else entry
        if isinstance(value, _PROVENANCE_TYPES):
            provenance[key] = value
    return provenance


class ParquetUPathIOManager(dg.UPathIOManager):
    """Daily partitions of ``[<layer>, <table>]`` assets as zstd Parquet under one root."""

    extension: str | None = None  # the layout's file names already end in .parquet

    def __init__(self, root: str) -> None:
        self.root = root
        super().__init__(base_path=storage.root_upath(root))

    def get_path_for_partition(
        self, context: dg.InputContext | dg.OutputContext, path: UPath, partition: str
    ) -> UPath:
        return self._base_path / storage.relative_path(context.asset_key.path, partition)

    def get_asset_relative_path(self, context: dg.InputContext | dg.OutputContext) -> UPath:
        if not context.has_asset_partitions:
            raise dg.DagsterInvariantViolationError(
                f"asset {context.asset_key.to_user_string()} is not partitioned: the MSPO store "
                "keeps one file per daily partition (give the asset the daily partitions)"
            )
        return super().get_asset_relative_path(context)

    def load_input(self, context: dg.InputContext) -> Any:
        """One partition read straight from its file; the base class's two debug lines per input
        are two events in the run's log (~10 ms each on SQLite), saying what the step says."""
        if context.has_asset_partitions and len(context.asset_partition_keys) == 1:
            (partition,) = context.asset_partition_keys
            return self.load_from_path(
                context, self.get_path_for_partition(context, self._base_path, partition)
            )
        return super().load_input(context)

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        """One partition's file written without the base class's debug line, and its path shown
        once (``uri``, not also the base class's ``path``)."""
        if not context.has_asset_partitions or len(context.asset_partition_keys) != 1:
            super().handle_output(context, obj)  # the base class's errors say what is wrong
            return
        path = self.get_path_for_partition(context, self._base_path, context.partition_key)
        self.make_directory(path.parent)
        self.dump_to_path(context, obj, path)

    def make_directory(self, path: UPath) -> None:
        if is_local(path):  # object stores have no folders to make
            path.mkdir(parents=True, exist_ok=True)

    def dump_to_path(
        self, context: dg.OutputContext, obj: pl.DataFrame | None, path: UPath
    ) -> None:
        runtime = context.output_metadata
        if _flag(runtime.get(storage.REUSE_EXISTING, False)):
            self._reuse(context, obj, path)
            return
        if not isinstance(obj, pl.DataFrame):
            raise dg.DagsterInvariantViolationError(
                f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}; the "
                "Parquet IO manager stores polars DataFrames (or reuses the stored file when the "
                f"output metadata sets {storage.REUSE_EXISTING!r})"
            )
        obj = self._declared(context, obj)
        provenance = {
            **provenance_from_output_metadata(runtime),
            "asset_key": context.asset_key.to_user_string(),
            "partition": context.partition_key,
            "pipeline_version": mspo_pipeline.__version__,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        file_metadata = storage.provenance_metadata(provenance)
        if storage.GEOPARQUET_KEY in runtime:  # GeoParquet: its own key, as readers expect it
            geo = runtime[storage.GEOPARQUET_KEY].value
            file_metadata[storage.GEOPARQUET_KEY] = json.dumps(geo, separators=(",", ":"))
        write_parquet_atomic(obj, path, file_metadata)
        context.add_output_metadata(
            {
                "uri": dg.MetadataValue.path(str(path)),
                "parquet_bytes": int(path.fs.size(path.path)),
                "dagster/row_count": obj.height,
            }
        )

    def _declared(self, context: dg.OutputContext, frame: pl.DataFrame) -> pl.DataFrame:
        """A curated frame in its declared column order; a mismatch fails before any write."""
        layer, table = context.asset_key.path[0], context.asset_key.path[-1]
        if layer != CURATED_LAYER:
            return frame
        try:
            return curated_table(table).conform(frame)
        except (CuratedSchemaError, KeyError) as error:
            raise dg.Failure(
                f"{context.asset_key.to_user_string()} partition {context.partition_key}: "
                f"{error}; nothing was written"
            ) from error

    def _reuse(self, context: dg.OutputContext, obj: pl.DataFrame | None, path: UPath) -> None:
        if not self.path_exists(path):
            raise FileNotFoundError(
                f"asset {context.asset_key.to_user_string()} partition {context.partition_key} "
                f"asked to reuse the stored file, but there is none at {path}; materialise the "
                "partition without reuse"
            )
        rows, size = parquet_facts(path)
        context.log.info(f"kept the stored {path} ({rows} rows); nothing written")
        context.add_output_metadata(
            {
                "uri": dg.MetadataValue.path(str(path)),
                "parquet_bytes": size,
                "dagster/row_count": rows,
            }
        )

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame | StoredFrame:
        """The frame, or a ``StoredFrame`` for an input annotated so (with the raw file's
        SHA-256 when the input is raw: derived files name the exact raw file they came from).

        An input that names ``columns`` in its metadata (``dg.AssetIn(metadata={COLUMNS:
        [...]})``) reads only those: a stored day is not read whole for a few columns.
        """
        columns = (context.definition_metadata or {}).get(COLUMNS)
        if context.dagster_type.typing_type is not StoredFrame:
            return read_parquet(path, columns=columns)
        is_raw = context.asset_key.path[0] == "raw"
        frame, provenance, sha256 = storage.read_stored(path, digest=is_raw, columns=columns)
        return StoredFrame(frame, provenance, sha256)


def _flag(entry: Any) -> bool:
    return bool(entry.value if isinstance(entry, dg.MetadataValue) else entry)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """The store of every MSPO table; bind ``root`` to ``dg.EnvVar("MSPO_DATA_ROOT")``."""

    root: str = DEFAULT_DATA_ROOT
    """A local folder, or ``gs://bucket[/prefix]``."""

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(self.root)
