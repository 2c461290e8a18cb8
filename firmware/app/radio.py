# The power policy of the radio: the modem (and its GNSS) is on only while
# something needs it: an alarm, a check-in, a call, tracking. Idle means both
# off, which is what makes a week of standby on a small battery. While on, it
# keeps the modem set up (again after a reboot of its own), registered on the
# best virtual-SIM profile, and polled for cell, signal and GNSS fix.
from app import Flag, Wake, flash, netclock
from app.modem import Modem
from micropython import const

_POLL_MS = const(2000)
_FIX_POLL_MS = const(500)
_LINGER_MS = const(20000)  # stay on a little after the last need: commands may follow
_RETRY_ATTACH_MS = const(15000)
_DEAD_LINK_FAILURES = const(3)  # registered, yet the data link refused this many times
_FIX_FRESH_MS = const(30000)  # a fix this recent says which country the wearer is in
_CLOCK_TRIES = const(15)  # NITZ comes seconds after registration, if the network sends it
_IDLE_CHECK_MS = const(3600000)  # off, nobody needs it: a look now and then, want() wakes it
_RETRY_FIRST_MS = const(5000)  # a modem that failed to come up: off, then again after this, doubling
_RETRY_MAX_MS = const(300000)
_RETRY_MAX_ALARM_MS = const(30000)  # in an alarm a dead modem is tried again sooner
STALL_MS = const(300000)  # beyond the longest step: a scan (180 s), a selection (120 s)


class NoProfiles:
    # A watch without virtual-SIM profiles (the usual case): app/vsim.py, the
    # ranking and the per-country memory, stays out of the heap until a vsim
    # command brings profiles (app/orders.py).
    profiles = ()
    current = None


