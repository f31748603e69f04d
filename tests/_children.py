"""What the plugin tests share: polling with a deadline, and child processes that never outlive
their test.

A plain module, not a fixture: pytest puts ``tests/`` on ``sys.path`` (it has no
``__init__.py``), so the test modules import it as ``from _children import ...``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Callable

import pytest

DEADLINE = 15.0
"""Seconds a test waits for anything (a condition, a thread, a child) before it fails."""

POLL = 0.01
"""Seconds between two looks at a condition: short next to any deadline, long enough not to spin."""


def wait_until(condition: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll *condition* until it returns something true, and return that.

    At the deadline the test fails, naming *what* it waited for; the condition may also
    fail the test itself (a child that ended early, say) rather than return.
    """
    end = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"{what} not met within {timeout} s")
        time.sleep(POLL)


def spawn(
    command: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    stdout: int | IO[Any] = subprocess.PIPE,
    stderr: int | IO[Any] = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start a child in *cwd* with *env*; its stdin is /dev/null, so it can never wait on us."""
    return subprocess.Popen(list(command), env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr)


def reap(proc: subprocess.Popen[bytes], timeout: float = DEADLINE) -> None:
    """Kill *proc* if it still runs, then wait for it (reading any pipes, so it cannot block)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=timeout)
