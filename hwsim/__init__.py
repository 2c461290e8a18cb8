"""hwsim: the watch's simulated world (buttons, display, AT modem, GNSS, radio network).

It runs the real firmware under the MicroPython unix port and meets it only on
simulated wires (loopback TCP), never by importing firmware code.
"""
