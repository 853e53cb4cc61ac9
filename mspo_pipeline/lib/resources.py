"""Dagster resources over the plain clients of ``lib/``: configuration in, clients out.

Kept apart from ``api.py`` so the capture path (client, parser, writer) imports no Dagster: the
benchmarks and any script can use it as plain Python.
"""

import dagster as dg
from pydantic import PrivateAttr

from mspo_pipeline.lib.api import MB, FetchResult, Log, MspoClient
from mspo_pipeline.lib.capture import LatePolicy
from mspo_pipeline.lib.catalog import DEFAULT_BASE_URL, Endpoint


class MspoApi(dg.ConfigurableResource):
    """The MSPO API as a Dagster resource; every field is read from the environment in
    ``defs/resources.py`` (``MSPO_API_BASE_URL``, ``MSPO_CA_BUNDLE``, ``MSPO_VERIFY_TLS``)."""

    base_url: str = DEFAULT_BASE_URL
    ca_bundle: str | None = None
    verify_tls: bool = True
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    retry_after_max_s: float = 300.0
    progress_every_bytes: int = 50 * MB

    _client: MspoClient | None = PrivateAttr(default=None)

    def client(self, log: Log | None = None) -> MspoClient:
        """A new client with this configuration (the caller closes it)."""
        return MspoClient(
            self.base_url,
            ca_bundle=self.ca_bundle,
            verify_tls=self.verify_tls,
            connect_timeout_s=self.connect_timeout_s,
            read_timeout_s=self.read_timeout_s,
            max_attempts=self.max_attempts,
            backoff_base_s=self.backoff_base_s,
            backoff_max_s=self.backoff_max_s,
            retry_after_max_s=self.retry_after_max_s,
            progress_every_bytes=self.progress_every_bytes,
            log=log,
        )

    def fetch(self, endpoint: Endpoint, *, log: Log | None = None) -> FetchResult:
        """One endpoint, on a client shared by this resource's fetches during the run."""
        if self._client is None:
            self._client = self.client(log)
        return self._client.fetch(endpoint, log=log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class CaptureSettings(dg.ConfigurableResource):
    """How the raw layer treats a partition whose day is already over (DESIGN.md §5)."""

    late_capture: str = LatePolicy.ALLOW.value
    """``allow`` fills a missed day with a late capture; ``refuse`` leaves it empty."""

    @property
    def late_policy(self) -> LatePolicy:
        try:
            return LatePolicy(self.late_capture.strip().lower())
        except ValueError:
            raise ValueError(
                f"MSPO_LATE_CAPTURE={self.late_capture!r}: use 'allow' (fill a missed day with a "
                "late capture) or 'refuse' (leave it empty)"
            ) from None
