"""A board on a pseudo-terminal: MicroPython's raw REPL around the unix micropython.

The unix port has no raw REPL of its own, so this harness speaks it on the pty's
master side, byte for byte as MicroPython's shared/runtime/pyexec.c does
(documented in "MicroPython remote control: raw REPL" and "raw-paste mode",
docs.micropython.org/en/latest/reference/repl.html): Ctrl-A enters raw mode
("raw REPL; CTRL-B to exit\\r\\n>"), Ctrl-D with an empty buffer soft-resets ("OK\\r\\n",
"MPY: soft reboot\\r\\n", boot.py, the banner again), Ctrl-D after code answers "OK",
then the output, "\\x04", the exception, "\\x04", ">". Raw-paste (Ctrl-E "A" Ctrl-A)
answers "R\\x01", the window size (2 bytes, little-endian) and a first "\\x01"
window, one more "\\x01" per window consumed, "\\x04" when the host's "\\x04" ends
the code, then the output framed as above. The code itself runs in a real
micropython process, its filesystem rooted in ``root`` (a VfsPosix mounted at /),
with globals kept until the next reset. What the process cannot be, it is told:
``os.uname()`` answers as an ESP32 build does, ``machine.reset()`` ends the
process (the harness boots a new one: a hard reset), ``machine.WDT`` marks a
watchdog that, as on the ESP32, a soft reset does not stop (only a hard reset).
At a hard reset the new process runs boot.py then main.py, as the ports'
main.c do (boot.py at every reset, soft ones included; main.py only when the
REPL is the friendly one, ``pyexec_mode_kind == PYEXEC_MODE_FRIENDLY_REPL``);
the friendly REPL follows (a main.py that runs forever would hold
the harness: the firmware's fails at once on the unix port, having no board).
"""
from __future__ import annotations

import os
import struct
import subprocess
import threading
import tty
from pathlib import Path

from hwsim.firmware import find_micropython

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
WINDOW = 128  # an ESP32's raw-paste window: half of MICROPY_REPL_STDIN_BUFFER_MAX (256)
HARD_RESET_RC = 42
# What an ESP32 prints on its UART after a software reset (ROM, then MicroPython).
ROM_BOOT = (b"ets Jul 29 2019 12:21:46\r\n\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n"
            b"configsip: 0, SPIWP:0xee\r\nentry 0x400805f0\r\n")

BOARD = r"""
import sys, os, vfs
_wdt_mark = open(os.getenv("REPL_BOARD_WDT"), "a")
vfs.umount("/")
vfs.mount(vfs.VfsPosix(os.getenv("REPL_BOARD_ROOT")), "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
import machine as _machine
from collections import namedtuple
_v = sys.implementation.version
_uname = namedtuple("uname_result", ("sysname", "nodename", "release", "version", "machine"))(
    "esp32", "esp32", "%d.%d.%d" % _v[:3], "v%d.%d.%d on 2026-08-29" % _v[:3],
    "Generic ESP32 module with SPIRAM with ESP32")
class _Shim:
    pass
def _shim(mod, **extra):
    s = _Shim()
    for k in dir(mod):
        if not k.startswith("__"):
            setattr(s, k, getattr(mod, k))
    for k in extra:
        setattr(s, k, extra[k])
    return s
class _HardReset(BaseException):
    pass
def _reset():
    raise _HardReset()
class _WDT:
    def __init__(self, id=0, timeout=5000):
        _wdt_mark.write("started %d\n" % timeout)
        _wdt_mark.flush()
    def feed(self):
        pass
sys.modules["os"] = _shim(os, uname=lambda: _uname)
sys.modules["machine"] = _shim(_machine, reset=_reset, WDT=_WDT)
_g = {"__name__": "__main__"}
_in = sys.stdin.buffer
_out = sys.stdout
def _read(n):
    b = b""
    while len(b) < n:
        c = _in.read(n - len(b))
        if not c:
            raise SystemExit(0)
        b += c
    return b
while True:
    _code = _read(int.from_bytes(_read(4), "little"))
    _err = None
    try:
        exec(_code, _g)
    except _HardReset:
        sys.exit(42)
    except BaseException as e:
        _err = e
    _out.write("\x04")
    if _err is not None:
        sys.print_exception(_err)
    _out.write("\x04")
"""
RUN_FILE = "import os\ntry:\n    os.stat(%r)\nexcept OSError:\n    pass\nelse:\n    exec(open(%r).read(), globals())\n"


