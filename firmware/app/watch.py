# The application: wires the radio, outbox, alarm, buttons, fall detector,
# calls and cloud session together on one asyncio loop. Everything hardware
# comes in through `board`; every duration comes from `board.clock`.
import asyncio
import gc
from app import flash, messages
from app.alarm import Alarm
from app.buttons import Buttons
from app.commands import BadCommand, Deduper, parse_command, parse_config, CONFIG_DEFAULTS
from app.outbox import Outbox
from app.radio import Radio
from app.session import Session
from app.ui import UI
from app.vsim import Profiles
from micropython import const

_FIX_FRESH_MS = const(30000)
_CHECKIN_TIMEOUT_MS = const(180000)
_CHECKIN_SETTLE_MS = const(3000)  # queued commands arrive just after the subscription
_SYNC_POLL_MS = const(250)
_TICK_MS = const(500)  # the periodic checks: the accelerometer FIFO read every tick
_BATTERY_CHECK_MS = const(60000)
_REMINDER_CHECK_MS = const(20000)
_IDLE_SLEEP_MS = const(10000)  # light sleep slices: the watchdog is fed between them
_EMPTY_PCT = const(1)  # below this the cell is protected: shut down cleanly
_HR_FRESH_MS = const(60000)  # a heart rate this recent goes with an alert at once
_VITALS_CHECK_MS = const(5000)


