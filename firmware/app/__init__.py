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


class Flag:
    # asyncio.Event's part the app uses (set, clear, is_set, wait; any number
    # of waiters), woken as Wake wakes its one: set() cancels the sleeping
    # waiters. asyncio.Event itself would load asyncio's event module, about
    # 1 KB of heap that stays (measured on the unix port).
    def __init__(self):
        self._set = False
        self._waiters = []  # the tasks asleep in wait()

    def is_set(self):
        return self._set

    def set(self):
        self._set = True
        waiters, self._waiters = self._waiters, []
        for t in waiters:
            t.cancel()

    def clear(self):
        self._set = False

    async def wait(self):
        import asyncio
        if self._set:
            return True
        t = asyncio.current_task()
        self._waiters.append(t)
        try:
            while True:
                await asyncio.sleep_ms(3600000)  # until set() cancels it: no timeout of its own
        except asyncio.CancelledError:
            if t in self._waiters:  # cancelled by someone else (a timeout), not woken
                self._waiters.remove(t)
                raise
        return True
