"""What supervisors read: devices that need attention, the audit trail, case reports."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from cloud.domain import audit as audit_log
from cloud.domain.admin.base import AdminBase
from cloud.domain.views import device_view, iso
from cloud.store.models import AlertCase, Device, Operator, Wearer


class ReportsAdmin(AdminBase):
    def devices_needing_attention(self, op: Operator, *, low_battery_pct: int = 20, limit: int = 200) -> dict[str, Any]:
        """Devices not online (suspect, offline) or low on battery, worst first."""
        with self.sm() as s:
            q = (select(Device, Wearer.name).outerjoin(Wearer, Wearer.id == Device.wearer_id)
                 .where(Device.tenant_id == op.tenant_id,
                        or_(Device.presence.in_(("suspect", "offline")), Device.batt_pct <= low_battery_pct)))
            rows = s.execute(q.order_by(Device.id).limit(limit)).all()
            rank = {"offline": 0, "suspect": 1}
            items = []
            for d, wearer_name in rows:
                problems = []
                if d.presence in rank:
                    problems.append(d.presence)
                if d.batt_pct is not None and d.batt_pct <= low_battery_pct:
                    problems.append("low_battery")
                items.append({**device_view(d), "wearer_name": wearer_name, "problems": problems})
            items.sort(key=lambda v: (rank.get(v["presence"], 2), v["batt_pct"] if v["batt_pct"] is not None else 101))
            return {"items": items, "low_battery_pct": low_battery_pct,
                    "counts": {"offline": sum(1 for v in items if v["presence"] == "offline"),
                               "suspect": sum(1 for v in items if v["presence"] == "suspect"),
                               "low_battery": sum(1 for v in items if "low_battery" in v["problems"])}}

    # --- audit and reports ---------------------------------------------------------------------------
    def audit(self, op: Operator, *, user: str | None = None, action: str | None = None,
              start: datetime | None = None, end: datetime | None = None, limit: int = 100,
              offset: int = 0) -> dict[str, Any]:
        """The tenant's audit log, newest first, by user, action prefix and time (cloud/domain/audit.py)."""
        return audit_log.search(self.sm, op.tenant_id, user=user, action=action, start=start, end=end,
                                limit=limit, offset=offset)

    def case_report(self, op: Operator, start: datetime, end: datetime) -> dict[str, Any]:
        """Cases opened in [start, end): counts by kind, by outcome, by centre, escalations."""
        with self.sm() as s:
            base = select(AlertCase).where(AlertCase.tenant_id == op.tenant_id, AlertCase.opened_at >= start,
                                           AlertCase.opened_at < end)
            cases = list(s.scalars(base))
        out: dict[str, Any] = {"from": iso(start), "to": iso(end), "cases": len(cases), "by_kind": {},
                               "by_outcome": {}, "by_centre": {}, "escalated": 0, "open": 0}
        for c in cases:
            out["by_kind"][c.kind] = out["by_kind"].get(c.kind, 0) + 1
            if c.outcome:
                out["by_outcome"][c.outcome] = out["by_outcome"].get(c.outcome, 0) + 1
            key = str(c.centre_id) if c.centre_id else "unrouted"
            out["by_centre"][key] = out["by_centre"].get(key, 0) + 1
            out["escalated"] += 1 if (c.escalation_level or 0) > 0 else 0
            out["open"] += 1 if c.status != "resolved" else 0
        return out