class Radio:
    def __init__(self, board, profiles, on_urc=None, linger_ms=_LINGER_MS, apn=None):
        self.board = board
        self.clock = board.clock
        self.profiles = profiles
        self.on_urc = on_urc
        self.linger_ms = linger_ms
        self.apn = apn            # the watch's own (home) SIM: automatic selection with this APN
        self.needs = {}           # reason -> True
        self.gnss_needs = {}
        self.up = Flag()  # registered: the session may open the data link
        self.modem = None
        self.alarm = False        # in an alarm cost is no object
        self.on_no_network = None  # () -> None: every profile failed
        self.on_down = None        # () -> None: about to power off
        self.link_failures = 0
        self.reselect = False     # the cloud sent new profiles: switch once no alarm runs
        self.powered = False
        self.power_ons = 0
        self.failed_ups = 0  # bring-ups in a row that failed (back-off)
        # Ticks of the radio's latest step: no step of its own (a network scan,
        # a selection, the modem's boot) lasts longer than STALL_MS, so a beat
        # older than that while powered is a stuck task (app/watch.py healthy()).
        self.beat = self.clock.ticks_ms()
        self.fdir = board.flash_dir
        self.last = flash.read_json(flash.join(self.fdir, "last.json"), {}) or {}  # cell, fix
        self._wake = Wake(self.clock)

    # --- who needs the radio --------------------------------------------------------
    def want(self, reason, gnss=False):
        self.needs[reason] = True
        if gnss:
            self.gnss_needs[reason] = True
        self._wake.set()

    def done(self, reason):
        self.needs.pop(reason, None)
        self.gnss_needs.pop(reason, None)
        self._wake.set()

    def wanted(self):
        return bool(self.needs)

    # --- what it knows ----------------------------------------------------------------
    @property
    def cell(self):
        m = self.modem
        return (m.cell if m and m.cell else None) or self.last.get("cell")

    @property
    def rssi(self):
        return self.modem.rssi if self.modem else None

    def fix(self):
        # (loc, age ms or None): the modem's fix this power-on, else the one kept on flash
        m = self.modem
        if m is not None and m.fix is not None:
            return m.fix, m.fix_age_ms()
        return self.last.get("fix"), None

    def gnss_absent(self):
        # The modem has no GNSS (A7670E-LASE): the cell is the only position.
        return self.modem is not None and self.modem.gnss_absent

    def fix_ticks(self):
        return self.modem.fix_ticks if self.modem else None

    def profile_name(self):
        p = self.profiles.current
        return p.get("name") if p else None

    def _keep(self, key, value):
        if value is not None and self.last.get(key) != value:
            self.last[key] = value
            flash.write_json(flash.join(self.fdir, "last.json"), self.last)

    def link_refused(self):
        # The session could not open the data link although the modem is registered.
        if self.up.is_set():
            self.link_failures += 1
            self._wake.set()

    def link_ok(self):
        self.link_failures = 0

    def switch(self):
        # New profiles from the cloud (a vsim command): registered again on the
        # best of them at the next poll, never in the middle of an alarm.
        self.reselect = True
        self._wake.set()

    # --- the modem's life ---------------------------------------------------------------
    async def run(self):
        while True:
            while not self.needs:
                self._wake.clear()
                await self._wake.wait_ms(_IDLE_CHECK_MS)
            try:
                await self._powered_session()
            except Exception as e:
                print("radio: failed", repr(e))
            await self.clock.sleep_ms(self._retry_ms())

    def _retry_ms(self):
        # After a failed bring-up the modem is off; the next try backs off
        # (5 s doubling to 5 min, 30 s in an alarm) so a dead modem or SIM
        # does not drain the battery one 30 s boot wait after another.
        n = self.failed_ups
        if not n:
            return 1000
        ms = _RETRY_FIRST_MS << min(n - 1, 6)
        top = _RETRY_MAX_ALARM_MS if self.alarm else _RETRY_MAX_MS
        print("radio: modem retry in", min(ms, top) // 1000, "s")
        return min(ms, top)

    async def _powered_session(self):
        self.beat = self.clock.ticks_ms()
        r, w = await self.board.modem_uart()
        self.powered = True
        self.power_ons += 1
        m = Modem(self.clock, r, w, self.on_urc)
        self.modem = m
        m.start()
        print("radio: modem on")
        answered = False
        try:
            if not await m.bring_up():
                if m.no_sim and self.alarm:
                    await self._emergency_only(m)
                    return
                print("radio: modem bring-up failed")
                self.failed_ups += 1
                return
            self.failed_ups = 0
            await m.gnss(bool(self.gnss_needs))  # the sky needs no registration: start early
            await self._attach(m)
            await self._keep_up(m)
            answered = await self._shut_down(m)
        finally:
            self.up.clear()
            self.modem = None
            self.powered = False
            if not answered and m.alive:
                # Never left on: AT+CPOF if it hears us, else the board's PWRKEY pulse.
                answered = await m.power_off()
            self.board.modem_power_off(w, pulse=not answered)
            print("radio: modem off" if answered else "radio: modem off (PWRKEY)")

    async def _emergency_only(self, m):
        # No SIM ready: no registration, data or SMS, but an emergency call
        # needs none of them (112 in the EU). On while the alarm lasts.
        print("radio: no SIM, emergency calls only")
        m.ready = True
        if self.on_no_network:
            self.on_no_network()
        while m.alive and self.alarm:
            self.beat = self.clock.ticks_ms()  # waiting on purpose, not stuck (watchdog health)
            self._wake.clear()
            await self._wake.wait_ms(_POLL_MS)

    async def _keep_up(self, m):
        # While needed: set up again after a reboot, re-attach, poll; returns when idle.
        idle_since = None
        next_attach = 0
        clock_tries = 0
        while m.alive:
            self.beat = self.clock.ticks_ms()
            if m.rebooted:
                self.up.clear()
                if not await m.bring_up():
                    self.failed_ups += 1
                    return
                await self._attach(m)
                continue
            if self.reselect and not self.alarm:
                self.reselect = False
                self.up.clear()
                await self._switch(m)
                next_attach = self.clock.ticks_add(self.clock.ticks_ms(), _RETRY_ATTACH_MS)
            await m.poll()
            now = self.clock.ticks_ms()
            if m.registered.is_set():
                self.up.set()
                if clock_tries < _CLOCK_TRIES:
                    clock_tries += 1
                    if netclock.from_cclk(self.clock, await m.clock_line()):
                        clock_tries = _CLOCK_TRIES
            else:
                self.up.clear()
                if not m.silent and self.clock.ticks_diff(now, next_attach) >= 0:
                    await self._attach(m)
                    next_attach = self.clock.ticks_add(self.clock.ticks_ms(), _RETRY_ATTACH_MS)
            if self.link_failures >= _DEAD_LINK_FAILURES:
                print("radio: data link dead on", self.profile_name())
                self.link_failures = 0
                self.up.clear()
                await self._attach(m, avoid=self.profiles.current)
            await m.gnss(bool(self.gnss_needs))
            self._keep("cell", m.cell)
            if m.fix is not None and m.fix_age_ms() is not None and m.fix_age_ms() < _POLL_MS * 2:
                self._keep("fix", m.fix)
                netclock.from_fix(self.clock, m.fix, m.fix_age_ms())
            if self.needs:
                idle_since = None
            elif idle_since is None:
                idle_since = self.clock.ticks_ms()
            elif self.clock.ticks_diff(self.clock.ticks_ms(), idle_since) >= self.linger_ms:
                break
            self._wake.clear()
            # Waiting for a first fix: ask often, an alarm may need it any second.
            wait = _FIX_POLL_MS if m.gnss_on and m.fix is None else _POLL_MS
            await self._wake.wait_ms(wait)

    async def _shut_down(self, m):
        # True when the modem took AT+CPOF.
        if not m.alive:
            return False
        # Let the session say DISCONNECT first: a clean goodbye keeps the
        # broker from publishing the "offline" will for a planned sleep.
        self.up.clear()
        if self.on_down:
            self.on_down()
        await self.clock.sleep_ms(1000)
        await m.gnss(False)
        return await m.power_off()

    async def _home(self, m):
        # The watch's own SIM, any network that takes it (roaming if need be).
        ok = await m.select(self.apn, None)
        if ok:
            if hasattr(self.profiles, "replace"):  # NoProfiles has no current to clear
                self.profiles.current = None
            self.up.set()
            print("radio: registered with the home profile")
        return ok

    async def _switch(self, m):
        # The cloud's profiles, each on its own networks with no scan (minutes,
        # and an alarm may come any second); none registers: the home profile.
        for p in self.profiles.profiles:
            for plmn in p.get("mccmnc", ()):
                if await self._try(m, p, plmn):
                    return True
        return await self._home(m)

    async def _attach(self, m, avoid=None):
        # Registers with the best profile, else the home one; True when registered.
        profiles = self.profiles
        if not profiles.profiles:
            return await self._home(m)
        from app.vsim import choose_country
        cell = self.cell
        cell_mcc = cell.get("mcc") if cell else None
        fix, age = self.fix()
        mcc, source = choose_country(cell_mcc, fix, age is not None and age < _FIX_FRESH_MS)
        if source == "gnss":
            print("radio: country %s from GNSS (cell: %s)" % (mcc, cell_mcc))
        tried = []
        mem = profiles.remembered(mcc)
        if mem and mem[0] is not avoid:
            if await self._try(m, mem[0], mem[1], mcc if source == "gnss" else None):
                return True
            tried.append((mem[0].get("name"), mem[1]))
            profiles.forget(mcc)
        self.beat = self.clock.ticks_ms()
        visible = [plmn for plmn, _ in await m.scan()]
        print("radio: networks in range", visible)
        for p, plmn in profiles.ranked(visible, self.alarm, mcc):
            if (p.get("name"), plmn) in tried or p is avoid:
                continue
            if await self._try(m, p, plmn, mcc if source == "gnss" else None):
                return True
            tried.append((p.get("name"), plmn))
        print("radio: no profile registers")
        if self.apn and await self._home(m):
            return True
        if self.on_no_network:
            self.on_no_network()
        return False

    async def _try(self, m, profile, plmn, country=None):
        # country: where GNSS puts the wearer; the profile is remembered for it.
        print("radio: trying profile", profile.get("name"), "on", plmn)
        self.beat = self.clock.ticks_ms()
        if await m.select(profile.get("apn"), plmn):
            await m.poll()
            mcc = country or (m.cell.get("mcc") if m.cell else int(plmn[:3]))
            self.profiles.remember(mcc, profile, plmn)
            self.link_failures = 0
            self.up.set()
            print("radio: registered with profile", profile.get("name"))
            return True
        print("radio: profile", profile.get("name"), "rejected on", plmn)
        return False
