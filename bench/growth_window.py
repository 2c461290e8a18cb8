"""The 50,000 step of benchmark 4 (growth), measured by bench/connections_50k_bench.py:
a probe of the cloud (CPU, RSS) while the shards run, the steady window chosen from the
shards' own load times, and what was sent, PUBACKed and stored over it."""
from __future__ import annotations

import math
import time
from datetime import UTC

from bench.harness import Env
from bench.measure import rss_mb
from hwsim.fleet import percentiles


class GrowthProbe:
    """Samples the cloud (CPU, RSS) every ``interval`` s while the shards run, and notes
    when every watch is online in the database. The growth window itself is chosen
    afterwards (growth_step), from the shards' own load start and end times: only then is
    it known when the last shard entered its steady schedule and the first one left it."""

    def __init__(self, env: Env, cloud_pid: int, devices: int, interval: float = 1.0):
        self.env, self.cloud_pid, self.devices, self.interval = env, cloud_pid, devices, interval
        self.samples: list[tuple[float, float, float]] = []   # (unix time, cloud CPU s, cloud RSS MB)
        self.online_at: float | None = None
        self.online_bytes: tuple[int, int] | None = None      # (db bytes, location rows) then
        self.exits: dict[int, float] = {}                      # shard -> unix time its process was seen gone

    def sample(self) -> None:
        from bench.measure import cpu_s
        self.samples.append((time.time(), cpu_s(self.cloud_pid), rss_mb(self.cloud_pid)))

    def watch(self, procs, deadline: float) -> None:
        while time.monotonic() < deadline and any(p.poll() is None for p in procs):
            self.exits.update({i: time.time() for i, p in enumerate(procs) if p.poll() is not None
                               and i not in self.exits})
            self.sample()
            if self.online_at is None and online_devices(self.env) >= self.devices:
                self.online_at = time.time()
                self.online_bytes = (self.env.db_bytes(), _fleet_locs(self.env))
            time.sleep(self.interval)
        self.exits.update({i: time.time() for i, p in enumerate(procs) if i not in self.exits})
        self.sample()

    def drain(self, expected: int, timeout: float = 120.0) -> dict:
        """Wait until the cloud has stored every report the shards sent (or the count
        stops moving for 10 s): what is stored after that was never going to be."""
        t0 = time.monotonic()
        last, still_since = -1, time.monotonic()
        while time.monotonic() - t0 < timeout:
            n = _fleet_locs(self.env)
            if n >= expected:
                break
            if n != last:
                last, still_since = n, time.monotonic()
            elif time.monotonic() - still_since > 10:
                break
            time.sleep(0.5)
        self.sample()
        return {"drain_s": round(time.monotonic() - t0, 1), "stored": _fleet_locs(self.env)}

    def at(self, t: float) -> tuple[float, float]:
        """Cloud CPU seconds (interpolated) and RSS (nearest sample) at unix time ``t``."""
        rows = self.samples
        for (ta, ca, ra), (tb, cb, rb) in zip(rows, rows[1:]):
            if ta <= t <= tb:
                f = (t - ta) / (tb - ta) if tb > ta else 0.0
                return ca + f * (cb - ca), (ra if f < 0.5 else rb)
        near = min(rows, key=lambda r: abs(r[0] - t))
        return near[1], near[2]


