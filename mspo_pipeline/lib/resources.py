"""Dagster resources over the plain clients of ``lib/``: configuration in, clients out.

Kept apart from ``api.py`` so the capture path (client, parser, writer) imports no Dagster: the
benchmarks and any script can use it as plain Python.
"""

import threading

import dagster as dg
from pydantic import PrivateAttr

from mspo_pipeline.lib import crashed_runs
from mspo_pipeline.lib.api import MB, FetchResult, HeadersCallback, Log, MspoClient
from mspo_pipeline.lib.catalog import DEFAULT_BASE_URL, Endpoint
from mspo_pipeline.lib.late_capture import LatePolicy
from mspo_pipeline.lib.settings import ENV_DEFAULTS


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
    crashed_run_check_interval_s: float = 30.0
    """How often a run looks again for killed runs holding the API pool (0: only at start)."""

    _client: MspoClient | None = PrivateAttr(default=None)
    _stop_watching: threading.Event | None = PrivateAttr(default=None)
    _watcher: threading.Thread | None = PrivateAttr(default=None)

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

    def fetch(
        self,
        endpoint: Endpoint,
        *,
        partition: str | None = None,
        log: Log | None = None,
        on_headers: HeadersCallback | None = None,
    ) -> FetchResult:
        """One endpoint, on a client shared by this resource's fetches during the run.

        ``partition`` labels errors and ``on_headers`` judges the response before its body is
        downloaded, as in ``MspoClient.fetch``.
        """
        if self._client is None:
            self._client = self.client(log)
        return self._client.fetch(endpoint, partition=partition, log=log, on_headers=on_headers)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Release runs killed while holding the ``mspo_api`` pool before this run needs it.

        Every capture step needs this resource, and the in-process executor sets resources up
        before any step waits for a pool slot, so this is the one place every run that calls the
        API passes through in time (``crashed_runs`` says why Dagster's own monitoring does not
        cover CLI runs). A watcher thread repeats the check while this run lives, so a run
        already waiting when another one is killed is not stuck either.
        """
        instance, run, log = context.instance, context.run, context.log
        if instance is None or run is None or log is None:
            return  # outside a run (a test building the resource): nothing to guard
        self._check_crashed_runs(instance, run, log, record=True)
        if self.crashed_run_check_interval_s > 0:
            stop = threading.Event()
            watcher = threading.Thread(
                target=self._watch_crashed_runs,
                args=(instance, run, log, stop),
                name=f"mspo-crashed-runs-{run.run_id[:8]}",
                daemon=True,
            )
            self._stop_watching, self._watcher = stop, watcher
            watcher.start()

    def _watch_crashed_runs(
        self, instance: dg.DagsterInstance, run: dg.DagsterRun, log: Log, stop: threading.Event
    ) -> None:
        while not stop.wait(self.crashed_run_check_interval_s):
            self._check_crashed_runs(instance, run, log, record=False)

    @staticmethod
    def _check_crashed_runs(
        instance: dg.DagsterInstance, run: dg.DagsterRun, log: Log, *, record: bool
    ) -> None:
        """Never fails the run: a storage hiccup here must not cost the day's capture."""
        try:
            if record:
                crashed_runs.record_worker(instance, run)
            crashed_runs.release_dead_runs(instance, current_run_id=run.run_id, log=log)
        except Exception as error:
            log.warning(
                f"could not look for crashed runs holding the API pool ({type(error).__name__}: "
                f"{error}); if this run waits for a slot forever, see `mspo release-runs`"
            )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._stop_watching is not None:
            self._stop_watching.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
            self._watcher = self._stop_watching = None
        if self._client is not None:
            self._client.close()
            self._client = None


class CaptureSettings(dg.ConfigurableResource):
    """How the raw layer treats a partition whose day is already over (``lib/late_capture.py``)."""

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


class HexGrid(dg.ConfigurableResource):
    """How ``curated/plots_hex`` aggregates: the H3 resolution, and the fewest plots a published
    cell may hold (k). One setting for the deployment, so every day's cells compare."""

    resolution: int = int(ENV_DEFAULTS["MSPO_H3_RESOLUTION"])
    """0 (continent-sized cells) to 15 (about 1 m²); 7 is about 5 km²."""
    min_plots: int = int(ENV_DEFAULTS["MSPO_HEX_MIN_PLOTS"])
    """Cells with fewer plots are not published."""
