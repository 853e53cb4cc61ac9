"""One Parquet IO manager for a local folder and ``gs://``, with provenance in every footer.

Built on Dagster's ``UPathIOManager`` (``dagster-polars`` breaks on polars 2). The asset hands
its provenance over as runtime output metadata, ``dg.Output(frame, metadata={"source_url": ...,
"captured_at": ..., "late_capture": ...})``: the same values then show in the UI and are written
into the Parquet key-value metadata, so the file and the event log cannot disagree. An asset that
keeps an existing on-time snapshot returns ``dg.Output(None, metadata={REUSE_EXISTING: True})``
(or the frame it read) and nothing is written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from upath import UPath

import mspo_pipeline
from mspo_pipeline.lib import storage

_PROVENANCE_TYPES = (str, int, float, bool)


def is_local(path: UPath) -> bool:
    return path.protocol in ("", "file", "local")


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


@contextmanager
def _local_temp(directory: str | None) -> Iterator[Path]:
    """A temporary file path, removed afterwards whatever happens (it may be renamed away)."""
    descriptor, name = tempfile.mkstemp(prefix=".mspo-", suffix=".parquet.tmp", dir=directory)
    os.close(descriptor)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


def write_parquet_atomic(frame: pl.DataFrame, path: UPath, metadata: Mapping[str, str]) -> None:
    """Write ``frame`` so that readers see the old file or the new one, never a part.

    Local: a temporary file in the same folder, then an atomic rename. GCS: a local temporary
    file, then one object upload (the object appears only when the upload completes). polars'
    own ``gs://`` writer is not used: it fails against emulators (DESIGN.md §10).
    """
    if is_local(path):
        target = Path(path.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with _local_temp(str(target.parent)) as temp:
            frame.write_parquet(temp, compression="zstd", metadata=dict(metadata))
            temp.replace(target)  # atomic rename within one folder
        return
    with _local_temp(None) as temp:
        frame.write_parquet(temp, compression="zstd", metadata=dict(metadata))
        path.fs.put_file(str(temp), path.path)


def read_parquet(path: UPath) -> pl.DataFrame:
    """The whole file as an eager frame; a ``gs://`` object is streamed to a temporary file
    first, so its bytes are never held in Python (polars memory-maps the local copy)."""
    if is_local(path):
        return pl.read_parquet(Path(path.path))
    if not path.exists():
        raise FileNotFoundError(f"no Parquet object at {path}")
    with _local_temp(None) as temp:
        path.fs.get_file(path.path, str(temp))
        return pl.read_parquet(temp, memory_map=False)


def parquet_facts(path: UPath) -> tuple[int, int]:
    """(rows, bytes) of a stored file, from its footer and size only."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        rows = pq.read_metadata(handle).num_rows
    return rows, int(path.fs.size(path.path))


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
        provenance = {
            **provenance_from_output_metadata(runtime),
            "asset_key": context.asset_key.to_user_string(),
            "partition": context.partition_key,
            "pipeline_version": mspo_pipeline.__version__,
            "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_parquet_atomic(obj, path, storage.provenance_metadata(provenance))
        context.add_output_metadata(
            {
                "uri": dg.MetadataValue.path(str(path)),
                "parquet_bytes": int(path.fs.size(path.path)),
                "dagster/row_count": obj.height,
            }
        )

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

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pl.DataFrame:
        return read_parquet(path)


def _flag(entry: Any) -> bool:
    return bool(entry.value if isinstance(entry, dg.MetadataValue) else entry)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """The store of every MSPO table; bind ``root`` to ``dg.EnvVar("MSPO_DATA_ROOT")``."""

    root: str = storage.DEFAULT_DATA_ROOT
    """A local folder, or ``gs://bucket[/prefix]``."""

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(self.root)
