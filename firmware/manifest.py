# Freezes the app into the board's firmware image (bytecode in flash, not in the
# heap): `pers flash image` builds MicroPython's ESP32 port with
# FROZEN_MANIFEST=<this file> (docs/flashing.md). main.py and boot.py stay on the
# filesystem so `pers flash` can update them.
# FROZEN_MANIFEST replaces the board's own manifest: the port's frozen modules
# (_boot.py, which mounts the filesystem; asyncio; ...) come from it first.
include("$(PORT_DIR)/boards/manifest.py")
package("app", base_path=".")
# Every board module but hal/sim.py (the simulator's board: never on a watch). An
# image flashed without one that hal/esp32.py imports would not boot:
# tests/firmware/test_flash.py checks this list against the imports.
package("hal", files=("__init__.py", "battery.py", "bmp390.py", "esp32.py", "haptics.py", "lis3dh.py",
                      "max30102.py", "screen.py", "st7789.py"), base_path=".")
