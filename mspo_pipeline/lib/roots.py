"""Where the store is: the default data root, and how a ``gs://`` root is reached (gcsfs).

Light on purpose (no polars): the IO manager, the SQL warehouse, its manifest and the ``mspo``
command all import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_DATA_ROOT = "./data"

# gcsfs reads this when it is imported; its default ("true") makes every open against an emulator
# stall for 60 s. Set it before anything imports gcsfs (an explicit setting wins).
os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def is_gcs(root: str) -> bool:
    return root.startswith(("gs://", "gcs://"))


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
        return {"token": "anon", "endpoint_url": endpoint}
    return {"token": None}
