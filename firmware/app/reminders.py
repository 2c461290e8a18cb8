# Medication reminders: fired in the wearer's local time (the network's zone,
# app/netclock.py), shown and signalled (motor and buzzer), confirmed with the
# black button; the outcome goes up as a status with a `reminder` part
# (docs/protocol.md). A mixin of app.watch.Watch; its state is _fired (reminder
# id -> local day it fired, on flash so that a reboot never fires a dose twice)
# and _dose (the dose waiting for a press: [id, due UTC, deadline UTC]).
#
# A reminder fires at the first check at or after its local minute, within the
# hour after: a daylight-saving change that skips 02:00-03:00 fires a 02:30
# reminder at 03:00, and one that repeats 02:00-03:00 fires it once (the local
# day is the key). A new zone (travel) moves the local time at once.
from app import flash, netclock
from micropython import const

_CATCH_UP_MIN = const(60)
_WINDOW_MIN = const(30)   # the config's window_min when absent


class Reminders:
    def _fired_days(self):
        if self._fired is None:
            self._fired = flash.read_json(self._fired_path) or {}
        return self._fired

    def _reminder_check(self):
        wall = self.clock.wall()
        if wall is None:
            return
        d = self._dose
        if d is not None and wall >= d[2]:
            self._dose_done("missed", None)
        rems = self.cfg.get("reminders") or []
        if not rems:
            return
        local = netclock.local(self.clock)
        day, rem = divmod(local, 86400)
        minute = rem // 60
        fired = self._fired_days()
        for r in rems:
            at = r.get("at") if isinstance(r, dict) else None
            try:
                m = int(at[:2]) * 60 + int(at[3:5])
            except (TypeError, ValueError):
                continue
            rid = r.get("id") or at
            days = r.get("days")
            if not 0 <= minute - m < _CATCH_UP_MIN or fired.get(rid) == day:
                continue
            if isinstance(days, list) and (day + 3) % 7 not in days:  # 1970-01-01 was a Thursday; 0 is Monday
                continue
            fired[rid] = day
            flash.write_json(self._fired_path, fired)
            self._fire(r, rid, day * 86400 + m * 60 - (local - wall), wall)

    def _fire(self, r, rid, due, wall):
        print("reminder:", r.get("text"))
        self.ui.show(r.get("text") or "Reminder", pin=True)
        if hasattr(self.board, "signal"):
            self.board.signal("reminder")
        else:
            self.ui.vibrate(600)
        if r.get("confirm"):
            if self._dose is not None:  # an earlier one still unconfirmed: this one takes the screen
                self._dose_done("missed", None)
            self._dose = [rid, due, wall + (r.get("window_min") or _WINDOW_MIN) * 60]

    def _dose_confirm(self):
        self._dose_done("confirmed", self.clock.wall())
        self.ui.show("Thank you")
        if hasattr(self.board, "signal"):
            self.board.signal("confirm")

    def _dose_done(self, state, at):
        rid, due, _ = self._dose
        self._dose = None
        print("reminder %s: %s" % (rid, state))
        if state == "missed":
            self.ui.unpin()
        msg = self.status_msg()
        part = {"id": rid, "due": due, "state": state}
        if at is not None:
            part["at"] = at
        msg["reminder"] = part
        self.outbox.put("status", msg)
        self.radio.want("reminder")
        import asyncio
        asyncio.create_task(self._release_when_sent("reminder"))
