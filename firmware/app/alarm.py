# The alarm state machine: one alarm at a time, from the press to the cloud's
# "closed". What the wearer sees and feels is driven by the cloud's alert_ack
# stages, never by the PUBACK: a broker that has the alert is not a person.
from app import messages
from micropython import const

_IDLE = const("idle")
_CALLING = const("calling")  # alert stored on flash, being sent until the cloud has it
_RECEIVED = const("received")  # the cloud stored the case
_OPERATOR = const("operator")  # a person has it

TEXT_CALLING = "Calling for help"
TEXT_RECEIVED = "Help is coming"
TEXT_OPERATOR = "An operator is with you"
TEXT_CLOSED = "Alarm over"
TEXT_CANCELLED = "Cancelled - an operator will still check on you"


class Alarm:
    def __init__(self, ui, outbox, snapshot, kick, clock=None, on_change=None):
        self.ui = ui            # display(text), vibrate(ms)
        self.outbox = outbox
        self.snapshot = snapshot  # () -> {"ts","loc","cell","batt","net"}
        self.kick = kick        # wake the sender
        self.clock = clock
        self.on_change = on_change  # (state) -> None: the watch powers the radio for an alarm
        self.state = _IDLE
        self.mids = []          # alerts of the open alarm
        self.started = None     # ticks of the first alert
        self.cancelled = False

    def _set(self, state):
        self.state = state
        if self.on_change:
            self.on_change(state)

    def restore(self):
        # After a reboot an unacknowledged alert in the outbox is an open alarm.
        names = self.outbox.alerts()
        if names:
            self.mids = [self.outbox.mid_of(n) for n in names]
            self._set(_CALLING)
            self.ui.display(TEXT_CALLING)

    def active(self):
        return self.state != _IDLE

    def raise_alert(self, kind="sos", trigger="button", vitals=None, buzz=True):
        if buzz:
            self.ui.vibrate(300)  # at once: the wearer must feel the press worked
        first = self.state == _IDLE
        ref = None if first else self.current_ref()  # a second press joins the same case
        s = self.snapshot()
        mid = self.outbox.new_mid()
        msg = messages.alert(mid, s.get("ts"), kind, trigger, loc=s.get("loc"), cell=s.get("cell"),
                             batt=s.get("batt"), net=s.get("net"), ref=ref, vitals=vitals)
        # On flash before the wearer is told: "Calling for help" must never be a lie
        # that a power cut reveals.
        self.outbox.put("alert", msg)
        if first:
            self.mids = []
            self.cancelled = False
            self.started = self.clock.ticks_ms() if self.clock else None
            self._set(_CALLING)
            self.ui.display(TEXT_CALLING)
        self.mids.append(mid)
        self.kick()
        return mid

    def in_cancel_window(self, window_s):
        if self.state == _IDLE or self.cancelled or self.started is None or not self.mids:
            return False
        return self.clock.ticks_diff(self.clock.ticks_ms(), self.started) <= window_s * 1000

    def cancel(self):
        # The wearer says "I am OK": the cloud marks the case, an operator still checks.
        ref = self.current_ref()
        s = self.snapshot()
        mid = self.outbox.new_mid()
        self.outbox.put("alert", messages.alert(mid, s.get("ts"), "cancel", "user", ref=ref))
        self.cancelled = True
        self.ui.vibrate(100)
        self.ui.display(TEXT_CANCELLED)
        self.kick()
        return mid

    def current_ref(self):
        return self.mids[0] if self.mids else None

    def on_ack(self, cmd):
        self.outbox.acknowledged(cmd["ref"])
        stage = cmd["stage"]
        text = cmd.get("text")
        if stage == "closed":
            if self.state != _IDLE:
                self.mids = []
                self._set(_IDLE)
                self.ui.display(text or TEXT_CLOSED)
                self.ui.unpin()
            return
        if self.state == _IDLE or cmd["ref"] not in self.mids:
            return  # a late ack of an alarm already closed, or of a low-battery note
        if stage == "received" and self.state == _CALLING:
            self._set(_RECEIVED)
            if not self.cancelled:
                self.ui.display(text or TEXT_RECEIVED)
            self.ui.vibrate(500)
        elif stage == "operator" and self.state != _OPERATOR:
            self._set(_OPERATOR)
            self.ui.display(text or TEXT_OPERATOR)
            self.ui.vibrate(200)
