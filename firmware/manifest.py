# Freezes the app into the board's firmware image (bytecode in flash, not in the
# heap): `pers flash image` builds MicroPython's ESP32 port with
# FROZEN_MANIFEST=<this file> (docs/flashing.md). main.py and boot.py stay on the
# filesystem so `pers flash` can update them.
# FROZEN_MANIFEST replaces the board's own manifest: the port's frozen modules
# (_boot.py, which mounts the filesystem; asyncio; ...) come from it first.
include("$(PORT_DIR)/boards/manifest.py")
package("app", base_path=".")
# hal/sim.py is the simulator's board: never on a watch.
package("hal", files=("__init__.py", "esp32.py", "max30102.py"), base_path=".")