def growth_step(env: Env, probe: GrowthProbe, fleets: list[dict], shards: int, idle_rss: float, devices: int,
                loc_per_min: float, settle_s: float, drained: dict) -> dict:
    """The growth window, in whole seconds: from the moment every twin has sent its first
    report (the last shard's load start plus one report period) and every watch has been
    online in the database for ``settle_s``, to the first shard's load end. Before that,
    a watch's first report also stores its cell (one UPDATE more than later reports), so
    the first period is counted apart. Sent, PUBACKed (by the edge) and stored are counted
    over the same window: sent and PUBACKed from the shards' per-second counters, stored
    by the cloud's own received_at, and what became of the window's reports by their
    device_ts (the twin's send second) once everything has drained."""
    offered_per_s = devices * loc_per_min / 60
    period = 60 / loc_per_min
    base = {"devices": devices, "offered_per_s": round(offered_per_s, 1), "settle_s": settle_s,
            "report_period_s": round(period, 1)}
    loads = [f.get("offered") or {} for f in fleets]
    chosen = _steady_window(probe, loads, shards, len(fleets), settle_s, period)
    if isinstance(chosen, str):
        return {"measured": False, **base, "note": chosen}
    first, a, b = chosen
    window = b - a
    steady = _count_window(env, probe, fleets, a, b)
    bytes0, locs0 = probe.online_bytes
    bytes1, locs1 = env.db_bytes(), _fleet_locs(env)
    per_report = (bytes1 - bytes0) / (locs1 - locs0) if locs1 > locs0 else None
    # The window this bench used before (every watch online -> first shard process gone),
    # kept to compare with results measured that way: it ran on past the loads' end.
    pa, pb = math.floor(probe.online_at), math.ceil(min(probe.exits.values()))
    previous = _count_window(env, probe, fleets, pa, pb)
    return {
        "measured": True, **base, "window_s": window, "window_unix": [a, b], **_window_figures(steady, window),
        "run_loc_sent": sum(f["sent"].get("loc", 0) for f in fleets),
        "run_loc_pubacked": sum(f.get("pubacked_by_kind", {}).get("loc", 0) for f in fleets),
        "run_loc_persisted": drained["stored"], "drain_s": drained["drain_s"],
        "fleet_loop_lag_ms_p99_by_shard": [f["loop_lag_ms"]["p99"] for f in fleets],
        "fleet_loop_lag_ms_max_by_shard": [f["loop_lag_ms"]["max"] for f in fleets],
        "cloud_cpu_pct_mean": steady["cloud_cpu_pct"],
        "cloud_cpu_pct_per_1k_devices": round(steady["cloud_cpu_pct"] / devices * 1000, 2),
        "cloud_rss_mb_idle": idle_rss, "cloud_rss_mb_window_start": steady["rss_mb"][0],
        "cloud_rss_mb_window_end": steady["rss_mb"][1],
        "cloud_rss_mb_per_1k_devices": round((steady["rss_mb"][1] - idle_rss) / devices * 1000, 2),
        "db_bytes_per_report": round(per_report, 1) if per_report else None,
        "db_bytes_per_device_day": round(per_report * 1440 * loc_per_min) if per_report else None,
        "first_period": _brief(_count_window(env, probe, fleets, first, a)) if a > first else None,
        "previous_window": {**_brief(previous),
                            "first_load_end_to_exit_s": round(min(probe.exits.values())
                                                              - min(o["ended_at"] for o in loads), 1)},
        "note": "offered_per_s is the rate the shards were set to send; sent/pubacked/persisted are counts over "
                "the same window (sent and PUBACKed by the twins' report second, persisted by the cloud's "
                "received_at); send_to_store_s includes up to 1 s of rounding (device_ts is whole seconds); "
                "db bytes per report span all-online to the end of the drain; previous_window is the window "
                "this bench used up to 2026-11-30 (all online -> first shard process gone)",
    }



def _steady_window(probe: GrowthProbe, loads: list[dict], shards: int, reported: int, settle_s: float,
                   period: float) -> tuple[int, int, int] | str:
    """(first, a, b): the first second counted at all, and the steady window [a, b); or
    why there is none."""
    if probe.online_at is None:
        return "not all watches came online before a shard ended"
    if reported < shards or not all("started_at" in o for o in loads):
        return "a shard did not report its load"
    first = math.ceil(max(probe.online_at + settle_s, *(o["started_at"] for o in loads)))
    a = max(first, math.ceil(max(o["started_at"] for o in loads) + period))
    b = math.floor(min(o["ended_at"] for o in loads))
    if b - a < 1:
        return (f"no steady window: the first shard's load ended {a - b} s before every twin had reported "
                f"once and every watch had been online for {settle_s} s; raise --hold")
    return first, a, b


def _window_figures(steady: dict, window: int) -> dict:
    sent, persisted = steady["sent"], steady["persisted"]
    return {
        "sent_per_s": round(sent / window, 1),
        "pubacked_per_s": round(steady["pubacked"] / window, 1),
        "persisted_per_s": round(persisted / window, 1),
        "sent_per_s_by_shard": [round(n / window, 1) for n in steady["sent_by_shard"]],
        "pubacked_per_s_by_shard": [round(n / window, 1) for n in steady["pubacked_by_shard"]],
        "sent_per_s_min_max": steady["sent_per_s_min_max"],
        "sent_in_window": sent, "pubacked_in_window": steady["pubacked"], "persisted_in_window": persisted,
        "persisted_in_window_sent_before": steady["carried_in"],
        "sent_in_window_persisted_after": steady["carried_out"],
        "sent_in_window_never_persisted": steady["never"],
        "send_to_store_s": steady["lag"],
        # Kept up: stored at the rate actually sent, and nothing the window sent is missing.
        "kept_up": persisted >= 0.95 * sent and steady["never"] == 0,
    }

