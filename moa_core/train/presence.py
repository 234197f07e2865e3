"""Which browsers have a page of the lab open, and since when the others have not.

A browser is known by the identity its pages send (a cookie); it may have several tabs.
Streamlit tells each page's session end, not the browser's, so this counts open pages per
browser and notes when the last one closed: a reload closes one and opens another within a
second, which never makes the browser "gone".
"""

from __future__ import annotations

import threading
from collections import Counter


class BrowserPresence:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self._left: dict[str, float] = {}  # browser -> when its last page closed

    def connect(self, browser: str) -> None:
        with self._lock:
            self._open[browser] += 1
            self._left.pop(browser, None)

    def disconnect(self, browser: str, now: float) -> None:
        with self._lock:
            self._open[browser] -= 1
            if self._open[browser] <= 0:
                del self._open[browser]
                self._left[browser] = now

    def connected(self) -> set[str]:
        with self._lock:
            return set(self._open)

    def known(self, browser: str) -> bool:
        """Whether `browser` has a page open or closed its last one lately (not forgotten)."""
        with self._lock:
            return browser in self._open or browser in self._left

    def gone(self, now: float, ttl: float) -> set[str]:
        """Browsers with no page open for longer than `ttl` seconds."""
        with self._lock:
            return {browser for browser, left in self._left.items() if now - left > ttl}

    def forget(self, browser: str) -> None:
        """Nothing of `browser` is left to end: stop tracking it."""
        with self._lock:
            if browser not in self._open:
                self._left.pop(browser, None)
