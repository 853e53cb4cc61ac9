"""Where the store is: the default data root, and how a ``gs://`` root is reached (gcsfs).

Light on purpose (no polars): the IO manager, the SQL warehouse, its manifest and the ``mspo``
command all import it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

DEFAULT_DATA_ROOT = "./data"


def is_gcs(root: str) -> bool:
    return root.startswith(("gs://", "gcs://"))


def bucket_of(root: str) -> str:
    """``gs://bucket/some/prefix`` -> ``bucket``."""
    return root.split("://", 1)[1].split("/", 1)[0]


def root_uri(data_root: str) -> str:
    """The root as DuckDB should see it: a URL stays a URL, a local path becomes absolute."""
    if "://" in data_root:
        return data_root.rstrip("/")
    return Path(data_root).resolve().as_posix()


def storage_options(root: str) -> dict[str, Any]:
    """fsspec options for ``root``: anonymous against a GCS emulator, else Google's ADC.

    With ``STORAGE_EMULATOR_HOST`` set (tests, the demo), gcsfs talks to that host without
    credentials; otherwise gcsfs finds application default credentials itself, and nothing here
    ever sees or logs them.
    """
    if not is_gcs(root):
        return {}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "")
    if emulator and emulator != "default":
        endpoint = (
            emulator if emulator.startswith(("http://", "https://")) else f"http://{emulator}"
        )
        _serve_gcs_with_core_gcsfs()
        return {"token": "anon", "endpoint_url": endpoint}
    return {"token": None}


@functools.cache
def _serve_gcs_with_core_gcsfs() -> None:
    """Against an emulator only, ``gs://`` is served by gcsfs's plain ``GCSFileSystem``.

    gcsfs's default class (its zonal and hierarchical bucket support, chosen when gcsfs is
    imported unless ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``) first asks a bucket for its
    storage layout, which fake-gcs-server never answers: every open stalled for 60 s. A real
    bucket keeps gcsfs's defaults, whatever imported gcsfs first.
    """
    import fsspec
    from gcsfs.core import GCSFileSystem

    for protocol in ("gs", "gcs"):
        fsspec.register_implementation(protocol, GCSFileSystem, clobber=True)
