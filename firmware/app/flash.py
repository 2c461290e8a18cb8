# Small helpers for files on flash. Every write is atomic (tmp file, then
# rename): a power cut leaves the old content or the new, never half of one.
import json
import os
from micropython import const


def join(*parts):
    return "/".join(parts)


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    parts = path.split("/")
    for i in range(1, len(parts) + 1):
        here = "/".join(parts[:i])
        if here and not exists(here):
            os.mkdir(here)


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        if hasattr(f, "flush"):
            f.flush()
    os.rename(tmp, path)


def read(path, default=None):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return default


def read_json(path, default=None):
    data = read(path)
    if data is None:
        return default
    try:
        return json.loads(data)
    except ValueError:
        return default


def write_json(path, obj):
    write_atomic(path, json.dumps(obj).encode())


# The installation id: 12 characters of base 32 (Crockford's letters, lower
# case: no i, l, o, u; safe in a file name on any file system), 60 random bits.
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"
ID_LEN = 12


def valid_id(s):
    # An installation id as this firmware makes it, or a later one might:
    # 1 to 16 of [0-9a-z]. Anything else (a mid from outside) names no file.
    if not s or len(s) > 16:
        return False
    for c in s:
        if not ("0" <= c <= "9" or "a" <= c <= "z"):
            return False
    return True


def new_id(random_bytes):
    # random_bytes(n): the board's (hal.random_bytes), never a value handed in.
    n = int.from_bytes(random_bytes(8), "big")
    out = ""
    for _ in range(ID_LEN):
        out += _B32[n & 31]
        n >>= 5
    return out


def boot_identity(fdir, random_bytes):
    # (installation id, boot number) of this boot, both on flash before anything
    # uses them. The boot counter restarts at 1 when the flash is erased (a
    # reflash, a factory reset), so "<boot>.<seq>" alone would repeat message
    # ids the cloud has already seen; "<id>.<boot>.<seq>" cannot. A new id is
    # drawn whenever there is no counter to trust (a fresh file system, or a
    # counter that cannot be read), and when a counter has no id beside it
    # (flash written by firmware from before ids): that one keeps counting.
    counter = join(fdir, "boot")
    path = join(fdir, "install")
    try:
        n = int(read(counter))
    except (TypeError, ValueError):  # None: no counter
        n = None
    try:
        ident = (read(path) or b"").decode()
    except ValueError:  # not UTF-8
        ident = ""
    if n is None or not valid_id(ident):
        ident = new_id(random_bytes)
        # The id before the counter: a power cut between the two writes leaves
        # no counter, and the next boot draws again (this id was never used).
        write_atomic(path, ident.encode())
    n = (n or 0) + 1
    write_atomic(counter, str(n).encode())
    return ident, n


_MAX_RESETS = const(20)


def record_reset(fdir, boot, cause, wall):
    # The reset log (resets.json, the last 20 boots). The hardware tells
    # power-on, watchdog, brown-out...; only we know that the last run ended on
    # purpose, so the app leaves a marker before it does (app.watch.Watch.shutdown).
    # Here, not in main.py: main.py is a script compiled into the heap at boot.
    marker = join(fdir, "shutdown.json")
    clean = read_json(marker)
    entry = {"boot": boot, "cause": cause, "ts": wall, "clean": clean is not None}
    if clean is not None:
        entry["shutdown"] = clean.get("reason")
        os.remove(marker)
    path = join(fdir, "resets.json")
    log = read_json(path, [])
    log.append(entry)
    write_json(path, log[-_MAX_RESETS:])
    return entry
