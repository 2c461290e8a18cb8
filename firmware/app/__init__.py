# The watch application. Hardware-agnostic: it reaches the board only through `hal`.


class Wake:
    # What one task waits for, with a timeout: the radio's next poll, the
    # outbox pump's next look, an AT command's answer, an MQTT ack. set() cuts
    # the sleep short by cancelling the sleeping task awake; an asyncio.Event
    # under wait_for_ms would hold a timer task and its frames in the heap for
    # every wait. A set() with nobody waiting is kept for the next wait, as an
    # Event's is, until clear(). One waiter at a time.
    def __init__(self, clock):
        self.clock = clock
        self.pending = False
        self._task = None  # the task asleep in wait_ms

    def set(self):
        t = self._task
        if t is None:
            self.pending = True
        else:
            self._task = None
            t.cancel()

    def clear(self):
        self.pending = False

    async def wait_ms(self, ms):
        # True when set (or set before), False when ms passed first.
        import asyncio  # here: the package itself stays importable without it
        if self.pending:
            self.pending = False
            return True
        self._task = asyncio.current_task()
        try:
            await self.clock.sleep_ms(ms)
        except asyncio.CancelledError:
            if self._task is not None:
                raise  # cancelled by someone else, not woken
            return True
        finally:
            self._task = None
        return False
