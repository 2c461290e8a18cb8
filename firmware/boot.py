# Runs first on the board. Kept empty on purpose: whatever fails here happens
# before the USB REPL is reachable, so the boot sequence lives in main.py.
