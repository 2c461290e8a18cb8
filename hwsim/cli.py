"""``python -m hwsim run SCENARIO --broker HOST:PORT --device-id ID --secret SECRET``"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from hwsim.events import Recorder
from hwsim.runner import run_scenario
from hwsim.scenario import ScenarioError, load


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hwsim", description="Simulated OpenPERS watch running the real firmware")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="play a scenario against a broker")
    run.add_argument("scenario", help="a scenario file, or a bundled name (sos_demo)")
    run.add_argument("--broker", type=_host_port, default=("127.0.0.1", 1883), help="HOST:PORT of the MQTT broker")
    run.add_argument("--device-id", required=True)
    run.add_argument("--ca", help="the broker's CA (PEM): the watch connects over TLS and verifies the broker "
                                  "against it, as `pers flash --ca` provisions it (--broker is then the TLS port)")
    run.add_argument("--secret", default=os.environ.get("HWSIM_SECRET"),
                     help="the device secret (default: $HWSIM_SECRET, which keeps it out of `ps`)")
    run.add_argument("--flash-dir", help="the watch's flash (default: a fresh temporary directory)")
    run.add_argument("--events", help="also write every event as JSON lines to this file")
    run.add_argument("--stay", action="store_true", help="keep the watch running after the expectations")
    run.add_argument("--speed", type=float, help="scenario seconds per real second (default: the scenario's)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the firmware's own log lines")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.secret:
        p.error("the device secret is required: --secret or $HWSIM_SECRET")
    try:
        scenario = load(args.scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.speed is not None:
        if not 0.1 <= args.speed <= 200:
            p.error("--speed must be from 0.1 to 200")
        scenario.speed = args.speed
    events = open(args.events, "w") if args.events else None
    stay = threading.Event() if args.stay else None
    previous = {}
    if stay is not None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stay.set())
    print(f"scenario {scenario.name}: {scenario.description}".rstrip(": "), flush=True)
    if scenario.speed != 1:
        print(f"(at {scenario.speed:g}x real time; times below are scenario seconds)", flush=True)
    try:
        ok, reason = run_scenario(scenario, args.device_id, args.secret, args.broker,
                                  args.flash_dir, Recorder(sys.stdout, events, args.verbose), stay, ca=args.ca)
    except KeyboardInterrupt:
        ok, reason = False, "interrupted"
    except (OSError, RuntimeError) as exc:
        ok, reason = False, f"simulation failed: {exc}"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if events:
            events.close()
    print(f"{'PASS' if ok else 'FAIL'}: {reason}", flush=True)
    return 0 if ok else 1
