# Boot sequence: watchdog first, then safe mode, reset cause, then the app.

# The unix port puts this file's directory on sys.path; the board runs from /.
import hal
from app import flash

WDT_MS = 30000
MAX_RESETS = 20


def record_reset(fdir, boot, cause, wall):
    path = flash.join(fdir, "resets.json")
    log = flash.read_json(path, [])
    log.append({"boot": boot, "cause": cause, "ts": wall})
    flash.write_json(path, log[-MAX_RESETS:])


def main():
    board = hal.board()
    wdt = board.watchdog(WDT_MS)
    flash.makedirs(board.flash_dir)
    if board.button("black"):
        # Safe mode: nothing of the app runs, so a bad update cannot loop-crash.
        board.display("Safe mode")
        wdt.hold()
        print("safe mode: app skipped")
        return
    boot = flash.bump_counter(flash.join(board.flash_dir, "boot"))
    cause = board.reset_cause()
    record_reset(board.flash_dir, boot, cause, board.clock.wall())
    print("boot", boot, "reset cause", cause)
    import asyncio
    from app.watch import Watch
    asyncio.run(Watch(board, boot, wdt).run())


if __name__ == "__main__":
    main()
