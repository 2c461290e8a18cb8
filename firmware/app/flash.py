# Small helpers for files on flash. Every write is atomic (tmp file, then
# rename): a power cut leaves the old content or the new, never half of one.
import json
import os


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


def bump_counter(path):
    # Boot counter: read, increment, store before anything uses it.
    try:
        n = int(read(path, b"0"))
    except ValueError:
        n = 0
    n += 1
    write_atomic(path, str(n).encode())
    return n