class ReplBoard:
    def __init__(self, root: Path, heap: str = "4M"):
        self.root = Path(root)
        self.heap = heap
        self.wdt_mark = self.root.parent / (self.root.name + ".wdt")
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.console = bytearray()      # everything the board wrote
        self.hard_resets = 0
        self.writes_under_watchdog = 0  # files opened for writing while a watchdog ran
        self.scripts_run: list[str] = []  # boot.py / main.py, in order, at each boot
        self.proc: subprocess.Popen | None = None
        self.mode = "friendly"
        self._stop = False
        self._booted = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    # --- the board --------------------------------------------------------------------
    def start(self) -> ReplBoard:
        self.wdt_mark.write_text("")
        self._hard_boot(first=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._kill()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> ReplBoard:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def watchdog_running(self) -> bool:
        return bool(self.wdt_mark.read_text().strip())

    def wait_hard_resets(self, n: int, timeout: float = 20) -> bool:
        """Until the board has been hard-reset n times and has booted again (mpremote's
        `reset` does not wait for the board: the harness reboots after it has gone)."""
        with self._booted:
            return self._booted.wait_for(lambda: self.hard_resets >= n and self.mode == "friendly", timeout)

    def _write(self, data: bytes) -> None:
        self.console += data
        try:
            os.write(self.master, data)
        except OSError:
            if not self._stop:
                raise

    def _kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def _spawn(self) -> None:
        self._kill()
        env = {**os.environ, "REPL_BOARD_ROOT": str(self.root), "REPL_BOARD_WDT": str(self.wdt_mark)}
        self.proc = subprocess.Popen([find_micropython(), "-X", f"heapsize={self.heap}", "-c", BOARD],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=env)

    def _run_script(self, name: str) -> bool:
        if not (self.root / name).exists():
            return True
        self.scripts_run.append(name)
        return self._exec((RUN_FILE % (name, name)).encode(), framed=False)

    def _hard_boot(self, first: bool = False) -> None:
        self.mode = "booting"
        self.wdt_mark.write_text("")  # a hard reset is the only end of an ESP32 watchdog
        self._write(ROM_BOOT)
        self._spawn()
        if self._run_script("boot.py"):
            self._run_script("main.py")
        v = "MicroPython (unix port, raw REPL harness); Generic ESP32 module with SPIRAM with ESP32"
        self._write(v.encode() + b"\r\nType \"help()\" for more information.\r\n>>> ")
        with self._booted:
            self.mode = "friendly"
            if not first:
                self.hard_resets += 1
            self._booted.notify_all()

    def _soft_reset(self) -> None:
        self._write(b"MPY: soft reboot\r\n")
        self._spawn()
        self._run_script("boot.py")  # main.py runs only in the friendly REPL

    def _exec(self, code: bytes, framed: bool = True) -> bool:
        """Runs code in the process and forwards its output; False if it hard-reset the board."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        if b"'wb')" in code and self.watchdog_running():
            self.writes_under_watchdog += 1
        self.proc.stdin.write(struct.pack("<I", len(code)) + code)
        self.proc.stdin.flush()
        eofs = 0
        while eofs < 2:
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.proc.wait()
                if framed:
                    self._write(b"\x04")  # mpremote's --no-follow reads no further
                self._hard_boot()  # machine.reset() (rc HARD_RESET_RC), or a crash: the board reboots
                return False
            eofs += chunk.count(b"\x04")
            self._write(chunk if framed else chunk.replace(b"\x04", b""))
        return True

    # --- the wire ---------------------------------------------------------------------
    def _serve(self) -> None:
        buf = bytearray()
        paste = False
        consumed = 0
        while not self._stop:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for c in data:
                b = bytes([c])
                if paste:
                    if b == b"\x04":
                        self._write(b"\x04")
                        paste = False
                        if self._exec(bytes(buf)):
                            self._write(b">")
                        buf.clear()
                        continue
                    buf += b
                    consumed += 1
                    if consumed % WINDOW == 0:
                        self._write(b"\x01")
                    continue
                if self.mode == "friendly":
                    if b == b"\x01":
                        self._write(b"\r\n" + RAW_BANNER + b">")
                        self.mode = "raw"
                        buf.clear()
                    elif b == b"\x03":
                        self._write(b"\r\n>>> ")
                    continue
                # raw REPL
                if b == b"\x01":
                    if bytes(buf) == b"\x05A":
                        self._write(b"R\x01" + struct.pack("<H", WINDOW) + b"\x01")
                        paste, consumed = True, 0
                    else:
                        self._write(RAW_BANNER + b">")
                    buf.clear()
                elif b == b"\x02":
                    self._write(b"\r\n>>> ")
                    self.mode = "friendly"
                elif b == b"\x03":
                    buf.clear()
                elif b == b"\x04":
                    self._write(b"OK")
                    if not buf:
                        self._write(b"\r\n")
                        self._soft_reset()
                        self._write(RAW_BANNER + b">")
                    elif self._exec(bytes(buf)):
                        self._write(b">")
                    buf.clear()
                else:
                    buf += b
