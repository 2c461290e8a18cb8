"""A voice call's state as the watch's modem reports it (a status with a ``call``
part, docs/protocol.md), recorded on the case it belongs to.

The case is the one whose ``call`` command asked for the call (``cid``), else the
device's open case. A call outside any case (a relative ringing the watch on an
ordinary day) is not the centre's business and is not recorded. Each report is
one ``call_state`` event on the timeline, which is all the console shows of a
call ("Watch dialling 112…", "Ringing", "Connected at …", "Call ended after
2 min 14 s", "Not answered", "Busy"): nothing is inferred from the request. A
redelivered status records nothing twice (the event keeps the message's mid).

The case follows the call: connected makes a claimed case "in call", and the end
of the call takes an "in call" case back to "claimed" (until now it stayed "in
call" until the case was resolved, whatever the call did)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud import protocol
from cloud.domain.casefile import open_case_of
from cloud.domain.lifecycle import move
from cloud.domain.uow import Tx
from cloud.store.models import AlertCase, CaseEvent, Command, Device

ACTION = "call_state"


def record(tx: Tx, device: Device, st: protocol.Status, now: datetime) -> AlertCase | None:
    """The call event of status ``st`` on its case; the case if it changed, else None."""
    call = st.call
    assert call is not None  # the caller checks
    s = tx.session
    case = case_of_call(s, device.id, call.cid)
    if case is None or _recorded(s, case.id, st.mid):
        return None
    detail: dict[str, Any] = {"mid": st.mid, **call.model_dump(exclude_none=True)}
    if st.ts is not None:
        detail["watch_ts"] = st.ts  # when the watch saw it (its clock), beside the receive time
    actor = f"device:{device.id}"
    if call.state == "active" and case.status == "claimed":
        move(s, case, "in_call", actor=actor, now=now, detail=detail, action=ACTION)
    elif call.state == "ended" and case.status == "in_call":
        move(s, case, "claimed", actor=actor, now=now, detail=detail, action=ACTION)
    else:
        s.add(CaseEvent(case_id=case.id, at=now, actor=actor, action=ACTION, detail=detail))
    return case


def case_of_call(s: Session, device_id: str, cid: str | None) -> AlertCase | None:
    """The case whose call command this call answers, else the device's open case."""
    if cid:
        cmd = s.get(Command, cid)
        if cmd is not None and cmd.device_id == device_id and cmd.case_id is not None:
            return s.get(AlertCase, cmd.case_id)
    return open_case_of(s, device_id)


def _recorded(s: Session, case_id: int, mid: str) -> bool:
    details = s.scalars(select(CaseEvent.detail).where(CaseEvent.case_id == case_id, CaseEvent.action == ACTION))
    return any(d is not None and d.get("mid") == mid for d in details)
