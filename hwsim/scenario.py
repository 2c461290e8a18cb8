"""Scenario files (TOML): the world, a timeline of events and wearer actions, expectations.

Times (``at``, ``within``) are scenario seconds; ``speed`` says how many of them
pass per real second, so a scenario with realistic modem timings stays cheap.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SCENARIO_DIR = Path(__file__).parent / "scenarios"


@dataclass
class CellSpec:
    mcc: int = 208
    mnc: int = 1
    tac: int = 12345
    cid: int = 67890
    rssi: int = -85  # dBm at the site (or at the wearer when the cell has no position)
    rat: str = "LTE"
    lat: float | None = None  # None: the cell follows the wearer (a flat world)
    lon: float | None = None

    @property
    def mccmnc(self) -> str:
        return f"{self.mcc:03d}{self.mnc:02d}"


@dataclass
class OperatorSpec:
    mcc: int
    mnc: int
    name: str = ""
    # APNs whose SIM profile this network lets register; empty: any. A profile
    # it does not accept is rejected (CEREG stat 3), as a roaming partner would.
    apns: list[str] = field(default_factory=list)
    cost: float = 1.0
    data: bool = True  # False: it registers but passes no data (a dead data link)

    @property
    def mccmnc(self) -> str:
        return f"{self.mcc:03d}{self.mnc:02d}"


@dataclass
class HoleSpec:
    """A place with no coverage at all: a cellar, a lift, a basement."""
    lat: float
    lon: float
    radius_m: float = 30.0
    name: str = ""


@dataclass
class Waypoint:
    at: float
    lat: float
    lon: float
    indoors: bool | None = None


@dataclass
class WorldSpec:
    lat: float = 45.7640
    lon: float = 4.8357
    indoors: bool = False
    coverage: bool = True
    wall_clock: bool = True  # ignored (old files): the watch always boots with no time now
    start: str | None = None  # ISO UTC wall time at scenario t=0; None: real now
    # The local time zone, in quarter hours east of UTC (daylight saving
    # included), as NITZ and AT+CCLK give it: 4 is UTC+1, -20 is UTC-5.
    zone_q: int = 0
    nitz: bool = True  # the network sends its time (NITZ) after registration
    nitz_after_s: float = 4.0  # registered to the NITZ message (MM/EMM information)
    battery_pct: int = 80
    battery_mv: int = 3950  # ignored since the battery model gives it; kept for old files
    battery_mah: float = 600.0
    hr: int = 72  # resting heart rate
    skin_contact: bool = True  # the watch on the wrist: its PPG sensor sees a pulse
    # The air at the wrist, for a barometer ([board] barometer): the site's altitude and
    # the day's sea-level pressure (ICAO standard atmosphere), the wrist's height above the
    # floor (a timeline's wrist_height changes it), the air temperature at the part.
    altitude_m: float = 0.0
    sea_level_pa: float = 101325.0
    wrist_height_m: float = 0.8
    air_temp_c: float = 25.0
    cell: CellSpec = field(default_factory=CellSpec)
    cells: list[CellSpec] = field(default_factory=list)
    operators: list[OperatorSpec] = field(default_factory=list)
    holes: list[HoleSpec] = field(default_factory=list)
    route: list[Waypoint] = field(default_factory=list)


@dataclass
class ModemSpec:
    family: str = "SIM7600"   # or "A7670": answer layouts and GNSS commands differ
    boot_s: float = 11.0      # power-on to a responsive UART (SIM7600/A7670 datasheets)
    register_s: float = 3.0   # booted (or coverage back) to registered
    cops_scan_s: float = 25.0  # AT+COPS=? scans every band
    ttff_s: float | None = None  # forces one time to first fix, whatever the start
    ttff_cold_s: float = 35.0
    ttff_warm_s: float = 5.0
    ttff_hot_s: float = 1.0
    hdop: float = 0.9
    cpin: str = "+CPIN: READY"
    sim: bool = True  # False: no SIM in the slot (AT+CPIN? answers +CME ERROR: 10; emergency calls only)
    answer_delay_s: float = 0.02  # UART turnaround of an ordinary command
    model: str = ""  # AT+CGMM; "" the family's usual one. "A7670E-LASE": the A7670E without GNSS
    answers: bool = True  # False: a dead modem (or UART) that never says anything
    urc_interleave_seed: int | None = None  # set: URCs land between the lines of answers (seeded)
    # Every late_every-th command is answered late_answer_s late (0: never): a modem
    # busy inside (a cell reselection, a call setup), or a host too busy to serve it.
    late_every: int = 0
    late_answer_s: float = 0.0

    @property
    def gnss(self) -> bool:
        """The A76xx variants with an L suffix (A7670E-LASE, A7670G-LLSE...) have no
        GNSS receiver; the -FASE ones have one."""
        return "-L" not in self.model


@dataclass
class LinkSpec:
    """Packet loss on the data link, a Gilbert-Elliott channel (hwsim/link.py):
    ``loss`` is the long-run fraction of packets lost, ``burst`` the mean number
    lost in a row (1: independent losses). TCP turns a loss into a retransmission
    after ``rto_s`` (doubling), and drops the connection after ``max_retries``."""
    loss: float = 0.0
    burst: float = 3.0
    seed: int = 1
    rto_s: float = 1.0      # first retransmission timeout (RFC 6298's minimum)
    max_retries: int = 6    # retransmissions of one segment before TCP gives up (~63 s at 1 s)


@dataclass
class FarEndSpec:
    """Whoever the watch dials, and the network between (hwsim/modem_call.py):
    ringing (+CLCC alerting) after ``alert_after_s``; then ``answer`` says what
    happens: "answer" (after ``answer_after_s``), "busy" (refused after
    ``answer_after_s``: BUSY) or "no_answer" (the network gives up after
    ``no_answer_s``: NO ANSWER). An answered call is hung up by the far end
    ``hangup_after_s`` after it connected (None: it stays until someone else ends it)."""
    answer: str = "answer"
    answer_after_s: float = 3.0
    alert_after_s: float = 1.0
    no_answer_s: float = 60.0
    hangup_after_s: float | None = None


FAR_END_ANSWERS = ("answer", "busy", "no_answer")


@dataclass
class Action:
    at: float
    press: str | None = None
    hold: float = 0.2
    coverage: bool | None = None
    indoors: bool | None = None
    move: tuple[float, float] | None = None
    fall: str | None = None       # a labelled accelerometer trace: forward, backward, ...
    activity: str | None = None   # walking, clapping, sitting_hard, stairs
    incoming_call: str | None = None  # the caller's number
    answer_after: float | None = None  # from now on, a call the watch dials is answered after this
    sms_from: str | None = None
    sms_text: str = ""
    modem_reboot: bool = False
    broker: bool | None = None    # False: the broker is unreachable (the link refuses)
    hangup: bool = False          # the far end hangs up the call in progress
    loss: float | None = None     # packet loss on the data link from now (burst from [link])
    factory_reset: bool = False   # power off, erase the flash (device.json written again), power on
    skin: bool | None = None      # the watch put on (True) or taken off the wrist (False): what its PPG sees
    wrist_height: float | None = None  # the wrist's height above the floor from now, metres (a barometer sees it)

    def does_something(self) -> bool:
        return bool(self.press or self.fall or self.activity or self.incoming_call or self.sms_from
                    or self.modem_reboot or self.hangup or self.factory_reset) or any(
            v is not None for v in (self.coverage, self.indoors, self.move, self.broker, self.loss, self.skin,
                                    self.wrist_height))


@dataclass
class Expectation:
    within: float
    display: str | None = None
    vibrate: bool = False
    dial: str | None = None   # a number the watch dialled
    sms: str | None = None    # a number the watch sent an SMS to (the network took it)
    log: str | None = None    # a firmware log line containing this
    modem: str | None = None  # a modem state: "power on", "booted", "off", "registered"
    after: float = 0.0        # only what happens from this scenario second on counts

    def describe(self) -> str:
        if self.display is not None:
            what = f'display "{self.display}"'
        elif self.dial is not None:
            what = f"dial {self.dial}"
        elif self.sms is not None:
            what = f"SMS to {self.sms}"
        elif self.log is not None:
            what = f'firmware log "{self.log}"'
        elif self.modem is not None:
            what = f"modem {self.modem}"
        else:
            what = "vibration"
        since = f" after {self.after:g}s" if self.after else ""
        return f"{what}{since} within {self.within:g}s"

    def matches(self, ev: dict) -> bool:
        if ev["t"] < self.after:
            return False
        if self.display is not None:
            return ev["type"] == "display" and ev["text"] == self.display
        if self.dial is not None:
            return ev["type"] == "call" and ev.get("state") == "dial" and ev.get("number") == self.dial
        if self.sms is not None:
            return ev["type"] == "sms" and ev.get("state") == "sent" and ev.get("to") == self.sms
        if self.log is not None:
            return ev["type"] == "log" and self.log in ev["line"]
        if self.modem is not None:
            return ev["type"] == "modem" and ev.get("state") == self.modem
        return self.vibrate and ev["type"] == "vibrate"

    def empty(self) -> bool:
        return all(v is None for v in (self.display, self.dial, self.sms, self.log, self.modem)) and not self.vibrate


@dataclass
class BoardSpec:
    """The board's optional parts. barometer: a BMP390 on the I2C bus (hwsim/bmp390.py), at
    barometer_addr (0x77 with SDO high, 0x76 with SDO low)."""
    barometer: bool = False
    barometer_addr: int = 0x77


@dataclass
class Scenario:
    name: str
    description: str = ""
    speed: float = 1.0
    world: WorldSpec = field(default_factory=WorldSpec)
    modem: ModemSpec = field(default_factory=ModemSpec)
    held_at_boot: list[str] = field(default_factory=list)
    timeline: list[Action] = field(default_factory=list)
    expect: list[Expectation] = field(default_factory=list)
    device: dict = field(default_factory=dict)  # extra device.json fields (profiles, timings)
    config: dict = field(default_factory=dict)  # a config document already on flash
    link: LinkSpec = field(default_factory=LinkSpec)  # packet loss on the data link
    far_end: FarEndSpec = field(default_factory=FarEndSpec)  # who answers the calls the watch dials
    board: BoardSpec = field(default_factory=BoardSpec)  # optional parts fitted ([board])


class ScenarioError(ValueError):
    pass


def _build(cls, data: dict, where: str):
    try:
        return cls(**data)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def _list(cls, items, where: str) -> list:
    return [_build(cls, dict(x), f"{where} #{i + 1}") for i, x in enumerate(items or [])]


def parse(doc: dict, name: str = "scenario") -> Scenario:
    world = dict(doc.get("world", {}))
    world["cell"] = _build(CellSpec, world.pop("cell", {}), "[world.cell]")
    world["cells"] = _list(CellSpec, world.pop("cells", []), "[[world.cells]]")
    world["operators"] = _list(OperatorSpec, world.pop("operators", []), "[[world.operators]]")
    world["holes"] = _list(HoleSpec, world.pop("holes", []), "[[world.holes]]")
    world["route"] = sorted(_list(Waypoint, world.pop("route", []), "[[world.route]]"), key=lambda w: w.at)
    actions = []
    for i, a in enumerate(doc.get("timeline", [])):
        a = dict(a)
        if "move" in a:
            a["move"] = tuple(a["move"])
        act = _build(Action, a, f"[[timeline]] #{i + 1}")
        if not act.does_something():
            raise ScenarioError(f"[[timeline]] #{i + 1}: nothing happens (press, coverage, indoors, move, "
                                "fall, activity, incoming_call, sms_from, modem_reboot, broker, hangup, loss, "
                                "factory_reset, skin or wrist_height)")
        actions.append(act)
    expects = [_build(Expectation, e, f"[[expect]] #{i + 1}") for i, e in enumerate(doc.get("expect", []))]
    for i, e in enumerate(expects):
        if e.empty():
            raise ScenarioError(f"[[expect]] #{i + 1}: expects nothing (display, vibrate, dial, log or modem)")
        if not 0 <= e.after < e.within:
            raise ScenarioError(f"[[expect]] #{i + 1}: after must be from 0 to below within, got {e.after!r}")
    speed = doc.get("speed", 1.0)
    if not isinstance(speed, (int, float)) or not 0.1 <= speed <= 200:
        raise ScenarioError(f"speed must be a number from 0.1 to 200, got {speed!r}")
    modem = _build(ModemSpec, doc.get("modem", {}), "[modem]")
    link = _build(LinkSpec, doc.get("link", {}), "[link]")
    if not 0.0 <= link.loss <= 1.0 or link.burst < 1.0:
        raise ScenarioError(f"[link] loss must be in [0, 1] and burst >= 1, got {link.loss!r}, {link.burst!r}")
    far_end = _build(FarEndSpec, doc.get("far_end", {}), "[far_end]")
    if far_end.answer not in FAR_END_ANSWERS:
        raise ScenarioError(f"[far_end] answer must be one of {', '.join(FAR_END_ANSWERS)}, got {far_end.answer!r}")
    if modem.family not in ("SIM7600", "A7670"):
        raise ScenarioError(f"[modem] family must be SIM7600 or A7670, got {modem.family!r}")
    board = _build(BoardSpec, doc.get("board", {}), "[board]")
    if board.barometer_addr not in (0x76, 0x77):
        raise ScenarioError(f"[board] barometer_addr must be 0x76 or 0x77, got {board.barometer_addr!r}")
    return Scenario(
        name=doc.get("name", name),
        description=doc.get("description", ""),
        speed=float(speed),
        world=_build(WorldSpec, world, "[world]"),
        modem=modem,
        held_at_boot=list(doc.get("held_at_boot", [])),
        timeline=sorted(actions, key=lambda a: a.at),
        expect=expects,
        device=dict(doc.get("device", {})),
        config=dict(doc.get("config", {})),
        link=link,
        far_end=far_end,
        board=board,
    )


def load(path_or_name: str | Path) -> Scenario:
    """A file path, or the name of a bundled scenario (``sos_demo``)."""
    path = Path(path_or_name)
    if not path.exists():
        bundled = SCENARIO_DIR / f"{path_or_name}.toml"
        if not bundled.exists():
            raise ScenarioError(f"no scenario file {path_or_name} (bundled: "
                                f"{', '.join(sorted(p.stem for p in SCENARIO_DIR.glob('*.toml')))})")
        path = bundled
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse(doc, path.stem)
