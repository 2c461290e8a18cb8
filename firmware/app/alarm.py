# The alarm state machine: one alarm at a time, from the press to the cloud's
# "closed". What the wearer sees and feels is driven by the cloud's alert_ack
# stages, never by the PUBACK: a broker that has the alert is not a person.
from app import messages

IDLE = "idle"
CALLING = "calling"    # alert stored on flash, being sent until the cloud has it
RECEIVED = "received"  # the cloud stored the case
OPERATOR = "operator"  # a person has it

TEXT_CALLING = "Calling for help"
TEXT_RECEIVED = "Help is coming"
TEXT_OPERATOR = "An operator is with you"
TEXT_CLOSED = "Alarm over"


class Alarm:
    def __init__(self, ui, outbox, snapshot, kick):
        self.ui = ui            # display(text), vibrate(ms)
        self.outbox = outbox
        self.snapshot = snapshot  # () -> {"ts","loc","cell","batt","net"}
        self.kick = kick        # wake the sender
        self.state = IDLE
        self.mids = []          # alerts of the open alarm

    def restore(self):
        # After a reboot an unacknowledged alert in the outbox is an open alarm.
        if self.outbox.alerts():
            self.state = CALLING
            self.ui.display(TEXT_CALLING)

    def raise_alert(self, kind="sos", trigger="button"):
        self.ui.vibrate(300)  # at once: the wearer must feel the press worked
        if self.state == IDLE:
            self.state = CALLING
            self.mids = []
            self.ui.display(TEXT_CALLING)
        s = self.snapshot()
        mid = self.outbox.new_mid()
        msg = messages.alert(mid, s.get("ts"), kind, trigger, loc=s.get("loc"),
                             cell=s.get("cell"), batt=s.get("batt"), net=s.get("net"))
        self.outbox.put("alert", msg)
        self.mids.append(mid)
        self.kick()
        return mid

    def current_ref(self):
        return self.mids[0] if self.mids else None

    def on_ack(self, cmd):
        self.outbox.acknowledged(cmd["ref"])
        stage = cmd["stage"]
        text = cmd.get("text")
        if stage == "closed":
            if self.state != IDLE:
                self.state = IDLE
                self.mids = []
                self.ui.display(text or TEXT_CLOSED)
            return
        if self.state == IDLE:
            return  # a late ack of an alarm already closed changes nothing
        if stage == "received" and self.state == CALLING:
            self.state = RECEIVED
            self.ui.display(text or TEXT_RECEIVED)
            self.ui.vibrate(500)
        elif stage == "operator" and self.state != OPERATOR:
            self.state = OPERATOR
            self.ui.display(text or TEXT_OPERATOR)
            self.ui.vibrate(200)
