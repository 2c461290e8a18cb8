# The hardware abstraction: the only door from the app to the hardware.
# Every board offers the same small interface:
#   button(name) -> bool                held down now ("red" SOS, "black")
#   display(text), vibrate(ms)
#   clock: ticks_ms(), ticks_diff(a, b), ticks_add(t, ms), async sleep_ms(ms),
#          async wait_for_ms(awaitable, ms), wall() -> unix seconds or None
#   watchdog(timeout_ms) -> object with feed() and hold()
#   reset_cause() -> str, battery() -> {"pct", "mv"}, flash_dir
#   async start()                       background tasks the board needs
#   async modem_uart() -> (reader, writer)   the AT byte stream
#   link.open(host, port) -> (reader, writer)   the data path (PPP / hwsim)
import sys


def board():
    if sys.platform == "esp32":
        from hal.esp32 import Board
    else:
        from hal.sim import Board
    return Board()
