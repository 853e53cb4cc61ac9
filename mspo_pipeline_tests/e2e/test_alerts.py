"""Alerts reach a real webhook server and a real SMTP server once per partition and cause.

The sensors are evaluated as the daemon would, against a test instance holding real runs; the
sinks are local servers (``alert_sinks``). The deployment test repeats the three kinds through
the daemon itself.
"""

import datetime as dt
import json
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from mspo_pipeline.defs.alerts import (
    RAW_KEYS,
    alert_capture_missing,
    alert_check_error,
    alert_run_failed,
)
from mspo_pipeline.lib import alerts
from mspo_pipeline.lib.alerts import (
    Alert,
    AlertConfigError,
    AlertKind,
    DeliveryError,
    EmailSink,
    SentLog,
    WebhookSink,
    capture_deadline,
    configured_sinks,
    deadline_day,
    sensor_interval,
)
from mspo_pipeline.lib.days import MALAYSIA, today_in_malaysia
from mspo_pipeline_tests.alert_sinks import (
    WEBHOOK_SECRET,
    MailSink,
    mail_sink,
    self_signed_tls,
    webhook_sink,
)
from mspo_pipeline_tests.alert_sinks import WebhookSink as WebhookServer
from mspo_pipeline_tests.deployment import free_port

ALERT_VARIABLES = (
    alerts.WEBHOOK_URL_ENV,
    alerts.SMTP_HOST_ENV,
    alerts.SMTP_PORT_ENV,
    alerts.SMTP_USER_ENV,
    alerts.SMTP_PASSWORD_ENV,
    alerts.SMTP_STARTTLS_ENV,
    alerts.EMAIL_FROM_ENV,
    alerts.EMAIL_TO_ENV,
    alerts.DEADLINE_ENV,
)
PASSWORD = "smtp-password-never-logged"
SENDER = "mspo-alerts@example.org"
RECIPIENTS = ("oncall@example.org", "data@example.org")


def _alert(partition: str = "2026-11-22", cause: str = "job|raw__countries|ValueError") -> Alert:
    return Alert(AlertKind.RUN_FAILED, partition, cause, f"title {partition}", f"text {cause}")


@pytest.fixture(autouse=True)
def _no_alert_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets what it needs: a developer's own alert settings must not leak in."""
    for name in ALERT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with webhook_sink() as sink:
        yield sink


@pytest.fixture
def mail() -> Iterator[MailSink]:
    with mail_sink() as sink:
        yield sink


@dataclass(frozen=True)
class Sinks:
    webhook: WebhookServer
    mail: MailSink

    def texts(self) -> list[str]:
        return self.webhook.texts()

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.mail.messages]


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch, webhook: WebhookServer, mail: MailSink) -> Sinks:
    """Both sinks on, through the variables a deployment sets."""
    monkeypatch.setenv(alerts.WEBHOOK_URL_ENV, webhook.url)
    monkeypatch.setenv(alerts.SMTP_HOST_ENV, mail.host)
    monkeypatch.setenv(alerts.SMTP_PORT_ENV, str(mail.port))
    monkeypatch.setenv(alerts.SMTP_STARTTLS_ENV, "false")
    monkeypatch.setenv(alerts.EMAIL_FROM_ENV, SENDER)
    monkeypatch.setenv(alerts.EMAIL_TO_ENV, " , ".join(RECIPIENTS))
    return Sinks(webhook, mail)


# --- settings ------------------------------------------------------------------------------


def test_alerts_are_off_when_nothing_is_set() -> None:
    assert configured_sinks({}) == []
    assert configured_sinks({alerts.WEBHOOK_URL_ENV: "  ", alerts.SMTP_HOST_ENV: ""}) == []


