"""Prometheus metrics (served at /metrics)."""
from prometheus_client import Counter, Histogram

INGESTED = Counter("pers_ingest_messages_total", "Up messages accepted", ["kind"])
REJECTED = Counter("pers_ingest_rejected_total", "Up messages rejected", ["reason"])
DUPLICATES = Counter("pers_ingest_duplicates_total", "Up messages already seen (device, mid)", ["kind"])
ALERTS = Counter("pers_alerts_total", "Alert messages stored", ["kind"])
CASES_OPENED = Counter("pers_cases_opened_total", "Alert cases opened", ["kind"])
INGEST_SECONDS = Histogram("pers_ingest_seconds", "Time to validate, store and ack one message", ["kind"],
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
TIME_TO_CLAIM = Histogram("pers_time_to_claim_seconds", "From case opened to claimed",
                          buckets=(5, 10, 20, 30, 40, 60, 120, 300, 600))
