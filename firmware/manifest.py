# Freezes the app into the board's firmware image (bytecode in flash, not in the
# heap): build MicroPython for ESP32 with FROZEN_MANIFEST=<this file>. main.py and
# boot.py stay on the filesystem so `pers flash` can update them.
package("app", base_path=".")
package("hal", base_path=".")