def test_each_variable_turns_its_sink_on() -> None:
    (webhook,) = configured_sinks({alerts.WEBHOOK_URL_ENV: "https://hooks.example.org/x/y"})
    assert isinstance(webhook, WebhookSink)
    (email,) = configured_sinks(
        {
            alerts.SMTP_HOST_ENV: "smtp.example.org",
            alerts.EMAIL_FROM_ENV: SENDER,
            alerts.EMAIL_TO_ENV: "a@example.org,b@example.org",
        }
    )
    assert isinstance(email, EmailSink)
    assert (email.port, email.starttls, email.recipients) == (
        587,
        True,
        ("a@example.org", "b@example.org"),
    )
    (plain,) = configured_sinks(
        {
            alerts.SMTP_HOST_ENV: "relay",
            alerts.SMTP_STARTTLS_ENV: "false",
            alerts.EMAIL_FROM_ENV: SENDER,
            alerts.EMAIL_TO_ENV: "a@example.org",
        }
    )
    assert isinstance(plain, EmailSink)
    assert plain.port == 25


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({alerts.SMTP_HOST_ENV: "relay", alerts.EMAIL_FROM_ENV: SENDER}, alerts.EMAIL_TO_ENV),
        ({alerts.SMTP_HOST_ENV: "relay", alerts.EMAIL_TO_ENV: "a@b.c"}, alerts.EMAIL_FROM_ENV),
        (
            {
                alerts.SMTP_HOST_ENV: "relay",
                alerts.EMAIL_FROM_ENV: SENDER,
                alerts.EMAIL_TO_ENV: "a@b.c",
                alerts.SMTP_STARTTLS_ENV: "false",
                alerts.SMTP_USER_ENV: "me",
                alerts.SMTP_PASSWORD_ENV: PASSWORD,
            },
            alerts.SMTP_STARTTLS_ENV,
        ),
        (
            {
                alerts.SMTP_HOST_ENV: "relay",
                alerts.EMAIL_FROM_ENV: SENDER,
                alerts.EMAIL_TO_ENV: "a@b.c",
                alerts.SMTP_USER_ENV: "me",
            },
            alerts.SMTP_PASSWORD_ENV,
        ),
        ({alerts.WEBHOOK_URL_ENV: f"hooks.slack.com/services/{WEBHOOK_SECRET}"}, "URL"),
        ({alerts.SMTP_HOST_ENV: "relay", alerts.SMTP_STARTTLS_ENV: "maybe"}, "boolean"),
    ],
)
def test_a_bad_setting_names_the_variable_and_never_the_secret(
    env: dict[str, str], named: str
) -> None:
    with pytest.raises(AlertConfigError, match=named) as raised:
        configured_sinks(env)
    assert WEBHOOK_SECRET not in str(raised.value)
    assert PASSWORD not in str(raised.value)


def test_the_deadline_and_the_interval_have_defaults_and_reject_nonsense() -> None:
    assert capture_deadline(None) == dt.time(7)
    assert capture_deadline("00:00") == dt.time(0)
    assert sensor_interval("") == 60
    assert sensor_interval("5") == 5
    with pytest.raises(AlertConfigError, match=alerts.DEADLINE_ENV):
        capture_deadline("7am")
    with pytest.raises(AlertConfigError, match=alerts.INTERVAL_ENV):
        sensor_interval("0")


def test_the_deadline_is_read_on_the_malaysian_clock() -> None:
    # 22:59 UTC is 06:59 the next day in Kuala Lumpur; 23:00 UTC is 07:00.
    before = dt.datetime(2026, 11, 21, 22, 59, tzinfo=dt.UTC)
    at = dt.datetime(2026, 11, 21, 23, 0, tzinfo=dt.UTC)
    assert deadline_day(dt.time(7), before) is None
    assert deadline_day(dt.time(7), at) == dt.date(2026, 11, 22)
    assert at.astimezone(MALAYSIA).hour == 7


def test_the_sinks_never_show_their_secret() -> None:
    webhook = WebhookSink(f"https://hooks.slack.com/services/{WEBHOOK_SECRET}")
    email = EmailSink("smtp.example.org", 587, SENDER, RECIPIENTS, True, "me", PASSWORD)
    for shown in (repr(webhook), webhook.describe(), repr(email), email.describe()):
        assert WEBHOOK_SECRET not in shown
        assert PASSWORD not in shown
    assert webhook.describe() == "webhook at hooks.slack.com"


