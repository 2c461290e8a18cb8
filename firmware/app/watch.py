# The application: wires the radio, outbox, alarm, buttons, fall detector,
# calls and cloud session together on one asyncio loop. Everything hardware
# comes in through `board`; every duration comes from `board.clock`.
# The rooms of the watch are mixins, one module each, working on this one
# object's state (all set here, in __init__): app/orders.py what the cloud
# asks, app/sos.py raising an alarm (button, fall), app/vitals.py the pulse,
# app/routine.py check-ins and periodic checks (and, loaded when needed,
# app/reminders.py medication reminders and app/welfare.py). Mixins, not objects of their
# own: every helper object would stay in the heap for good beside this one.
import asyncio
import gc
from app import flash, messages
from app.alarm import Alarm
from app.buttons import Buttons
from app.commands import Deduper, config_defaults
from app.orders import Orders
from app.outbox import Outbox
from app.radio import NoProfiles, Radio, STALL_MS as _RADIO_STALL_MS
from app.routine import Routine
from app.session import Session
from app.sos import Emergency
from app.ui import UI
from app.vitals import Vitals
from micropython import const

_FIX_FRESH_MS = const(30000)
_IDLE_SLEEP_MS = const(10000)  # the longest light sleep: the watchdog is fed between them
_GC_EVERY_MS = const(1000)
_DEEP_SLEEP_MIN_MS = const(60000)  # shorter: a reboot costs more than light sleep saves
_TICK_STALL_MS = const(20000)  # the periodic checks tick every 500 ms; margin for a slow host


