"""Alerts: a failed run, a check at ERROR, a capture missing by the deadline, told once.

The sensors of ``defs/alerts.py`` turn what they find into ``Alert`` values and hand them to the
sinks configured here: a Slack-compatible webhook, email, both, or neither (alerts off). An alert
is identified by its kind, partition and cause, so the same failure seen again (a Dagster run
retry that fails the same way, a sensor evaluated again) is not sent again: ``SentLog`` keeps the
keys already delivered to each sink in the sensor's cursor.

A Slack webhook URL is itself the credential (its path is the secret), and so is the SMTP
password: neither may reach a log, an error message or an alert. Sinks describe themselves by
kind and host only, and a delivery error keeps the exception's class, never its text (HTTP
libraries put the full URL in theirs); the webhook is called with urllib, which logs nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from mspo_pipeline.lib.days import MALAYSIA
from mspo_pipeline.lib.settings import flag

WEBHOOK_URL_ENV = "MSPO_ALERT_WEBHOOK_URL"
SMTP_HOST_ENV = "MSPO_ALERT_SMTP_HOST"
SMTP_PORT_ENV = "MSPO_ALERT_SMTP_PORT"
SMTP_USER_ENV = "MSPO_ALERT_SMTP_USER"
SMTP_PASSWORD_ENV = "MSPO_ALERT_SMTP_PASSWORD"
SMTP_STARTTLS_ENV = "MSPO_ALERT_SMTP_STARTTLS"
EMAIL_FROM_ENV = "MSPO_ALERT_EMAIL_FROM"
EMAIL_TO_ENV = "MSPO_ALERT_EMAIL_TO"
DEADLINE_ENV = "MSPO_CAPTURE_DEADLINE"
INTERVAL_ENV = "MSPO_ALERT_INTERVAL_SECONDS"

DEFAULT_DEADLINE = dt.time(7, 0)
"""An hour after the 06:00 schedule: a normal capture of all 14 endpoints is long done."""
DEFAULT_INTERVAL_SECONDS = 60
SEND_TIMEOUT_S = 20.0
MAX_SENT_KEYS = 1000
"""Keys kept in a sensor's cursor: months of alerts, in a few tens of kB of cursor."""

ALERTS_OFF = (
    f"alerts are off: set {WEBHOOK_URL_ENV} and/or {SMTP_HOST_ENV} (with {EMAIL_FROM_ENV} and "
    f"{EMAIL_TO_ENV}) on the user-code server to turn them on"
)


class AlertConfigError(ValueError):
    """An alert variable is set to something unusable; the message names it and the fix."""


class DeliveryError(RuntimeError):
    """A sink did not accept an alert; the message names the sink by kind and host only."""


class AlertKind(StrEnum):
    RUN_FAILED = "run_failed"
    CHECK_ERROR = "check_error"
    CAPTURE_MISSING = "capture_missing"


def alert_key(kind: AlertKind, partition: str, cause: str) -> str:
    return f"{kind}|{partition}|{cause}"


CAPTURE_MISSING_CAUSE = "raw"
"""The one cause of a day's missing-capture alert: whichever captures are missing, it is sent
once a day."""


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    partition: str
    cause: str
    """What makes two alerts the same: equal kind, partition and cause are sent once."""
    title: str
    text: str

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.partition, self.cause)

    @property
    def message(self) -> str:
        return f"{self.title}\n{self.text}"


