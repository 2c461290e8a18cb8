# Long-press detection. A press counts once it has been held for hold_ms, so a
# knock against a door frame does not call the call centre.
POLL_MS = 20


async def watch_hold(board, name, hold_ms, on_hold):
    # hold_ms: a function, so a new config applies to the next press
    clock = board.clock
    down_since = None
    fired = False
    while True:
        if board.button(name):
            now = clock.ticks_ms()
            if down_since is None:
                down_since = now
                fired = False
            elif not fired and clock.ticks_diff(now, down_since) >= hold_ms():
                fired = True
                on_hold()
        else:
            down_since = None
        await clock.sleep_ms(POLL_MS)
