"""The background thread that drives tick(): it keeps ticking after a failing tick."""
import threading

from cloud.domain.ticker import BackgroundTicker


def test_background_ticker_survives_a_failing_tick():
    calls, done = [], threading.Event()

    class Flaky:
        def tick(self):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("one bad row")
            done.set()

    bt = BackgroundTicker(Flaky(), period_s=0.01)
    bt.start()
    assert done.wait(5)
    bt.stop()
    assert len(calls) >= 2
