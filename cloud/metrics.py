"""Prometheus metrics (served at /metrics)."""
from prometheus_client import Counter, Gauge, Histogram

INGESTED = Counter("pers_ingest_messages_total", "Up messages accepted", ["kind"])
REJECTED = Counter("pers_ingest_rejected_total", "Up messages rejected", ["reason"])
DUPLICATES = Counter("pers_ingest_duplicates_total", "Up messages already seen (device, mid)", ["kind"])
ALERTS = Counter("pers_alerts_total", "Alert messages stored", ["kind"])
CASES_OPENED = Counter("pers_cases_opened_total", "Alert cases opened", ["kind"])
INGEST_SECONDS = Histogram("pers_ingest_seconds", "Time to validate and store one message in its own transaction "
                           "(alerts, acks; bulk kinds are timed per batch)", ["kind"],
                           buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
TIME_TO_CLAIM = Histogram("pers_time_to_claim_seconds", "From case opened to claimed",
                          buckets=(5, 10, 20, 30, 40, 60, 120, 300, 600))

# Routing, escalation, devices, notifications. Ingest rate is rate(pers_ingest_messages_total).
ROUTED = Counter("pers_cases_routed_total", "Cases routed, by how the centre was chosen", ["basis"])
# kind: centre | supervisors | reminder | cascade
ESCALATIONS = Counter("pers_escalations_total", "Escalation steps", ["kind"])
DEVICE_PRESENCE = Counter("pers_device_presence_changes_total", "Device presence changes", ["to"])
COMMANDS_EXPIRED = Counter("pers_commands_expired_total", "Commands never acked in time", ["type"])
NOTIFICATIONS = Counter("pers_notifications_total", "Contact notifications", ["channel", "result"])
GEOFENCE_EVENTS = Counter("pers_geofence_events_total", "Geofence crossings", ["kind"])
VSIM_SWITCHES = Counter("pers_vsim_profiles_sent_total", "vSIM profile lists sent on a country change", ["country"])
OPEN_CASES = Gauge("pers_open_cases", "Open cases at the last tick", ["status"])
TICK_SECONDS = Histogram("pers_tick_seconds", "Duration of one escalation/presence tick",
                         buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5))

# The ingest path's lanes and batches (cloud/mqtt/bridge.py).
INBOX_DEPTH = Gauge("pers_ingest_inbox_depth", "Messages received, not yet stored", ["lane"])
BATCH_SIZE = Histogram("pers_ingest_batch_size", "Bulk messages stored per transaction",
                       buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000))
# Per batch, not per message: observing a histogram once per message cost ~2 us each
# at 13k reports/s (3 % of the ingest worker's time).
BATCH_SECONDS = Histogram("pers_ingest_batch_seconds", "Time to validate and store one batch of bulk messages",
                          buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
BACKPRESSURE = Counter("pers_ingest_backpressure_total",
                       "Times the bulk session's reader waited for room in the bulk lane", ["result"])
BULK_RECEIVED = Counter("pers_mqtt_bulk_received_total", "PUBLISHes read on the bulk session")
# A stuck button and a device clock far ahead (cloud/domain/ingest/).
RATE_LIMITED = Counter("pers_device_rate_limited_total",
                       "Devices that went over their alert press budget (once per case)", ["kind"])
PRESSES_COALESCED = Counter("pers_alert_presses_coalesced_total",
                            "Alert presses stored and acked but coalesced (no per-press case event)", ["kind"])
# Per-device limits on loc/status/presence/ack (cloud/domain/ingest/limits.py): labelled by
# kind only, never by device (one series per watch would be a metrics leak and a cardinality bomb).
RATE_LIMITED_MESSAGES = Counter("pers_ingest_rate_limited_total",
                                "Up messages acknowledged but not stored: their device was over its limit "
                                "for that kind (alerts are never limited)", ["kind"])
CLOCK_SKEW = Counter("pers_alert_clock_skew_total", "Alerts stamped far in the future by the device", ["kind"])
LOCATIONS_PRUNED = Counter("pers_location_points_pruned_total", "Location points deleted by the retention job")
# Alarm integrity (cloud/domain/quarantine.py, cloud/mqtt/bridge.py).
QUARANTINED = Counter("pers_ingest_quarantined_total",
                      "Messages that could not be stored for good: kept as dead letters, then acknowledged",
                      ["reason"])
ALARMS_SALVAGED = Counter("pers_alarms_salvaged_total",
                          "Alarms accepted with bad fields dropped and flagged for the operator", ["field"])
OUTBOUND_REFUSED = Counter("pers_outbound_refused_total",
                           "Configured URLs refused by the outbound guard (cloud/domain/outbound.py)", ["stage"])
OLDEST_WAITING = Gauge("pers_ingest_oldest_waiting_seconds",
                       "Age of the oldest message received and not yet committed (0: none waiting)")

# Operator accounts (cloud/domain/accounts.py, sessions.py, throttle.py).
LOGINS_THROTTLED = Counter("pers_logins_throttled_total", "Login attempts refused while a throttle waits")
SESSIONS_REVOKED = Counter("pers_sessions_revoked_total", "Operator sessions ended by revocation", ["reason"])

# The watch gateway (cloud/gateway/): off-the-shelf watches over their own TCP protocols.
GATEWAY_CONNECTIONS = Gauge("pers_gateway_connections", "Open watch gateway connections", ["protocol"])
GATEWAY_FRAMES = Counter("pers_gateway_frames_total", "Frames decoded by the watch gateway", ["protocol", "kind"])
GATEWAY_REJECTED = Counter("pers_gateway_rejected_total",
                           "Watch gateway connections dropped: bad bytes, oversize or slow frames, unknown IMEIs",
                           ["reason"])
GATEWAY_DOWNLINKS = Counter("pers_gateway_downlinks_total", "Commands and configs for gateway watches",
                            ["protocol", "result"])
FORWARDED = Counter("pers_forward_total", "Events forwarded to alarm receivers over SIA DC-09, by result",
                    ["result"])
