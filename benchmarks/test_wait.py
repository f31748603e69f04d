"""How soon ``wait()`` returns after the state it waits for is set, against wspbus's polling.

Each round a thread sets the state 5 ms after the wait began; the figure is the whole wait, so
the wake-up delay is what exceeds 5 ms. wspbus polls every ``interval`` (0.1 s by default).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

DELAY = 0.005


def buses() -> dict[str, Any]:
    from cherrypy.process import wspbus

    from fastbus import _core_py
    from fastbus._bus import bus_class_on

    found = {"fastbus-py": bus_class_on(_core_py.CoreBus), "wspbus": wspbus.Bus}
    try:
        from fastbus import _core_c
    except ImportError:
        pass
    else:
        found["fastbus-c"] = bus_class_on(_core_c.CoreBus)
    return found


@pytest.mark.parametrize("contender", ["fastbus-c", "fastbus-py", "wspbus"])
def test_wait_wakes(benchmark: Any, contender: str) -> None:
    classes = buses()
    if contender not in classes:
        pytest.skip(f"{contender}: the compiled core is not built")
    benchmark.group = "wait-wake"
    Bus = classes[contender]

    def one_wait() -> None:
        bus = Bus()
        setter = threading.Timer(DELAY, lambda: setattr(bus, "state", bus.states.STARTED))
        setter.start()
        bus.wait(bus.states.STARTED)
        setter.join()

    benchmark.pedantic(one_wait, rounds=20, iterations=1, warmup_rounds=1)
    benchmark.extra_info["delay_s"] = DELAY
