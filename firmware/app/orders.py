# What the cloud tells the watch: config and commands (parsed by app/commands.py),
# each acked once, a repeated cid acked again from memory. A mixin of
# app.watch.Watch: it works on the watch's own state (cfg, dedup, awaiting_ack,
# the tracking window) and reaches the radio, outbox and session through it.
import asyncio
from app import flash, messages
from app.commands import BadCommand, parse_command, parse_config


class Orders:
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
            asyncio.create_task(self._calls().dial(cmd["number"], cid=cmd["cid"]))
        elif t == "vsim":
            if not hasattr(self.profiles, "replace"):  # the first profiles: app/vsim.py comes now
                from app.vsim import Profiles
                self.profiles = self.radio.profiles = Profiles(None, flash.join(self.board.flash_dir, "vsim.json"))
            self.profiles.replace(cmd["profiles"])
            self.radio.switch()
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
            if self.radio.gnss_absent():
                return False  # no fix will come: the answer already had the cell
            t = self.radio.fix_ticks()
            if t is not None and self.clock.ticks_diff(t, since) >= 0:
                return True
            await self.clock.sleep_ms(1000)
        return False
