"""Everything the ingest sends out: acks to the watch (commands) and live case events
to the consoles. All of it is queued on the transaction and leaves only after its
commit (``uow.Tx.after_commit``): a watch is never told "received" of an alert the
cloud might still lose."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from cloud import protocol
from cloud.domain.casefile import publish_case as _publish_case
from cloud.domain.ingest_ids import new_cid
from cloud.domain.ports import Clock, CommandSender, EventSink
from cloud.domain.uow import Tx
from cloud.store.models import AlertCase, Command

ACK_TEXT = {"sos": "Help is coming", "fall": "Help is coming", "low_battery": "Battery low noted",
            "cancel": "An operator will still check on you"}


def ack_alert(tx: Tx, sender: CommandSender, clock: Clock, device_id: str, alert: protocol.Alert,
              case: AlertCase | None = None, stage: Literal["received", "closed"] = "received") -> None:
    """An ``alert_ack`` command, stored (on the case, if given) and sent after commit."""
    if any(f["field"] == "mid" for f in alert.flags):
        return  # a mid the cloud made up (protocol.synthetic_mid): the watch knows no such alert
    text = ACK_TEXT.get(alert.kind, "Received") if stage == "received" else "Alarm over"
    cmd = protocol.AlertAckCmd(cid=new_cid(), ts=clock.unix(), ref=alert.mid, stage=stage, text=text)
    body = cmd.model_dump(mode="json", exclude_none=True)
    tx.session.add(Command(cid=cmd.cid, device_id=device_id, case_id=case.id if case else None,
                           type=cmd.type, payload=body, status="sent", created_at=clock.now()))
    tx.after_commit(lambda: sender.send_command(device_id, body))


def publish_case(tx: Tx, events: EventSink, case: AlertCase, now: datetime) -> None:
    """The case as the consoles show it (as of ``now``), published after commit."""
    _publish_case(tx, events, case, now)
