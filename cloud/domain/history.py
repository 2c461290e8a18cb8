"""Closed cases: the search an alarm centre runs on its history (by wearer, date
and outcome), and each case's outcome report (timeline, calls, notifications,
operator actions, response times), as data, as CSV, and audited as an export."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.domain.admin.base import actor
from cloud.domain.errors import NotFound
from cloud.domain.ports import Clock
from cloud.domain.uow import transaction
from cloud.domain.views import iso
from cloud.store.models import AlertCase, AuditEntry, CaseEvent, Command, Operator, Wearer

CALL_ACTIONS = ("call_back", "in_call", "call_ended", "call_state")
NOTIFY_ACTIONS = ("contact_notified", "contact_not_reached", "notification_delivery", "escalated",
                  "supervisors_alerted", "reminder")


def _cell(v: Any) -> Any:
    """A spreadsheet must not run what a wearer's note or a watch wrote: a text that
    a spreadsheet would read as a formula is quoted (a phone number stays as it is)."""
    if isinstance(v, str) and v[:1] in ("=", "@", "+", "-", "\t", "\r") and not re.fullmatch(r"[+-]?[\d .]+", v):
        return "'" + v
    return v


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds(), 1) if a and b else None


class CaseHistory:
    def __init__(self, sm: sessionmaker[Session], clock: Clock) -> None:
        self.sm, self.clock = sm, clock

    def search(self, op: Operator, *, wearer: str | None = None, start: datetime | None = None,
               end: datetime | None = None, outcome: str | None = None, limit: int = 50,
               offset: int = 0) -> dict[str, Any]:
        """Resolved cases of the operator's tenant, newest first; ``wearer`` matches part of
        the name, ``start``/``end`` the opening time (end exclusive)."""
        with self.sm() as s:
            q = (select(AlertCase, Wearer.name).outerjoin(Wearer, Wearer.id == AlertCase.wearer_id)
                 .where(AlertCase.tenant_id == op.tenant_id, AlertCase.status == "resolved"))
            if wearer:
                q = q.where(Wearer.name.ilike(f"%{wearer}%"))
            if start is not None:
                q = q.where(AlertCase.opened_at >= start)
            if end is not None:
                q = q.where(AlertCase.opened_at < end)
            if outcome:
                q = q.where(AlertCase.outcome == outcome)
            rows = s.execute(q.order_by(AlertCase.opened_at.desc(), AlertCase.id.desc())
                             .limit(limit + 1).offset(offset)).all()
            names = self._operator_names(s, op.tenant_id)
            items = [{"id": c.id, "wearer_name": name, "device_id": c.device_id, "kind": c.kind,
                      "opened_at": iso(c.opened_at), "resolved_at": iso(c.resolved_at), "outcome": c.outcome,
                      "claimed_by": names.get(c.claimed_by) if c.claimed_by else None,
                      "time_to_claim_s": _seconds(c.opened_at, c.claimed_at)} for c, name in rows[:limit]]
            return {"items": items, "more": len(rows) > limit, "limit": limit, "offset": offset}

    @staticmethod
    def _operator_names(s: Session, tenant_id: int) -> dict[int, str]:
        return dict(s.execute(select(Operator.id, Operator.display_name).where(Operator.tenant_id == tenant_id)).all())

    def report(self, op: Operator, case_id: int) -> dict[str, Any]:
        with self.sm() as s:
            case = s.get(AlertCase, case_id)
            if case is None or case.tenant_id != op.tenant_id:
                raise NotFound("no such case")
            wearer = s.get(Wearer, case.wearer_id) if case.wearer_id else None
            events = list(s.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)))
            commands = list(s.scalars(select(Command).where(Command.case_id == case.id).order_by(Command.created_at)))
            names = self._operator_names(s, op.tenant_id)
        timeline: list[dict[str, Any]] = [{"at": iso(e.at), "actor": e.actor, "action": e.action,
                                           "detail": e.detail or {}} for e in events]
        first_call = next((e.at for e in events if e.action in ("call_back", "in_call")), None)
        return {
            "case": {"id": case.id, "kind": case.kind, "device_id": case.device_id,
                     "wearer_name": wearer.name if wearer else None, "outcome": case.outcome,
                     "opened_at": iso(case.opened_at), "claimed_at": iso(case.claimed_at),
                     "resolved_at": iso(case.resolved_at), "status": case.status,
                     "claimed_by": names.get(case.claimed_by) if case.claimed_by else None},
            "response_times": {"to_claim_s": _seconds(case.opened_at, case.claimed_at),
                               "to_first_call_s": _seconds(case.opened_at, first_call),
                               "to_resolution_s": _seconds(case.opened_at, case.resolved_at)},
            "timeline": timeline,
            "calls": [t for t in timeline if t["action"] in CALL_ACTIONS]
            + [{"at": iso(c.created_at), "actor": "system", "action": f"command {c.type}",
                "detail": {"status": c.status, "acked_at": iso(c.acked_at)}} for c in commands if c.type == "call"],
            "notifications": [t for t in timeline if t["action"] in NOTIFY_ACTIONS],
            "operator_actions": [t for t in timeline if t["actor"].startswith("operator:")],
        }

    def export_csv(self, op: Operator, case_id: int) -> str:
        """The report as CSV (one line per timeline event, the response times first);
        the export itself is audited (action ``export``)."""
        r = self.report(op, case_id)
        with transaction(self.sm) as tx:
            tx.session.add(AuditEntry(at=self.clock.now(), actor=actor(op), action="export", tenant_id=op.tenant_id,
                                      target=f"case:{case_id}", detail={"what": "outcome report", "format": "csv"}))
        out = io.StringIO()
        w = csv.writer(out)
        c, t = r["case"], r["response_times"]
        w.writerow(["case", "wearer", "kind", "outcome", "opened_at", "resolved_at", "operator",
                    "time_to_claim_s", "time_to_first_call_s", "time_to_resolution_s"])
        w.writerow([_cell(v) for v in (c["id"], c["wearer_name"] or c["device_id"], c["kind"], c["outcome"],
                                       c["opened_at"], c["resolved_at"], c["claimed_by"], t["to_claim_s"],
                                       t["to_first_call_s"], t["to_resolution_s"])])
        w.writerow([])
        w.writerow(["at", "actor", "action", "detail"])
        for e in r["timeline"]:
            detail = json.dumps(e["detail"], ensure_ascii=False, sort_keys=True)
            w.writerow([_cell(v) for v in (e["at"], e["actor"], e["action"], detail)])
        return out.getvalue()
