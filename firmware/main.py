# Boot sequence: safe mode first (no watchdog), then the watchdog, the reset
# cause, then the app.

# The unix port puts this file's directory on sys.path; the board runs from /.
import hal
from app import flash

WDT_MS = 30000


def main():
    board = hal.board()
    flash.makedirs(board.flash_dir)
    if board.button("black"):
        # Safe mode, checked before the watchdog starts (an ESP32's cannot be
        # stopped): nothing of the app runs, so a bad update cannot loop-crash,
        # and the USB REPL stays usable for as long as it takes (a copy with
        # mpremote: docs/flashing.md).
        board.display("Safe mode")
        print("safe mode: app and watchdog not started")
        return
    wdt = board.watchdog(WDT_MS)
    # Every message id is "<install>.<boot>.<seq>": the installation id is drawn
    # (board.random_bytes) on the first boot of a fresh flash file system, so
    # ids stay unique when an erase restarts the boot counter (app/flash.py).
    install, boot = flash.boot_identity(board.flash_dir, board.random_bytes)
    cause = board.reset_cause()
    entry = flash.record_reset(board.flash_dir, boot, cause, board.clock.wall())
    print("boot", boot, "install", install, "reset cause", cause, "after a clean shutdown" if entry["clean"] else "")
    import asyncio
    from app.watch import Watch
    asyncio.run(Watch(board, install, boot, wdt).run())


if __name__ == "__main__":
    main()
