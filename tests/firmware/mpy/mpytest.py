# A tiny test runner for MicroPython scripts: runs every test_* function of the
# caller's globals, prints PASS/FAIL lines, exits 1 if anything failed.
import sys


def run(namespace):
    failed = 0
    names = sorted(n for n in namespace if n.startswith("test_"))
    for name in names:
        try:
            namespace[name]()
            print("PASS", name)
        except Exception as e:
            failed += 1
            print("FAIL", name)
            sys.print_exception(e)
    print("%d passed, %d failed" % (len(names) - failed, failed))
    sys.exit(1 if failed else 0)


def eq(a, b):
    if a != b:
        raise AssertionError("%r != %r" % (a, b))


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc:
        return
    raise AssertionError("%s not raised" % exc.__name__)


def tmpdir(name):
    import os
    base = os.getenv("TMPDIR") or "/tmp"
    path = base + "/" + name
    try:
        os.mkdir(path)
    except OSError:
        pass
    return path
