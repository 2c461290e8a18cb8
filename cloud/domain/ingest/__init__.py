"""Everything a watch sends: validated, de-duplicated, stored, then acknowledged.

The order is the contract's: the alert is committed, and only then does the
watch get its ``alert_ack`` ``received`` (and only then does the MQTT adapter
PUBACK the broker). A redelivered alert changes nothing but is acked again,
because the watch may have missed the first ack.

One path (``Ingestor._ingest``) for one message (``accept``/``handle``) or many
(``handle_batch``, docs/scaling.md):

- ingestor.py: the door, the path, the transaction per alert, quarantine and salvage;
- validate.py: parsing, rejections, what is wrong with an alarm (its flags, its clock);
- alarm.py: alerts and their case (joined, or opened through ``casefile``), a stuck button;
- reports.py: location reports, status and presence, a batch of one or many in one
  transaction (bulk writes in ``cloud.store.bulk``); command acks;
- callstate.py: a call's state as the watch's modem reports it, on its case's timeline;
- outgoing.py: acks to the watch and live events, all sent after commit;
- limits.py: per-device limits on loc/status/presence/ack (never on alerts);
- outcome.py: what the ingest answers for each message, and its counters.

De-duplication is ``cloud.domain.dedupe``."""
from cloud.domain.ingest.ingestor import Ingestor
from cloud.domain.ingest.outcome import Outcome
from cloud.domain.ingest.outgoing import ACK_TEXT
from cloud.domain.ingest.validate import BATCH_KINDS
from cloud.domain.ingest_ids import (
    new_cid,  # re-exported: cases.py imports it from here
)
from cloud.domain.lifecycle import OPEN_STATUSES, PRIORITY  # re-exported

__all__ = ["ACK_TEXT", "BATCH_KINDS", "OPEN_STATUSES", "PRIORITY", "Ingestor", "Outcome", "new_cid"]
