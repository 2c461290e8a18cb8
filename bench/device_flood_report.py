"""The figures of bench/device_flood_bench.py, from what its driver and the flooder saw
and what the cloud stored: the other devices' ack delays (the headline), the flood's
drain, and the cases in the database."""
from __future__ import annotations

from bench.harness import Env
from hwsim.fleet import percentiles

TARGET_P99_MS = 300
OPEN = ("new", "routed", "claimed", "in_call")   # AlertCase.status before "resolved"


def figures(out: dict, cases: dict, *, flooder_id: str, other_ids: set[str], presses: int) -> dict:
    """The result's figures (without the run's parameters and timings). ``out`` is the
    driver's record: ``sos`` (each other-device SOS), ``flood`` (the flooder's report),
    ``others_done``, ``all_acked``, ``acks_cleared_at``, ``acks_expected``, ``callers``,
    ``quiet_ms``."""
    flood = out["flood"]
    t0 = flood["t0"]
    last_ack = max(flood["acked_at"]) if flood["acked_at"] else None
    drained = flood["acked"] >= presses
    return {**_other_sos(out, last_ack if drained else float("inf"), t0),
            "quiet_sos_ack_ms": percentiles(out["quiet_ms"]),
            "flood": _flood(out, presses, last_ack, drained),
            "cases": _cases(cases, flooder_id, other_ids)}


def _other_sos(out: dict, flood_end: float, t0: float) -> dict:
    sos = out["sos"]
    # An SOS never acked counts with the time it was waited for (a lower bound): the
    # percentiles then say "at least", never leave the worst ones out.
    unacked = [r for r in sos if r["ms"] is None]
    for r in unacked:
        r["ms"] = (out["others_done"] - r["at"]) * 1000
    ms_all = [r["ms"] for r in sos]
    # "During the flood": published before the flooder's last press was acked (all of them
    # if the flood never drained within the timeout).
    p_all, p_during = percentiles(ms_all), percentiles([r["ms"] for r in sos if r["at"] < flood_end])
    return {
        "target_p99_ms": TARGET_P99_MS,
        # the headline
        "device_flood_other_sos_ack_p99_ms": p_all["p99"],
        "other_sos_ack_p50_ms": p_all["p50"],
        "other_sos_ack_max_ms": p_all["max"],
        "other_sos_ack_ms": p_all,
        "other_sos_ack_ms_during_flood": p_during,
        "other_sos_sent": len(sos),
        "other_sos_acked": len(sos) - len(unacked),
        "other_sos_all_acked": bool(out["all_acked"] and not unacked),
        # > 0: the percentiles above are lower bounds (the unacked ones count with their wait so far)
        "other_sos_unacked": len(unacked),
        "other_sos_resent": out["callers"]["alerts"]["resent"],
        "other_sos_over_target": sum(1 for m in ms_all if m > TARGET_P99_MS),
        # each other-device SOS: [s after the flood's first PUBLISH, ms to its alert_ack, acked]
        "other_sos": [[round(r["at"] - t0, 3), round(r["ms"], 1), r not in unacked] for r in sos],
        "target_met": bool(out["all_acked"] and p_all["p99"] is not None and p_all["p99"] <= TARGET_P99_MS),
    }


def _flood(out: dict, presses: int, last_ack: float | None, drained: bool) -> dict:
    flood = out["flood"]
    t0 = flood["t0"]
    return {
        "device_id": flood["device_id"],
        "presses_sent": flood["sent"],
        "presses_resent": flood["resent"],
        "publish_s": round(flood["published_at"] - t0, 3),
        # every press PUBACKed by the broker: it has taken the whole flood
        "broker_took_all_s": round(flood["pubacked_at"] - t0, 3) if flood["pubacked_at"] else None,
        "presses_pubacked": flood["pubacked"],
        "presses_acked": flood["acked"],
        "drained": drained,
        "drain_s": round(last_ack - t0, 3) if drained and last_ack else None,
        "acked_per_s": round(flood["acked"] / (last_ack - t0), 1) if last_ack and last_ack > t0 else None,
        "acked_by_second": per_second([a - t0 for a in flood["acked_at"]]),
        "press_ack_ms": percentiles(flood["ack_ms"]),
        # ... and until the cloud had also taken every command ack (the flooder's 3,000 among
        # them) off its urgent lane: an SOS arriving before then still queues behind them
        "urgent_lane_clear_s": round(out["acks_cleared_at"] - t0, 2) if out["acks_cleared_at"] else None,
        "command_acks_expected": out["acks_expected"],
        "commands_received": flood["commands"],
        "command_acks_sent": flood["acks_sent"],
        "errors": flood["errors"],
    }


def _cases(cases: dict, flooder_id: str, other_ids: set[str]) -> dict:
    by_device = cases["by_device"]
    flooder_cases = by_device.get(flooder_id, [])
    return {
        "total": cases["total"],
        "devices_with_cases": len(by_device),
        "flooder": flooder_cases,
        "flooder_open_cases": sum(1 for c in flooder_cases if c["status"] in OPEN),
        "flooder_alerts_stored": cases["alerts"].get(flooder_id, 0),
        "other_devices_with_one_case": sum(1 for d in other_ids if len(by_device.get(d, [])) == 1),
        "other_devices": len(other_ids),
        "other_press_counts": sorted({c["press_count"] for d in other_ids for c in by_device.get(d, [])}),
        "one_per_device": all(len(v) == 1 for v in by_device.values()),
    }


def per_second(offsets: list[float]) -> list[int]:
    if not offsets:
        return []
    out = [0] * (int(max(offsets)) + 1)
    for o in offsets:
        out[int(o)] += 1
    return out


def cases_in_store(env: Env) -> dict:
    """The cases and alerts in the cloud's database, per device (SQLAlchemy on its URL)."""
    from sqlalchemy import func, select

    from cloud.store.db import make_engine
    from cloud.store.models import Alert, AlertCase
    eng = make_engine(env.settings.db_url)
    try:
        with eng.connect() as c:
            rows = c.execute(select(AlertCase.device_id, AlertCase.id, AlertCase.status, AlertCase.press_count)
                             .where(AlertCase.device_id.like("fleet-%")).order_by(AlertCase.id)).all()
            alerts = dict(c.execute(select(Alert.device_id, func.count()).where(Alert.device_id.like("fleet-%"))
                                    .group_by(Alert.device_id)).all())
    finally:
        eng.dispose()
    by_device: dict[str, list] = {}
    for device_id, case_id, status, press_count in rows:
        by_device.setdefault(device_id, []).append({"id": case_id, "status": status, "press_count": press_count})
    return {"total": len(rows), "by_device": by_device, "alerts": alerts}