def _text_variable(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def _bool_variable(env: Mapping[str, str], name: str, default: bool) -> bool:
    try:
        return flag(name, env.get(name), default=default)
    except ValueError as error:
        raise AlertConfigError(str(error)) from None


def capture_deadline(value: str | None) -> dt.time:
    """``MSPO_CAPTURE_DEADLINE``: ``HH:MM`` in Asia/Kuala_Lumpur, 07:00 when unset."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_DEADLINE
    try:
        return dt.datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise AlertConfigError(
            f"{DEADLINE_ENV}={text!r} is not a time of day; give HH:MM in Asia/Kuala_Lumpur "
            f"(e.g. 07:00), or unset it for {DEFAULT_DEADLINE:%H:%M}"
        ) from None


def sensor_interval(value: str | None) -> int:
    """``MSPO_ALERT_INTERVAL_SECONDS``: how often the daemon evaluates the alert sensors."""
    text = (value or "").strip()
    if not text:
        return DEFAULT_INTERVAL_SECONDS
    if not text.isdigit() or int(text) < 1:
        raise AlertConfigError(
            f"{INTERVAL_ENV}={text!r} is not a whole number of seconds (1 or more); unset it "
            f"for {DEFAULT_INTERVAL_SECONDS}"
        )
    return int(text)


class Sink(Protocol):
    @property
    def name(self) -> str:
        """Short and stable (``webhook``, ``email``): part of the keys kept in a cursor."""
        ...

    def describe(self) -> str:
        """The sink as logs may show it: its kind and host, no credential."""
        ...

    def send(self, alert: Alert) -> None:
        """Deliver or raise ``DeliveryError``."""
        ...


@dataclass(frozen=True)
class WebhookSink:
    """Slack's incoming-webhook format (``{"text": ...}``), which Mattermost, Rocket.Chat,
    Google Chat and Teams' Slack-compatible connectors accept too."""

    url: str = field(repr=False)
    name: str = "webhook"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "?"

    def describe(self) -> str:
        return f"webhook at {self.host}"

    def send(self, alert: Alert) -> None:
        request = urllib.request.Request(
            self.url,
            data=json.dumps({"text": alert.message}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            # urllib verifies TLS with the system's CAs, and unlike requests (urllib3) it never
            # logs the request line, whose path is the secret.
            with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise DeliveryError(
                f"{self.describe()} refused the alert with HTTP {error.code}: check "
                f"{WEBHOOK_URL_ENV} (a revoked Slack webhook answers 403 or 404)"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            # The exception's text may include the URL, path and all: only its class is kept.
            raise DeliveryError(
                f"{self.describe()} could not be reached ({type(error).__name__}): check "
                f"{WEBHOOK_URL_ENV} and the network from the user-code server"
            ) from None


@dataclass(frozen=True)
class EmailSink:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    name: str = "email"

    def describe(self) -> str:
        return f"email via {self.host}:{self.port}"

    def send(self, alert: Alert) -> None:
        message = EmailMessage()
        message["Subject"] = alert.title
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message.set_content(alert.text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"{self.describe()} refused the alert ({type(error).__name__}, SMTP code "
                f"{error.smtp_code}): check {SMTP_USER_ENV}, {SMTP_PASSWORD_ENV} and "
                f"{EMAIL_FROM_ENV} against the relay's rules"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(
                f"{self.describe()} could not take the alert ({type(error).__name__}): check "
                f"{SMTP_HOST_ENV}, {SMTP_PORT_ENV}, {SMTP_STARTTLS_ENV} and the network from "
                "the user-code server"
            ) from None


def _email_sink(env: Mapping[str, str]) -> EmailSink | None:
    host = _text_variable(env, SMTP_HOST_ENV)
    if not host:
        return None
    starttls = _bool_variable(env, SMTP_STARTTLS_ENV, default=True)
    port_text = _text_variable(env, SMTP_PORT_ENV)
    if port_text and not port_text.isdigit():
        raise AlertConfigError(f"{SMTP_PORT_ENV}={port_text!r} is not a port number")
    port = int(port_text) if port_text else (587 if starttls else 25)
    sender = _text_variable(env, EMAIL_FROM_ENV)
    recipients = tuple(r.strip() for r in _text_variable(env, EMAIL_TO_ENV).split(",") if r.strip())
    if not sender or not recipients:
        raise AlertConfigError(
            f"{SMTP_HOST_ENV} is set, so email alerts are on, but "
            f"{EMAIL_FROM_ENV if not sender else EMAIL_TO_ENV} is empty: set "
            f"{EMAIL_FROM_ENV} (the sender) and {EMAIL_TO_ENV} (comma-separated recipients), "
            f"or unset {SMTP_HOST_ENV}"
        )
    user = _text_variable(env, SMTP_USER_ENV) or None
    password = env.get(SMTP_PASSWORD_ENV) or None
    if user and not starttls:
        raise AlertConfigError(
            f"{SMTP_USER_ENV} is set but {SMTP_STARTTLS_ENV} is false: the password would "
            f"cross the network in clear; turn {SMTP_STARTTLS_ENV} on (the default)"
        )
    if user and not password:
        raise AlertConfigError(f"{SMTP_USER_ENV} is set but {SMTP_PASSWORD_ENV} is empty")
    return EmailSink(host, port, sender, recipients, starttls, user, password)


def _webhook_sink(env: Mapping[str, str]) -> WebhookSink | None:
    url = _text_variable(env, WEBHOOK_URL_ENV)
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        # Never the value: it is a credential.
        raise AlertConfigError(
            f"{WEBHOOK_URL_ENV} is not an http(s) URL with a host; give the webhook's full URL"
        )
    return WebhookSink(url)


def configured_sinks(env: Mapping[str, str] | None = None) -> list[Sink]:
    """The sinks the environment turns on (none: alerts are off); a bad setting raises."""
    env = os.environ if env is None else env
    return [sink for sink in (_webhook_sink(env), _email_sink(env)) if sink is not None]


@dataclass
class SentLog:
    """What a sensor keeps between evaluations, as its cursor (JSON).

    ``sent`` holds ``sink|alert key`` for every delivery that succeeded, newest last, bounded to
    ``MAX_SENT_KEYS``; ``after`` holds the sensor's read position in Dagster's event log, per
    event type (Dagster's own cursor strings).
    """

    sent: list[str] = field(default_factory=list)
    after: dict[str, str | None] = field(default_factory=dict)
    started: bool = False
    """False until the first evaluation with alerts on: the log is read from that moment."""

    @classmethod
    def parse(cls, cursor: str | None) -> SentLog:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(sent=list(data["sent"]), after=dict(data["after"]), started=True)

    def dump(self) -> str:
        return json.dumps({"sent": self.sent[-MAX_SENT_KEYS:], "after": self.after})

    def has_sent(self, sink: Sink, alert: Alert) -> bool:
        return self.has_sent_key(sink, alert.key)

    def has_sent_key(self, sink: Sink, key: str) -> bool:
        return f"{sink.name}|{key}" in self.sent

    def deliver(self, alerts: Iterable[Alert], sinks: Sequence[Sink]) -> Delivery:
        """Sends each alert to each sink that has not had it yet; a failure is kept, not
        raised, so one broken sink does not keep alerts from the other."""
        delivery = Delivery()
        for alert in alerts:
            for sink in sinks:
                if self.has_sent(sink, alert):
                    continue
                try:
                    sink.send(alert)
                except DeliveryError as error:
                    delivery.failed.append(f"{alert.kind} alert for {alert.partition}: {error}")
                    continue
                self.sent.append(f"{sink.name}|{alert.key}")
                delivery.sent.append(
                    f"{alert.kind} alert for {alert.partition} to {sink.describe()}"
                )
        return delivery


@dataclass
class Delivery:
    """What one evaluation sent and what failed, as log lines without secrets."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _first_line(text: str | None, limit: int = 300) -> str:
    """An error's first line: the gist, without a traceback in a chat message."""
    lines = (text or "").strip().splitlines()
    line = lines[0] if lines else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run_failed_alert(
    *,
    job: str,
    run_id: str,
    partition: str,
    failed_steps: Sequence[str],
    error_class: str,
    error_message: str | None,
) -> Alert:
    """One per partition, job, failed steps and error class: a retry that fails the same way is
    the same alert, a retry that fails elsewhere is a new one."""
    steps = ", ".join(sorted(failed_steps)) or "no step (the run itself)"
    return Alert(
        kind=AlertKind.RUN_FAILED,
        partition=partition,
        cause=f"{job}|{','.join(sorted(failed_steps))}|{error_class}",
        title=f"[mspo] run of {job} failed for partition {partition}",
        text=(
            f"Run {run_id} of job {job} failed for partition {partition}.\n"
            f"Failed: {steps}, with {error_class}: {_first_line(error_message) or '(no message)'}"
            "\nWhat to do: open the run in the Dagster UI (Runs, then this run id) for the step's "
            "log; once the cause is fixed, re-execute the run from failure, or materialise "
            f"partition {partition} again (Jobs > {job} > Partitions, or Launch backfill). "
            "Dagster's automatic retries that fail the same way are not alerted again."
        ),
    )


def check_error_alert(
    *, asset: str, check: str, partition: str, description: str | None, run_id: str
) -> Alert:
    return Alert(
        kind=AlertKind.CHECK_ERROR,
        partition=partition,
        cause=f"{asset}|{check}",
        title=f"[mspo] check {check} on {asset} failed (ERROR) for partition {partition}",
        text=(
            f"Asset check {check} on {asset} failed at ERROR severity for partition {partition} "
            f"(run {run_id}).\n{_first_line(description) or '(no description)'}\n"
            f"What to do: read the check's metadata in the Dagster UI (Assets > {asset} > "
            "Checks); fix the capture or the thresholds, then materialise partition "
            f"{partition} of {asset} again."
        ),
    )


def capture_missing_alert(
    *, day: dt.date, missing: Sequence[str], total: int, deadline: dt.time
) -> Alert:
    """One per day, whichever captures are missing (``CAPTURE_MISSING_CAUSE``)."""
    partition = day.isoformat()
    return Alert(
        kind=AlertKind.CAPTURE_MISSING,
        partition=partition,
        cause=CAPTURE_MISSING_CAUSE,
        title=f"[mspo] {len(missing)} capture(s) missing for {partition} at {deadline:%H:%M}",
        text=(
            f"At {deadline:%H:%M} Asia/Kuala_Lumpur, {len(missing)} of {total} raw capture(s) "
            f"of partition {partition} have no materialisation: {', '.join(sorted(missing))}.\n"
            "What to do: look at today's mspo_daily run in the Dagster UI (the schedule starts "
            "it at 06:00): if it failed or never started, materialise partition "
            f"{partition} of the missing raw assets (or of the whole mspo_daily job) today; "
            "after midnight the API can only serve a later register (a late capture)."
        ),
    )


def deadline_day(deadline: dt.time, now: dt.datetime | None = None) -> dt.date | None:
    """Today in Malaysia once its clock has passed the deadline, else None."""
    local = (now or dt.datetime.now(dt.UTC)).astimezone(MALAYSIA)
    return local.date() if local.time() >= deadline else None
