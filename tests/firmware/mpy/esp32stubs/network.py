# hal/esp32.py imports network; nothing here uses it.
