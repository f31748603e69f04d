"""Run by .ci/gate-sanitizers under its harness, one test at a time (see canary.c)."""

import sys

import sanitizer_canary


def test_in_bounds():
    assert sanitizer_canary.read_byte(7) == 7
    assert sanitizer_canary.add_one(41) == 42


def test_heap_read_past_the_end():
    sanitizer_canary.read_byte(8)


def test_read_of_a_freed_list():
    sanitizer_canary.read_freed_list()


def test_signed_overflow():
    sanitizer_canary.add_one(2**31 - 1)


def test_in_a_child_process():
    import subprocess

    # A bad read for AddressSanitizer, then an overflow for UndefinedBehaviorSanitizer.
    code = "import sanitizer_canary as c; c.read_byte(8); c.add_one(2**31 - 1)"
    # The child's status is ignored: only the sanitizer's report can fail this test.
    subprocess.run([sys.executable, "-c", code], check=False)