class Watch:
    def __init__(self, board, install, boot, wdt=None):
        self.board = board
        self.clock = board.clock
        self.wdt = wdt
        self.boot_ticks = self.clock.ticks_ms()
        fdir = board.flash_dir
        self.device = flash.read_json(flash.join(fdir, "device.json"))
        if not self.device or "id" not in self.device:
            raise ValueError("no device.json in " + fdir)
        self.cfg_path = flash.join(fdir, "config.json")
        self.cfg = dict(CONFIG_DEFAULTS)
        self.cfg.update(flash.read_json(self.cfg_path) or {})
        self.outbox = Outbox(flash.join(fdir, "outbox"), install, boot,
                             limit=self.device.get("outbox_limit", 100),
                             retry_first_ms=self.device.get("alert_retry_ms", 3000))
        self.ui = UI(board)
        self.profiles = Profiles(self.device.get("profiles"), flash.join(fdir, "vsim.json"))
        self.radio = Radio(board, self.profiles, self._urc, self.device.get("linger_ms", 5000),
                           self.device.get("apn"))
        self.radio.on_no_network = self._no_network
        self.dedup = Deduper()
        self.session = Session(board, self.device, self.outbox, self.radio.up, self.on_message,
                               self.status_msg, keepalive=self.device.get("keepalive", 60),
                               on_link=self._on_link)
        self.radio.on_down = self.session.kick
        self.alarm = Alarm(self.ui, self.outbox, self.snapshot, self.session.kick, self.clock,
                           self._alarm_changed)
        self.calls = None          # app.calls.Calls, loaded with the first call (_calls)
        self.fall = None
        self.countdown = None      # a fall countdown in progress: an Event set to cancel it
        self.awaiting_ack = None   # cid of a message the wearer must confirm
        self.track_until = None
        self.track_s = None
        self._track_next = None    # ticks of the next tracking report
        self._alarm_track = None   # [ticks of the alarm, fix sent, ticks of the last report]
        self._fired = {}           # reminder "at" -> day it fired
        self._low_path = flash.join(fdir, "lowbatt")
        self._emergency_dialled = False
        self._hr = None            # (bpm, ticks) of the last reading
        self._hr_busy = False
        self._hr_tried = None      # ticks of the last reading started
        self._hr_for = []          # alert mids waiting for the reading in progress
        self.modem = None  # kept for tests that plant a modem; the radio owns the real one

    # --- what the watch knows about itself --------------------------------------
    def snapshot(self):
        loc = None
        m = self.modem
        if m is not None:
            fix, age = m.fix, m.fix_age_ms()
            cell, rssi = m.cell, m.rssi
        else:
            fix, age = self.radio.fix()
            cell, rssi = self.radio.cell, self.radio.rssi
        if fix is not None:
            loc = dict(fix)
            if age is None or age > _FIX_FRESH_MS:
                loc["src"] = "last"
        return {"ts": self.clock.wall(), "loc": loc, "cell": cell, "batt": self.board.battery(),
                "net": messages.net_part(cell, rssi, self.radio.profile_name())}

    def status_msg(self):
        s = self.snapshot()
        up = self.clock.ticks_diff(self.clock.ticks_ms(), self.boot_ticks) // 1000
        return messages.status(self.outbox.new_mid(), s["ts"], batt=s["batt"], net=s["net"],
                               uptime=up, cfg=self.cfg.get("version", 0),
                               outbox=self.outbox.count())

    def put_loc(self, reason, ref=None):
        s = self.snapshot()
        self.outbox.put("loc", messages.loc_report(self.outbox.new_mid(), s["ts"], reason, loc=s["loc"],
                                                   cell=s["cell"], batt=s["batt"], ref=ref))
        self.session.kick()

    # --- down messages ------------------------------------------------------------
    def on_message(self, topic, payload):
        kind = topic.split("/")[-1]
        if kind == "config":
            self.apply_config(payload)
        elif kind == "cmd":
            self.command(payload)

    def apply_config(self, payload):
        try:
            cfg = parse_config(payload)
        except BadCommand as e:
            print("config refused:", e.reason)
            return
        if cfg["version"] > self.cfg.get("version", 0):
            flash.write_json(self.cfg_path, cfg)
            self.cfg = cfg
            self.fall = None  # new thresholds
            print("config applied: version", cfg["version"])

    def command(self, payload):
        try:
            cmd = parse_command(payload)
        except BadCommand as e:
            if e.cid:
                self._ack(e.cid, False, e.reason)
            return
        cid = cmd["cid"]
        done = self.dedup.get(cid)
        if done is None:
            try:
                done = self.act(cmd)
            except Exception as e:
                done = (False, "failed: %r" % (e,))
            if done == "later":
                return  # acked when the wearer confirms
            self.dedup.put(cid, done)
        self._ack(cid, done[0], done[1])

    def act(self, cmd):
        t = cmd["type"]
        if t == "alert_ack":
            self.alarm.on_ack(cmd)
        elif t == "locate":
            self.put_loc("request", self.alarm.current_ref())
            self.radio.want("locate", gnss=True)
            asyncio.create_task(self._locate())
        elif t == "track":
            self.track_s = max(5, cmd["interval_s"])
            self.track_until = self.clock.ticks_add(self.clock.ticks_ms(), cmd["duration_s"] * 1000)
            self.radio.want("track", gnss=True)
        elif t == "message":
            self.ui.show(cmd["text"], pin=bool(cmd.get("ack_required")))
            self.ui.vibrate(400)
            if cmd.get("ack_required"):
                self.awaiting_ack = cmd["cid"]
                return "later"
        elif t == "ring":
            self.ui.vibrate(cmd["seconds"] * 1000)
        elif t == "call":
            asyncio.create_task(self._calls().dial(cmd["number"]))
        elif t == "vsim":
            self.profiles.replace(cmd["profiles"])
            print("vsim: %d profiles" % len(self.profiles.profiles))
        else:
            return (False, "unsupported")
        return (True, None)

    def _ack(self, cid, ok, err):
        self.outbox.put("ack", messages.ack(self.outbox.new_mid(), self.clock.wall(), cid, ok, err))
        self.session.kick()

    async def _locate(self):
        # The answer went at once with what the watch knew; a fresh GNSS fix follows.
        if await self._wait_fix(self.clock.ticks_ms(), 60000):
            self.put_loc("fix", self.alarm.current_ref())
        self.radio.done("locate")

    async def _wait_fix(self, since, timeout_ms):
        end = self.clock.ticks_add(self.clock.ticks_ms(), timeout_ms)
        while self.clock.ticks_diff(end, self.clock.ticks_ms()) > 0:
            t = self.radio.fix_ticks()
            if t is not None and self.clock.ticks_diff(t, since) >= 0:
                return True
            await self.clock.sleep_ms(1000)
        return False

    # --- the wearer -------------------------------------------------------------------
    def on_sos(self):
        if self.countdown is not None:
            self.countdown.set()  # a press during a fall countdown: help is wanted now
        asyncio.create_task(self.raise_alert("sos", "button"))

    async def raise_alert(self, kind, trigger):
        self.ui.vibrate(300)  # before anything slow: the wearer must feel it worked
        first = self.alarm.state == "idle"
        hr = self._hr_recent() if first else None
        # The alert never waits for the pulse (seconds of PPG): it is on flash and
        # on its way at once, and the reading joins it if it comes before the
        # first send (the modem boots for 11 s; a fall countdown measured already).
        mid = self.alarm.raise_alert(kind, trigger, {"hr": hr} if hr else None, buzz=False)
        if first and hr is None:
            self.want_heart_rate(mid)

    def _hr_recent(self):
        if self._hr and self.clock.ticks_diff(self.clock.ticks_ms(), self._hr[1]) < _HR_FRESH_MS:
            return self._hr[0]
        return None

    def want_heart_rate(self, mid=None):
        # One reading at a time; mid: an alert to complete with it.
        if not hasattr(self.board, "heart_rate"):
            return
        if mid:
            self._hr_for.append(mid)
        if not self._hr_busy:
            self._hr_busy = True
            self._hr_tried = self.clock.ticks_ms()
            asyncio.create_task(self._heart_rate())

    async def _heart_rate(self):
        hr = None
        try:
            hr = await self.board.heart_rate()
        except Exception as e:
            print("vitals: heart rate failed", repr(e))
        finally:
            self._hr_busy = False
        print("vitals: heart rate", hr)
        if hr:
            self._hr = (hr, self.clock.ticks_ms())
        mids, self._hr_for = self._hr_for, []
        for mid in mids:
            if hr and self.outbox.add_vitals(mid, {"hr": hr}):
                print("vitals: added to alert", mid)
            elif hr:
                print("vitals: alert", mid, "already sent")

    def on_click(self):
        # The black button: answer what is asking, else show the watch face.
        if self.countdown is not None:
            self.countdown.set()
            self.countdown = None
            self.ui.show("Fall alarm cancelled")
        elif self.alarm.in_cancel_window(self.cfg.get("cancel_window_s", 10)):
            self.alarm.cancel()
        elif self.awaiting_ack is not None:
            cid, self.awaiting_ack = self.awaiting_ack, None
            self.dedup.put(cid, (True, None))
            self._ack(cid, True, None)
            self.ui.show("Thank you")
            self.radio.want("ack")
            asyncio.create_task(self._release_when_sent("ack"))
        elif self.calls is not None and self.calls.ringing():
            asyncio.create_task(self.calls.answer())
        else:
            asyncio.create_task(self.ui.watch_face())

    async def _release_when_sent(self, reason):
        await self.clock.sleep_ms(1000)
        await self._synced(_CHECKIN_TIMEOUT_MS)
        self.radio.done(reason)

    async def _synced(self, timeout_ms):
        # True once the session is (or has been since) connected with the outbox
        # drained; False after timeout_ms. Polled: an Event under wait_for_ms
        # holds a timer task and its frames for the whole wait.
        s = self.session
        syncs = s.syncs
        end = self.clock.ticks_add(self.clock.ticks_ms(), timeout_ms)
        while not s.synced and s.syncs == syncs:
            if self.clock.ticks_diff(end, self.clock.ticks_ms()) <= 0:
                return False
            await self.clock.sleep_ms(_SYNC_POLL_MS)
        return True

    def _alarm_changed(self, state):
        if state == "idle":
            self.radio.alarm = False
            self.radio.done("alarm")
            self._emergency_dialled = False
        else:
            self.radio.alarm = True
            if "alarm" not in self.radio.needs:
                self.radio.want("alarm", gnss=True)
                now = self.clock.ticks_ms()
                self._alarm_track = [now, False, now]

    def _alarm_track_check(self):
        # Every second of an alarm (periodic): the alert went without waiting for
        # GNSS; the first fresh fix follows as a `loc` with the alert's mid, then
        # a report every track period.
        if not self.alarm.active():
            self._alarm_track = None
            return
        since, got, last = self._alarm_track
        ref = self.alarm.current_ref()
        t = self.radio.fix_ticks()
        now = self.clock.ticks_ms()
        if not got and t is not None and self.clock.ticks_diff(t, since) > 0:
            self._alarm_track = [since, True, now]
            self.put_loc("fix", ref)
        elif self.clock.ticks_diff(now, last) >= self.cfg.get("track_s", 30) * 1000:
            self._alarm_track[2] = now
            self.put_loc("alarm", ref)

    def _no_network(self):
        if self.alarm.active() and not self._emergency_dialled:
            # Last resort: no profile registers, but an emergency call needs none.
            self._emergency_dialled = True
            number = self.cfg.get("emergency_number") or "112"
            print("alarm: no network, dialling", number)
            asyncio.create_task(self._calls().dial(number, need_network=False))

    def _calls(self):
        # Calls are rare and the modules loaded at boot stay in the heap for
        # good: this one comes with the first call, in or out.
        if self.calls is None:
            from app.calls import Calls
            self.calls = Calls(self)
        return self.calls

    def _urc(self, line):
        # The lines that concern a call or an SMS (app/calls.py): the first one
        # loads the calls module, which an alarm never needs otherwise.
        if (self.calls is not None or line.startswith("+CLIP:") or line.startswith("+CMTI:")
                or line.startswith("VOICE CALL:") or line.startswith("MISSED_CALL") or line == "NO CARRIER"):
            self._calls().urc(line)

    def _on_link(self, ok):
        if ok:
            self.radio.link_ok()
        else:
            self.radio.link_refused()

    # --- tasks --------------------------------------------------------------------
    async def checkins(self):
        # Wake the radio, say hello, drain the outbox, take queued commands, sleep.
        while True:
            self.radio.want("checkin", gnss=self.radio.last.get("fix") is None)
            if await self._synced(_CHECKIN_TIMEOUT_MS):
                await self.clock.sleep_ms(_CHECKIN_SETTLE_MS)
            else:
                print("checkin: no cloud this time")
            self.radio.done("checkin")
            await self.clock.sleep_ms(self.cfg.get("heartbeat_s", 3600) * 1000)
            c = self.session.client
            if c is not None and c.connected:
                # Still online (an alarm, a call): no new connection will say hello.
                self.outbox.put("status", self.status_msg())

    async def periodic(self):
        # The periodic checks share one task (a sleeping task is a frame and a
        # Task in the heap for good): every tick the accelerometer, every second
        # tracking and an alarm's location reports, every 5 s the pulse, every 20 s the reminders, every minute
        # the battery, that one at once too. A check that fails is logged and
        # the task goes on.
        n = 0
        while True:
            try:
                if n:
                    self._fall_check()
                    if n % (1000 // _TICK_MS) == 0:
                        self._track_check()
                        if self._alarm_track is not None:
                            self._alarm_track_check()
                    if n % (_VITALS_CHECK_MS // _TICK_MS) == 0:
                        self._vitals_check()
                    if n % (_REMINDER_CHECK_MS // _TICK_MS) == 0:
                        self._reminder_check()
                if n % (_BATTERY_CHECK_MS // _TICK_MS) == 0 and self._battery_check():
                    await self.shutdown("battery empty")
            except Exception as e:
                print("watch: check failed", repr(e))
            await self.clock.sleep_ms(_TICK_MS)
            n += 1

    def _fall_check(self):
        samples = self.board.accel_read()
        if not samples or not self.cfg.get("fall_detection", True):
            return
        if self.fall is None:
            from app.fall import FallDetector  # with the first motion: not before
            self.fall = FallDetector(self.board.accel_hz, self.cfg.get("fall"))
        if self.fall.feed(samples) and self.countdown is None and not self.alarm.active():
            asyncio.create_task(self._fall_countdown())

    async def _fall_countdown(self):
        cancel = asyncio.Event()
        self.countdown = cancel
        secs = self.cfg.get("fall_countdown_s", 15)
        print("fall: detected, countdown", secs, "s")
        self.radio.want("fall")  # the modem boots meanwhile: the alert leaves sooner
        self.want_heart_rate()   # and the pulse is read: the alert carries it
        for left in range(secs, 0, -1):
            self.ui.show("Fall detected - press to cancel %d" % left, pin=True)
            self.ui.vibrate(300)
            try:
                await self.clock.wait_for_ms(cancel.wait(), 1000)
                break
            except asyncio.TimeoutError:
                pass
        pressed = cancel.is_set()
        self.countdown = None
        self.radio.done("fall")
        if not pressed:
            await self.raise_alert("fall", "fall_detector")
        elif not self.alarm.active():
            self.ui.unpin()

    def _vitals_check(self):
        # While the radio is on (a check-in, an alarm, a call) a heart rate is kept
        # fresh, so an SOS pressed then leaves at once with a reading of the last
        # minute. Idle, the sensor sleeps: its LEDs are not free.
        now = self.clock.ticks_ms()
        if self.radio.powered and not self._hr_busy and (
                self._hr_tried is None
                or self.clock.ticks_diff(now, self._hr_tried) >= _HR_FRESH_MS - 2 * _VITALS_CHECK_MS):
            self.want_heart_rate()

    def _battery_check(self):
        # True when the cell is empty: the watch must shut down.
        b = self.board.battery()
        low = self.cfg.get("low_battery_pct", 15)
        flagged = flash.exists(self._low_path)
        if b.get("pct", 100) <= low and not flagged:
            # Once per discharge: the flag survives reboots, a charge clears it.
            flash.write_atomic(self._low_path, b"1")
            s = self.snapshot()
            self.outbox.put("alert", messages.alert(self.outbox.new_mid(), s["ts"], "low_battery", "battery",
                                                    loc=s["loc"], cell=s["cell"], batt=b, net=s["net"]))
            self.ui.show("Battery low - please charge")
            self.radio.want("battery")
            asyncio.create_task(self._release_when_sent("battery"))
        if b.get("pct", 100) <= _EMPTY_PCT:
            self.ui.show("Battery empty")
            return True
        if b.get("pct", 100) >= low + 10 and flagged:
            import os
            os.remove(self._low_path)
        return False

    def _reminder_check(self):
        wall = self.clock.wall()
        if wall is None:
            return
        day, rem = divmod(wall, 86400)
        now = "%02d:%02d" % (rem // 3600, rem % 3600 // 60)
        for r in self.cfg.get("reminders") or []:
            at = r.get("at") if isinstance(r, dict) else None
            if at == now and self._fired.get(at) != day:
                self._fired[at] = day
                print("reminder:", r.get("text"))
                self.ui.show(r.get("text") or "Reminder", pin=True)
                self.ui.vibrate(600)

    def _track_check(self):
        # A report every track_s while tracking; the first at once.
        if self.track_until is None:
            return
        now = self.clock.ticks_ms()
        if self.clock.ticks_diff(self.track_until, now) <= 0:
            self.track_until = None
            self._track_next = None
            self.radio.done("track")
        elif self._track_next is None or self.clock.ticks_diff(now, self._track_next) >= 0:
            self._track_next = self.clock.ticks_add(now, self.track_s * 1000)
            self.put_loc("periodic", self.alarm.current_ref())

    async def shutdown(self, reason):
        # On purpose (flat battery, update): say so on flash first, so the next
        # boot's reset record tells it from a crash.
        flash.write_json(flash.join(self.board.flash_dir, "shutdown.json"),
                         {"reason": reason, "ts": self.clock.wall()})
        self.radio.needs = {}
        self.radio.done("shutdown")
        await self.clock.sleep_ms(3000)  # the radio powers the modem off cleanly
        self.board.power_off()

    def idle(self):
        # A pulse reading in progress keeps the CPU up: in light sleep nobody
        # drains the sensor's FIFO (32 samples, 1.3 s).
        return (not self.radio.wanted() and not self.radio.powered and self.countdown is None
                and not self.ui.on and (self.calls is None or not self.calls.active()) and not self._hr_busy)

    async def run(self):
        await self.board.start()
        self.ui.show("Ready")
        self.alarm.restore()
        Buttons(self.board, lambda: self.cfg.get("sos_hold_ms", 1000), self.on_sos, self.on_click)
        for task in (self.radio.run(), self.session.run(), self.checkins(), self.periodic()):
            asyncio.create_task(task)
        # The watchdog is fed from the loop itself: if the loop stalls, it resets the watch.
        # A collection every second keeps the live objects packed low in the heap:
        # left to run only when the heap is exhausted, the GC finds the survivors
        # scattered over all of it, and a 700-byte block (a network read, the
        # pulse samples) may not exist any more in an ESP32's 100 KB.
        while True:
            if self.wdt:
                self.wdt.feed()
            gc.collect()
            if self.idle() and hasattr(self.board, "light_sleep"):
                await self.board.light_sleep(_IDLE_SLEEP_MS)
            else:
                await self.clock.sleep_ms(1000)
