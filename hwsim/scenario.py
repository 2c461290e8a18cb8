"""Scenario files (TOML): the world, a timeline of events and wearer actions, expectations."""
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
    rssi: int = -85  # dBm
    rat: str = "LTE"


@dataclass
class WorldSpec:
    lat: float = 45.7640
    lon: float = 4.8357
    indoors: bool = False
    coverage: bool = True
    wall_clock: bool = True  # False: the watch boots with no valid time
    battery_pct: int = 80
    battery_mv: int = 3950
    cell: CellSpec = field(default_factory=CellSpec)


@dataclass
class ModemSpec:
    boot_s: float = 1.0       # power-on to first answer
    register_s: float = 1.0   # booted (or coverage back) to registered
    ttff_s: float = 1.5       # GNSS time to first fix, outdoors
    cpin: str = "+CPIN: READY"


@dataclass
class Action:
    at: float
    press: str | None = None
    hold: float = 0.2
    coverage: bool | None = None
    indoors: bool | None = None
    move: tuple[float, float] | None = None


@dataclass
class Expectation:
    within: float
    display: str | None = None
    vibrate: bool = False

    def describe(self) -> str:
        what = f'display "{self.display}"' if self.display else "vibration"
        return f"{what} within {self.within:g}s"

    def matches(self, ev: dict) -> bool:
        if self.display is not None:
            return ev["type"] == "display" and ev["text"] == self.display
        return self.vibrate and ev["type"] == "vibrate"


@dataclass
class Scenario:
    name: str
    description: str = ""
    world: WorldSpec = field(default_factory=WorldSpec)
    modem: ModemSpec = field(default_factory=ModemSpec)
    held_at_boot: list[str] = field(default_factory=list)
    timeline: list[Action] = field(default_factory=list)
    expect: list[Expectation] = field(default_factory=list)


class ScenarioError(ValueError):
    pass


def _build(cls, data: dict, where: str):
    try:
        return cls(**data)
    except TypeError as exc:
        raise ScenarioError(f"{where}: {exc}") from None


def parse(doc: dict, name: str = "scenario") -> Scenario:
    world = dict(doc.get("world", {}))
    cell = _build(CellSpec, world.pop("cell", {}), "[world.cell]")
    actions = []
    for i, a in enumerate(doc.get("timeline", [])):
        a = dict(a)
        if "move" in a:
            a["move"] = tuple(a["move"])
        act = _build(Action, a, f"[[timeline]] #{i + 1}")
        if act.press is None and act.coverage is None and act.indoors is None and act.move is None:
            raise ScenarioError(f"[[timeline]] #{i + 1}: nothing happens (press, coverage, indoors or move)")
        actions.append(act)
    expects = [_build(Expectation, e, f"[[expect]] #{i + 1}") for i, e in enumerate(doc.get("expect", []))]
    for i, e in enumerate(expects):
        if e.display is None and not e.vibrate:
            raise ScenarioError(f"[[expect]] #{i + 1}: expects nothing (display or vibrate)")
    return Scenario(
        name=doc.get("name", name),
        description=doc.get("description", ""),
        world=_build(WorldSpec, {**world, "cell": cell}, "[world]"),
        modem=_build(ModemSpec, doc.get("modem", {}), "[modem]"),
        held_at_boot=list(doc.get("held_at_boot", [])),
        timeline=sorted(actions, key=lambda a: a.at),
        expect=expects,
    )


def load(path_or_name: str | Path) -> Scenario:
    """A file path, or the name of a bundled scenario (``sos_demo``)."""
    path = Path(path_or_name)
    if not path.exists():
        bundled = SCENARIO_DIR / f"{path_or_name}.toml"
        if not bundled.exists():
            raise ScenarioError(f"no scenario file {path_or_name} (bundled: "
                                f"{', '.join(p.stem for p in SCENARIO_DIR.glob('*.toml'))})")
        path = bundled
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return parse(doc, path.stem)
