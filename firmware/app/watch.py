# The application: wires the modem, outbox, alarm, commands and cloud session
# together on one asyncio loop. Everything hardware comes in through `board`.
import asyncio
import json
from app import flash, messages
from app.alarm import Alarm
from app.buttons import watch_hold
from app.commands import BadCommand, Deduper, parse_command, parse_config, CONFIG_DEFAULTS
from app.modem import Modem
from app.outbox import Outbox
from app.session import Session

FIX_FRESH_MS = 30000


class Watch:
    def __init__(self, board, boot, wdt=None):
        self.board = board
        self.clock = board.clock
        self.wdt = wdt
        self.boot_ticks = self.clock.ticks_ms()
        fdir = board.flash_dir
        self.device = flash.read_json(flash.join(fdir, "device.json"))
        if not self.device or "id" not in self.device:
            raise ValueError("no device.json in " + fdir)
        self.cfg_path = flash.join(fdir, "config.json")
        self.cfg = flash.read_json(self.cfg_path) or dict(CONFIG_DEFAULTS)
        self.outbox = Outbox(flash.join(fdir, "outbox"), boot,
                             retry_first_ms=self.device.get("alert_retry_ms", 3000))
        self.modem = None
        self.dedup = Deduper()
        self.session = Session(board, self.device, self.outbox, None, self.on_message,
                               self.status_msg, keepalive=self.device.get("keepalive", 60))
        self.alarm = Alarm(board, self.outbox, self.snapshot, self.session.kick)

    # --- what the watch knows about itself --------------------------------------
    def snapshot(self):
        m = self.modem
        loc = None
        cell = rssi = None
        if m is not None:
            cell, rssi = m.cell, m.rssi
            if m.fix is not None:
                loc = dict(m.fix)
                age = m.fix_age_ms()
                if age is None or age > FIX_FRESH_MS:
                    loc["src"] = "last"
        return {"ts": self.clock.wall(), "loc": loc, "cell": cell,
                "batt": self.board.battery(), "net": messages.net_part(cell, rssi)}

    def status_msg(self):
        s = self.snapshot()
        up = self.clock.ticks_diff(self.clock.ticks_ms(), self.boot_ticks) // 1000
        return messages.status(self.outbox.new_mid(), s["ts"], batt=s["batt"], net=s["net"],
                               uptime=up, cfg=self.cfg.get("version", 0),
                               outbox=self.outbox.count())

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
            self.dedup.put(cid, done)
        self._ack(cid, done[0], done[1])

    def act(self, cmd):
        t = cmd["type"]
        if t == "alert_ack":
            self.alarm.on_ack(cmd)
        elif t == "locate":
            s = self.snapshot()
            self.outbox.put("loc", messages.loc_report(
                self.outbox.new_mid(), s["ts"], "request", loc=s["loc"], cell=s["cell"],
                batt=s["batt"], ref=self.alarm.current_ref()))
        elif t == "message":
            self.board.display(cmd["text"])
            self.board.vibrate(400)
        elif t == "ring":
            self.board.vibrate(cmd["seconds"] * 1000)
        else:
            return (False, "unsupported")
        return (True, None)

    def _ack(self, cid, ok, err):
        self.outbox.put("ack", messages.ack(self.outbox.new_mid(), self.clock.wall(), cid, ok, err))
        self.session.kick()

    # --- tasks --------------------------------------------------------------------
    async def heartbeat(self):
        while True:
            await self.clock.sleep_ms(self.cfg.get("heartbeat_s", 3600) * 1000)
            self.outbox.put("status", self.status_msg())
            self.session.kick()

    async def feed(self):
        # Fed from the loop itself: if the loop stalls, the watchdog resets the watch.
        while True:
            if self.wdt:
                self.wdt.feed()
            await self.clock.sleep_ms(1000)

    async def run(self):
        await self.board.start()
        self.board.display("Ready")
        self.alarm.restore()
        r, w = await self.board.modem_uart()
        self.modem = Modem(self.clock, r, w)
        self.session.network_up = self.modem.registered
        asyncio.create_task(self.modem.run())
        asyncio.create_task(self.session.run())
        asyncio.create_task(self.heartbeat())
        asyncio.create_task(watch_hold(self.board, "red",
                                       lambda: self.cfg.get("sos_hold_ms", 1000),
                                       self.alarm.raise_alert))
        await self.feed()