# --- senders -------------------------------------------------------------------------------


def test_the_webhook_gets_slack_json(webhook: WebhookServer) -> None:
    alert = _alert()
    WebhookSink(webhook.url).send(alert)
    assert webhook.received == [{"text": alert.message}]
    assert webhook.paths == [f"/services/{WEBHOOK_SECRET}"]


def test_a_refusing_or_unreachable_webhook_raises_without_its_secret(
    webhook: WebhookServer,
) -> None:
    webhook.status = 500
    with pytest.raises(DeliveryError, match="HTTP 500") as refused:
        WebhookSink(webhook.url).send(_alert())
    closed = f"http://127.0.0.1:{free_port()}/services/{WEBHOOK_SECRET}"
    with pytest.raises(DeliveryError, match="could not be reached") as unreachable:
        WebhookSink(closed).send(_alert())
    for error in (refused.value, unreachable.value):
        # Not in the message, nor in a chained exception a traceback would print.
        assert WEBHOOK_SECRET not in "".join(traceback.format_exception(error))


def test_the_email_reaches_the_smtp_server(mail: MailSink) -> None:
    alert = _alert()
    EmailSink(mail.host, mail.port, SENDER, RECIPIENTS, starttls=False).send(alert)
    (message,) = mail.messages
    assert message["Subject"] == alert.title
    assert message["From"] == SENDER
    assert mail.envelopes == [(SENDER, list(RECIPIENTS))]
    assert message.get_content().strip() == alert.text


def test_the_email_goes_over_verified_starttls_with_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls, certificate = self_signed_tls(tmp_path)
    with mail_sink(tls=tls, login=("mspo", PASSWORD)) as relay:
        relay_sink = EmailSink(relay.host, relay.port, SENDER, RECIPIENTS, True, "mspo", PASSWORD)
        # Not yet trusted: the certificate is refused before the password is sent.
        with pytest.raises(DeliveryError, match="SSLCertVerificationError") as untrusted:
            relay_sink.send(_alert())
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
        wrong = EmailSink(relay.host, relay.port, SENDER, RECIPIENTS, True, "mspo", "wrong")
        with pytest.raises(DeliveryError, match="SMTP code 535") as refused:
            wrong.send(_alert())
        relay_sink.send(_alert())
    assert len(relay.messages) == 1
    for error in (untrusted.value, refused.value):
        assert PASSWORD not in "".join(traceback.format_exception(error))


def test_an_unreachable_smtp_server_raises_a_delivery_error() -> None:
    sink = EmailSink("127.0.0.1", free_port(), SENDER, RECIPIENTS, starttls=False)
    with pytest.raises(DeliveryError, match=r"email via 127\.0\.0\.1"):
        sink.send(_alert())


# --- dedup ---------------------------------------------------------------------------------


def test_an_alert_goes_once_to_each_sink(sinks: Sinks) -> None:
    log = SentLog()
    configured = configured_sinks()
    first = log.deliver([_alert(), _alert()], configured)
    again = SentLog.parse(log.dump()).deliver([_alert()], configured)
    other = log.deliver([_alert(partition="2026-11-23")], configured)
    assert (len(first.sent), first.failed, again.sent, len(other.sent)) == (2, [], [], 2)
    assert len(sinks.texts()) == len(sinks.mail.messages) == 2


def test_a_failed_sink_is_retried_without_repeating_the_other(sinks: Sinks) -> None:
    log = SentLog()
    configured = configured_sinks()
    sinks.webhook.status = 503
    broken = log.deliver([_alert()], configured)
    assert len(broken.failed) == 1 and len(broken.sent) == 1
    sinks.webhook.status = 200
    healed = SentLog.parse(log.dump()).deliver([_alert()], configured)
    assert [line.split(" to ")[-1] for line in healed.sent] == [configured[0].describe()]
    assert len(sinks.texts()) == len(sinks.mail.messages) == 1