def _count_window(env: Env, probe: GrowthProbe, fleets: list[dict], a: int, b: int) -> dict:
    """Reports sent, PUBACKed and stored over the whole seconds [a, b), and the cloud's CPU."""
    def in_window(per_s: dict) -> int:
        return sum(n for t, n in per_s.items() if a <= int(t) < b)

    sent_by_shard = [in_window(f["loc_sent_at"]) for f in fleets]
    acked_by_shard = [in_window(f["loc_pubacked_at"]) for f in fleets]
    per_second = [sum(f["loc_sent_at"].get(str(t), 0) for f in fleets) for t in range(a, b)]
    rows = _window_rows(env, a, b)
    of_window = [(ts, rx) for ts, rx in rows if a <= ts < b]      # the window's own reports, stored ever
    c0, r0 = probe.at(a)
    c1, r1 = probe.at(b)
    sent = sum(sent_by_shard)
    return {"window_s": b - a, "sent": sent, "sent_by_shard": sent_by_shard, "pubacked": sum(acked_by_shard),
            "pubacked_by_shard": acked_by_shard,
            "sent_per_s_min_max": [min(per_second), max(per_second)] if per_second else None,
            "persisted": sum(1 for _ts, rx in rows if a <= rx < b),
            "carried_in": sum(1 for ts, rx in rows if ts < a and a <= rx < b),
            "carried_out": sum(1 for _ts, rx in of_window if rx >= b),
            "never": sent - len(of_window),
            "lag": percentiles([rx - ts for ts, rx in of_window]),
            "cloud_cpu_pct": round(100 * (c1 - c0) / (b - a), 1), "rss_mb": (r0, r1)}


def _brief(c: dict) -> dict:
    w = c["window_s"]
    return {"window_s": w, "sent_per_s": round(c["sent"] / w, 1), "pubacked_per_s": round(c["pubacked"] / w, 1),
            "persisted_per_s": round(c["persisted"] / w, 1), "never_persisted": c["never"],
            "cloud_cpu_pct_mean": c["cloud_cpu_pct"]}


def ingest_counters(cloud) -> dict:
    """The cloud's own count of what it took (/metrics), to set against what it stored."""
    m = cloud.metric_samples("pers_")
    keep = ('pers_ingest_messages_total{kind="loc"}', 'pers_ingest_duplicates_total{kind="loc"}',
            "pers_mqtt_bulk_received_total")
    out = {k: v for k, v in m.items() if k in keep or k.startswith(("pers_ingest_rejected_total{",
                                                                       "pers_ingest_backpressure_total{"))}
    return out


def _fleet_locs(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM location_points WHERE device_id LIKE 'fleet-%'")).scalar_one()


def _window_rows(env: Env, a: int, b: int) -> list[tuple[int, float]]:
    """(device second, received unix time) of the fleet's reports sent or stored in [a, b)."""
    from datetime import datetime

    from sqlalchemy import select

    from cloud.store.models import LocationPoint
    lo = datetime.fromtimestamp(a, UTC).replace(tzinfo=None)
    hi = datetime.fromtimestamp(b, UTC).replace(tzinfo=None)
    env.db_count("devices")
    with env._engine.connect() as c:
        rows = c.execute(select(LocationPoint.device_ts, LocationPoint.received_at).where(
            LocationPoint.device_id.like("fleet-%"),
            ((LocationPoint.device_ts >= a) & (LocationPoint.device_ts < b))
            | ((LocationPoint.received_at >= lo) & (LocationPoint.received_at < hi)))).all()
    return [(ts, rx.replace(tzinfo=UTC).timestamp()) for ts, rx in rows]


def online_devices(env: Env) -> int:
    from sqlalchemy import text
    env.db_count("devices")
    with env._engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM devices WHERE online")).scalar_one()
