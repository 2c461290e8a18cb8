"""What the ingest believes of a message: parsing (``protocol.parse_up``), rejection
with its reason, and the alarm whose fields are wrong but which is an alarm all the
same (salvaged, flagged; never rejected)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from cloud import metrics, protocol
from cloud.domain.ingest.outcome import Outcome

if TYPE_CHECKING:
    from cloud.domain.ingest.ingestor import Ingestor

log = logging.getLogger("pers.ingest")
# The kinds stored together, a batch of them in one transaction (reports.py).
BATCH_KINDS = frozenset({"loc", "status", "presence"})


class Parsed(NamedTuple):
    """A valid up message, and where it stood in its batch."""
    i: int
    topic: str
    device_id: str
    kind: str
    msg: object


def reject(reason: str, topic: str, detail: str) -> Outcome:
    metrics.REJECTED.labels(reason).inc()
    log.warning("rejected up message", extra={"reason": reason, "topic": topic[:200], "detail": detail})
    return Outcome(False, reason=reason)


def is_unreadable_alarm(topic: str, rej: protocol.Rejected) -> bool:
    """Bytes on an alert topic that are no message at all: an alarm all the same."""
    return rej.reason in protocol.ALARM_UNREADABLE and topic.endswith("/alert")


def unreadable_alarm(topic: str, payload: bytes, rej: protocol.Rejected) -> tuple[str, protocol.Alert]:
    """The SOS that stands for an unreadable alarm. Its mid is derived from the bytes,
    so the watch's re-sends join its case; no ack is sent, the watch knows no such mid."""
    device_id, _ = protocol.split_topic(topic)
    alarm = protocol.Alert(v=1, mid=protocol.synthetic_mid(payload), kind="sos")
    alarm._flags = ({"field": "message", "problem": f"unreadable ({rej.reason}): kept as a dead letter"},
                    {"field": "mid", "problem": "none readable: derived from the message's bytes"})
    return device_id, alarm


def bare_alarms(topic: str, payload: bytes, exc: Exception) -> Iterator[tuple[str, protocol.Alert]]:
    """An alarm whose full form could not be stored, with nothing but its kind: under its
    own mid first (so the watch gets its ack), then under a mid of its bytes. Nothing
    if the message is no alarm."""
    try:
        device_id, _, msg = protocol.parse_up(topic, payload)
    except Exception:  # noqa: BLE001 (Rejected, or whatever made the first try fail)
        return
    if not isinstance(msg, protocol.Alert) or msg.kind in protocol.NON_ALARM_ALERT_KINDS:
        return
    problem = {"field": "message", "problem": f"could not be stored ({type(exc).__name__}): "
                                              "details dropped, kept as a dead letter"}
    made_up = {"field": "mid", "problem": "derived from the message's bytes: its own would not store"}
    for mid, extra in ((msg.mid, ()), (protocol.synthetic_mid(payload), (made_up,))):
        bare = protocol.Alert(v=1, mid=mid, kind=msg.kind, trigger=msg.trigger)
        bare._flags = (*msg.flags, problem, *extra)
        yield device_id, bare


@dataclass
class AlarmCheck:
    flags: list[dict[str, Any]]
    skew_s: int       # device time minus ours (0 without a device time)
    skewed: bool      # stamped in the future beyond future_after_s
    late: bool        # delivered late, by a clock we believe


def check_alarm(ing: Ingestor, device_id: str, alert: protocol.Alert, reused: bool) -> AlarmCheck:
    """The alarm's flags (what the watch got wrong, salvaged), and its clock.

    The device's time is believed only within [now - max_alert_age_s, now +
    future_after_s]: outside it the clock is wrong (a bad network time, a reset
    RTC) and the receive time stands. Still an alarm, flagged."""
    flags = alert.flags
    for flag in flags:
        metrics.ALARMS_SALVAGED.labels(flag["field"].split(".")[0]).inc()
    if flags:
        log.warning("alarm with bad fields: dropped and flagged",
                    extra={"device_id": device_id, "mid": alert.mid, "flags": flags})
    skew_s = alert.ts - ing.clock.unix() if alert.ts is not None else 0
    skewed = skew_s > ing.future_after_s
    stale = alert.ts is not None and -skew_s > ing.max_alert_age_s
    late = alert.ts is not None and not stale and -skew_s > ing.late_after_s
    if skewed or stale:
        metrics.CLOCK_SKEW.labels(alert.kind).inc()
        log.warning("alert stamped far from now: device clock wrong",
                    extra={"device_id": device_id, "mid": alert.mid, "skew_s": skew_s})
        flags = [*flags, {"field": "ts", "problem": f"watch clock wrong by {abs(skew_s)} s: "
                                                    "the time of receipt is used", "got": str(alert.ts)}]
    if reused:
        # The watch forgot it used this id (wiped, reflashed, reset): a new alarm.
        flags = [*flags, {"field": "mid", "problem": "message id used before (another message, or "
                                                     "beyond the retry window): the watch was probably reset",
                          "got": alert.mid}]
    return AlarmCheck(flags, skew_s, skewed, late)