def test_the_cursor_keeps_the_newest_keys_only() -> None:
    log = SentLog(sent=[f"webhook|k{i}" for i in range(alerts.MAX_SENT_KEYS + 50)])
    kept = SentLog.parse(log.dump()).sent
    assert len(kept) == alerts.MAX_SENT_KEYS
    assert kept[-1] == f"webhook|k{alerts.MAX_SENT_KEYS + 49}"


# --- the sensors, on a test instance --------------------------------------------------------

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="Asia/Kuala_Lumpur")
BROKEN_DAYS = {"2026-11-20", "2026-11-21"}


class SnapshotBrokeError(RuntimeError):
    """The failure the test capture raises."""


@dg.asset(key=["raw", "test_capture"], partitions_def=DAYS)
def capture(context: dg.AssetExecutionContext) -> None:
    if context.partition_key in BROKEN_DAYS:
        raise SnapshotBrokeError(f"partition {context.partition_key}: the API sent nothing")


@dg.asset(
    key=["validated", "test_table"],
    partitions_def=DAYS,
    check_specs=[
        dg.AssetCheckSpec("row_count_vs_previous", asset=["validated", "test_table"]),
        dg.AssetCheckSpec("quarantine_share", asset=["validated", "test_table"]),
        dg.AssetCheckSpec("primary_key_unique", asset=["validated", "test_table"]),
    ],
)
def checked(context: dg.AssetExecutionContext) -> Iterator[dg.Output | dg.AssetCheckResult]:
    yield dg.Output(None)
    error = dg.AssetCheckSeverity.ERROR
    yield dg.AssetCheckResult(
        check_name="row_count_vs_previous", passed=False, severity=error, description="drop 90 %"
    )
    yield dg.AssetCheckResult(
        check_name="quarantine_share", passed=False, severity=dg.AssetCheckSeverity.WARN
    )
    yield dg.AssetCheckResult(check_name="primary_key_unique", passed=True, severity=error)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def _evaluate(
    sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def _cursor(result: dg.SensorResult | dg.SkipReason) -> str | None:
    assert isinstance(result, dg.SensorResult), result
    return result.cursor


def _logged(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> str:
    """Everything logged so far: Python logging, and the sensor logger's own stderr handler."""
    return caplog.text + capfd.readouterr().err


def _materialize(assets: list[dg.AssetsDefinition], instance: dg.DagsterInstance, day: str) -> None:
    dg.materialize(assets, instance=instance, partition_key=day, raise_on_error=False)


def test_every_sensor_is_a_no_op_while_alerts_are_off(instance: dg.DagsterInstance) -> None:
    for sensor in (alert_run_failed, alert_check_error, alert_capture_missing):
        result = _evaluate(sensor, instance, None)
        assert isinstance(result, dg.SkipReason), sensor.name
        assert "alerts are off" in (result.skip_message or "")


def test_a_failed_run_alerts_once_per_partition_and_cause(
    sinks: Sinks,
    instance: dg.DagsterInstance,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    started = _cursor(_evaluate(alert_run_failed, instance, None))
    # Each broken day fails twice the same way, as a run and its automatic retry would.
    for day in ["2026-11-20", "2026-11-20", "2026-11-21", "2026-11-21", "2026-11-22"]:
        _materialize([capture], instance, day)

    result = _evaluate(alert_run_failed, instance, started)
    again = _evaluate(alert_run_failed, instance, _cursor(result))

    texts = sinks.texts()
    assert len(texts) == 2, texts
    assert sorted(sinks.subjects()) == sorted(text.splitlines()[0] for text in texts)
    for day, text in zip(sorted(BROKEN_DAYS), sorted(texts), strict=True):
        assert f"failed for partition {day}" in text
        assert "raw__test_capture" in text
        assert "SnapshotBrokeError" in text
        assert f"partition {day}: the API sent nothing" in text
        assert "What to do" in text
    assert isinstance(again, dg.SensorResult) and again.skip_reason is not None
    assert len(sinks.texts()) == len(sinks.mail.messages) == 2
    logged = _logged(caplog, capfd)
    assert "sent run_failed alert for 2026-11-20 to webhook at 127.0.0.1" in logged
    assert WEBHOOK_SECRET not in logged
    assert WEBHOOK_SECRET not in (_cursor(again) or "")


def test_runs_before_the_first_evaluation_are_not_alerted(
    sinks: Sinks, instance: dg.DagsterInstance
) -> None:
    _materialize([capture], instance, "2026-11-20")
    started = _cursor(_evaluate(alert_run_failed, instance, None))
    _evaluate(alert_run_failed, instance, started)
    assert sinks.texts() == [] and sinks.mail.messages == []


def test_a_failed_delivery_is_retried_on_the_next_tick(
    sinks: Sinks,
    instance: dg.DagsterInstance,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    started = _cursor(_evaluate(alert_run_failed, instance, None))
    _materialize([capture], instance, "2026-11-20")
    sinks.webhook.status = 500
    broken = _evaluate(alert_run_failed, instance, started)
    logged = _logged(caplog, capfd)
    assert "HTTP 500" in logged and WEBHOOK_SECRET not in logged
    sinks.webhook.status = 200
    healed = _evaluate(alert_run_failed, instance, _cursor(broken))
    _evaluate(alert_run_failed, instance, _cursor(healed))
    assert len(sinks.texts()) == len(sinks.mail.messages) == 1


def test_a_check_at_error_alerts_once_per_check_and_partition(
    sinks: Sinks, instance: dg.DagsterInstance
) -> None:
    started = _cursor(_evaluate(alert_check_error, instance, None))
    for day in ["2026-11-20", "2026-11-20", "2026-11-21"]:
        _materialize([checked], instance, day)

    result = _evaluate(alert_check_error, instance, started)
    _evaluate(alert_check_error, instance, _cursor(result))

    texts = sorted(sinks.texts())
    assert len(texts) == len(sinks.mail.messages) == 2, texts
    for day, text in zip(["2026-11-20", "2026-11-21"], texts, strict=True):
        assert (
            f"check row_count_vs_previous on validated/test_table failed (ERROR) for "
            f"partition {day}" in text
        )
        assert "drop 90 %" in text
        # WARN failures and passing checks are the UI's business, not an alert's.
        assert "quarantine_share" not in text and "primary_key_unique" not in text


def test_a_capture_missing_past_the_deadline_alerts_once_a_day(
    sinks: Sinks, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(alerts.DEADLINE_ENV, "00:00")
    today = today_in_malaysia().isoformat()
    stored = RAW_KEYS[0]
    instance.report_runless_asset_event(dg.AssetMaterialization(stored, partition=today))

    result = _evaluate(alert_capture_missing, instance, None)
    _evaluate(alert_capture_missing, instance, _cursor(result))

    (text,) = sinks.texts()
    assert len(sinks.mail.messages) == 1
    assert f"partition {today}" in text
    assert f"{len(RAW_KEYS) - 1} of {len(RAW_KEYS)} raw capture(s)" in text
    assert stored.to_user_string() not in text
    assert all(key.to_user_string() in text for key in RAW_KEYS[1:])


def test_no_capture_alert_when_every_capture_is_stored(
    sinks: Sinks, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(alerts.DEADLINE_ENV, "00:00")
    today = today_in_malaysia().isoformat()
    for key in RAW_KEYS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=today))
    result = _evaluate(alert_capture_missing, instance, None)
    assert isinstance(result, dg.SensorResult) and result.skip_reason is not None
    assert sinks.texts() == [] and sinks.mail.messages == []


def test_the_cursor_is_plain_json_without_secrets(sinks: Sinks) -> None:
    log = SentLog()
    log.deliver([_alert()], configured_sinks())
    data = json.loads(log.dump())
    assert data["sent"] == [f"webhook|{_alert().key}", f"email|{_alert().key}"]
    assert WEBHOOK_SECRET not in log.dump()
