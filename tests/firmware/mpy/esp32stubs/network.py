# A stand-in for MicroPython's network module: it records anything that would
# take the modem's UART over (network.PPP on the same UART as the AT commands).
# Nothing may: the data goes through the modem's own TCP stack (app/netsock.py).
TAKEN = []


class PPP:
    def __init__(self, stream):
        TAKEN.append(stream)
