"""Sampling a proxy's resident memory (VmRSS) while a transfer runs."""
import threading
import time


class RssSampler(threading.Thread):
    """Samples proxy.rss_kib() every `interval` s until stop() (at most `limit` s in any case).

        sampler = RssSampler(proxy); sampler.start()
        try: ...transfer...
        finally: sampler.stop()
        growth = sampler.peak - baseline
    """

    def __init__(self, proxy, interval=0.05, limit=120):
        super().__init__(daemon=True)
        self.proxy = proxy
        self.interval = interval
        self.limit = limit
        self.samples = []
        self._stop_event = threading.Event()

    def run(self):
        deadline = time.monotonic() + self.limit  # bounded even if stop() is never called
        while not self._stop_event.is_set() and time.monotonic() < deadline:
            try:
                self.samples.append(self.proxy.rss_kib())
            except (FileNotFoundError, ProcessLookupError):
                return
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(timeout=5)

    @property
    def peak(self):
        assert self.samples, "no RSS samples taken"
        return max(self.samples)
