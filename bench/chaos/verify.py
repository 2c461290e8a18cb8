"""After the chaos run: what the database holds against what was sent. Every alert
stored exactly once (an id re-used after a reset is a second alert), one case per
device with its presses counted, every case's audit trail in order, unreadable bytes
quarantined with an alarm stored for each."""
from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path


def verify(db_path: Path, sent: dict[tuple[str, str, int], float], junk=()) -> dict:
    db = sqlite3.connect(db_path)
    rows = db.execute("SELECT device_id, mid FROM alerts WHERE device_id LIKE 'chaos-%'").fetchall()
    # Unreadable bytes are stored as alarms under a mid of their bytes ("x-..."): one per distinct body.
    unreadable = sum(1 for _, m in rows if m.startswith("x-"))
    stored = Counter((d, m) for d, m in rows if not m.startswith("x-"))
    expected = Counter((d, m) for d, m, _gen in sent)  # an id re-used after a reset: expected twice
    lost = [f"{d}/{m}" for (d, m), n in expected.items() if stored[(d, m)] < n]
    dup_rows = sum(max(0, n - expected[k]) for k, n in stored.items())
    cases = db.execute("SELECT device_id, COUNT(*), SUM(press_count) FROM alert_cases "
                       "WHERE device_id LIKE 'chaos-%' GROUP BY device_id").fetchall()
    extra_cases = sum(n - 1 for _, n, _ in cases if n > 1)
    presses = sum(p for _, _, p in cases)
    by_device = Counter(d for d, _, _ in sent)
    out_of_order = []
    for (case_id,) in db.execute("SELECT id FROM alert_cases WHERE device_id LIKE 'chaos-%'"):
        events = db.execute("SELECT action, at FROM case_events WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
        if not events or events[0][0] != "opened" or any(a[1] > b[1] for a, b in zip(events, events[1:])):
            out_of_order.append(case_id)
    late = db.execute("SELECT COUNT(*) FROM alert_cases WHERE device_id LIKE 'chaos-%' AND late").fetchone()[0]
    skewed = db.execute("SELECT COUNT(*) FROM case_events e JOIN alert_cases c ON c.id = e.case_id "
                        "WHERE c.device_id LIKE 'chaos-%' AND e.action = 'clock_skew'").fetchone()[0]
    quarantined = db.execute("SELECT COUNT(*), COALESCE(SUM(count), 0), COUNT(case_id) FROM dead_letters "
                             "WHERE device_id LIKE 'chaos-%'").fetchone()
    db.close()
    return {"lost": len(lost), "lost_mids": lost[:20], "duplicated": dup_rows + extra_cases,
            "quarantined": quarantined[0], "quarantined_deliveries": quarantined[1],
            "quarantined_with_case": quarantined[2], "unreadable_alarms_stored": unreadable,
            "unreadable_sent": len(set(junk)),
            "cases": len(cases), "devices_alerting": len(by_device), "presses_counted": presses,
            "audit_out_of_order": out_of_order, "cases_flagged_late": late, "clock_skew_events": skewed}


def verify_gateway(db_path: Path, alarms_sent: dict[str, int]) -> dict:
    """The gateway watches' alarms: each distinct alarm frame stored exactly once (a
    re-sent frame is the same alarm: the cloud merges it by its bytes)."""
    db = sqlite3.connect(db_path)
    stored = Counter()
    for device in alarms_sent:
        stored[device] = db.execute("SELECT COUNT(*) FROM alerts WHERE device_id = ?", (device,)).fetchone()[0]
    db.close()
    return {"lost": sum(max(0, n - stored[d]) for d, n in alarms_sent.items()),
            "duplicated": sum(max(0, stored[d] - n) for d, n in alarms_sent.items()),
            "stored": sum(stored.values())}