class Watch(Orders, Emergency, Vitals, Routine):
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
        self.cfg = config_defaults()
        self.cfg.update(flash.read_json(self.cfg_path) or {})
        self.outbox = Outbox(flash.join(fdir, "outbox"), install, boot,
                             limit=self.device.get("outbox_limit", 100),
                             retry_first_ms=self.device.get("alert_retry_ms", 3000))
        self.ui = UI(board)
        if self.device.get("profiles"):
            from app.vsim import Profiles
            self.profiles = Profiles(self.device["profiles"], flash.join(fdir, "vsim.json"))
        else:
            self.profiles = NoProfiles
        self.radio = Radio(board, self.profiles, self._urc, self.device.get("linger_ms", 5000),
                           self.device.get("apn"))
        self.radio.on_no_network = self._no_network
        self.dedup = Deduper()
        self.session = Session(board, self.device, self.outbox, self.radio.up, self.on_message,
                               self.status_msg, keepalive=self.device.get("keepalive", 60),
                               on_link=self._on_link, radio=self.radio)
        self.radio.on_down = self.session.kick
        self.alarm = Alarm(self.ui, self.outbox, self.snapshot, self.session.kick, self.clock,
                           self._alarm_changed)
        # The rooms' state, all here: each module's header says which part is its own.
        self.calls = None          # app.calls.Calls, loaded with the first call (_calls)
        self.fall = None
        self.countdown = None      # a fall countdown in progress: an Event set to cancel it
        self.awaiting_ack = None   # cid of a message the wearer must confirm
        self.track_until = None
        self.track_s = None
        self._track_next = None    # ticks of the next tracking report
        self._alarm_track = None   # [ticks of the alarm, fix sent, ticks of the last report]
        self._fired = None         # reminder id -> local day it fired, read from flash (app/reminders.py)
        self._dose = None          # [id, due, deadline]: a dose waiting for the wearer's press
        self._low_path = flash.join(fdir, "lowbatt")
        self._emergency_dialled = False
        self._fallback_done = False  # the alarm went by SMS and a call (app/fallback.py)
        self._hr = None            # (bpm, ticks) of the last reading
        self._hr_busy = False
        self._hr_tried = None      # ticks of the last reading started
        self._hr_for = []          # alert mids waiting for the reading in progress
        self.ticked = self.boot_ticks  # ticks of the periodic checks' latest turn (app/routine.py)
        self.next_checkin = None   # ticks of the next check-in (app/routine.py)
        # app/welfare.py's state, one list (each attribute here is a slot in this
        # object's dict, for good): [ticks of the last movement, [on skin, ticks since]
        # or None, ticks of the PPG's last look, the check-in being asked or None,
        # (day, "HH:MM") of the last one asked].
        self.welfare = [self.boot_ticks, None, self.boot_ticks, None, None]
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
        m = messages.status(self.outbox.new_mid(), s["ts"], batt=s["batt"], net=s["net"],
                            uptime=up, cfg=self.cfg.get("version", 0),
                            outbox=self.outbox.count())
        # The wearer (app/welfare.py, docs/protocol.md): seconds since the last movement
        # felt (since boot at most), and whether the PPG saw skin, since when.
        wf, now = self.welfare, self.clock.ticks_ms()
        m["still_s"] = self.clock.ticks_diff(now, wf[0]) // 1000
        if wf[1] is not None:
            m["worn"] = wf[1][0]
            m["worn_s"] = self.clock.ticks_diff(now, wf[1][1]) // 1000
        return m

    def put_loc(self, reason, ref=None):
        s = self.snapshot()
        # The pulse of the last minute goes along: during an alarm the call centre
        # sees it change, and a reading that came after the alert left still arrives.
        hr = self._hr_recent()
        self.outbox.put("loc", messages.loc_report(self.outbox.new_mid(), s["ts"], reason, loc=s["loc"],
                                                   cell=s["cell"], batt=s["batt"], ref=ref,
                                                   vitals={"hr": hr} if hr else None))
        self.session.kick()

    # --- the wearer -------------------------------------------------------------------
    def on_click(self):
        # The black button: answer what is asking, else show the watch face.
        if self.countdown is not None:
            self.countdown.set()
            self.countdown = None
            self.ui.show("Fall alarm cancelled")
        elif self.alarm.in_cancel_window(self.cfg.get("cancel_window_s", 10)):
            self.alarm.cancel()
        elif self.welfare[3] is not None:  # "Are you OK?" on the screen (app/welfare.py)
            from app.welfare import checkin_ok
            checkin_ok(self)
        elif self.awaiting_ack is not None:
            cid, self.awaiting_ack = self.awaiting_ack, None
            self.dedup.put(cid, (True, None))
            self._ack(cid, True, None)
            self.ui.show("Thank you")
            self.radio.want("ack")
            asyncio.create_task(self._release_when_sent("ack"))
        elif self._dose is not None:
            from app.reminders import confirm
            confirm(self)
        elif self.calls is not None and self.calls.ringing():
            asyncio.create_task(self.calls.answer())
        else:
            asyncio.create_task(self.ui.watch_face())

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

    def healthy(self):
        # The watchdog is fed only while the app moves: the periodic checks
        # (the fall detector) tick, and a powered radio takes its steps.
        now = self.clock.ticks_ms()
        stalled = self.clock.ticks_diff(now, self.ticked) > _TICK_STALL_MS
        r = self.radio
        stuck = r.powered and self.clock.ticks_diff(now, r.beat) > _RADIO_STALL_MS
        if stalled or stuck:
            print("watch: not feeding the watchdog:", "checks stalled" if stalled else "radio stuck")
            return False
        return True

    async def run(self):
        await self.board.start()
        self.ui.show("Ready")
        self.alarm.restore()
        Buttons(self.board, lambda: self.cfg.get("sos_hold_ms", 1000), self.on_sos, self.on_click)
        if self.board.rtc()[0] == "accel":
            # The LIS3DH's free-fall interrupt woke the watch (board.rtc(): the
            # wake reason after a deep sleep, the RTC's clock and memory, which
            # deep sleep keeps): its FIFO holds the
            # last 640 ms (32 samples at 50 Hz), the fall's history only until the
            # stream overwrites it. Read at once, before anything else runs. A check
            # that fails is logged, as in the periodic task: the watch still starts,
            # and its SOS button with it.
            try:
                self._fall_check()
            except Exception as e:
                print("watch: fall check at wake failed", repr(e))
        if self.board.reset_cause() == "deepsleep" and self.board.button("red"):
            # The SOS button woke the watch from deep sleep (a reboot) and is
            # still held: the press began before the app could time it.
            self.on_sos()
        for task in (self.radio.run(), self.session.run(), self.checkins(), self.periodic()):
            asyncio.create_task(task)
        await self._main_loop()

    async def _main_loop(self):
        # The watchdog is fed from this loop while the app is healthy(): if the
        # loop or a task it watches stalls, the watchdog resets the watch.
        # A collection every second keeps the live objects packed low in the heap:
        # left to run only when the heap is exhausted, the GC finds the survivors
        # scattered over all of it, and a 700-byte block (a network read, the
        # pulse samples) may not exist any more in an ESP32's 100 KB.
        # Idle, the CPU light-sleeps until asyncio's next timer (the board
        # cuts the sleep there) and then yields, so every task gets its turn:
        # light sleep stops the whole VM.
        gc_at = idle_since = self.clock.ticks_ms()
        deep_after = self.device.get("deep_sleep_after_s", 0) * 1000
        while True:
            if self.wdt and self.healthy():
                self.wdt.feed()
            now = self.clock.ticks_ms()
            if self.clock.ticks_diff(now, gc_at) >= _GC_EVERY_MS:
                gc_at = now
                gc.collect()
            if self.idle() and hasattr(self.board, "light_sleep"):
                if deep_after and self.clock.ticks_diff(now, idle_since) >= deep_after:
                    self._deep_sleep(now)
                self.board.light_sleep(_IDLE_SLEEP_MS)
                await asyncio.sleep_ms(0)
            else:
                idle_since = now
                await self.clock.sleep_ms(_GC_EVERY_MS)

    def _deep_sleep(self, now):
        # Idle for deep_sleep_after_s (a device option, off by default): sleep
        # until the next check-in, or the next reminder or check-in time; the SOS
        # button, the accelerometer's own free-fall interrupt or the timer wakes the
        # watch with a reboot. The CPU runs nothing meanwhile, so only with nothing
        # on flash left to send, no alarm, and no fall candidate being judged.
        if self.next_checkin is None or self.outbox.count() or self.alarm.active():
            return
        if self.fall is not None and getattr(self.fall, "stage", "idle") != "idle":
            return
        ms = self.clock.ticks_diff(self.next_checkin, now)
        if self.cfg.get("reminders") or self.cfg.get("checkin_at"):
            from app import reminders  # loaded only by a watch that has either
            local = reminders.to_next_local_s(self)
            if local is None:
                return
            ms = min(ms, local * 1000)
        if ms > _DEEP_SLEEP_MIN_MS:
            print("watch: deep sleep for", ms // 1000, "s")
            # RAM is lost: the check-in's hour goes into RTC memory, on the RTC's clock.
            self.board.rtc(b"checkin %d" % (self.board.rtc()[1] + ms // 1000))
            self.board.deep_sleep(ms)
