# cython: language_level=3
"""The compiled core: the subscriber registry and the dispatch loop in C.

The twin of :mod:`fastbus._core_py`, whose docstrings are the contract: same names,
signatures and behaviour. What differs is how:

* ``publish`` is a METH_FASTCALL method: it receives its arguments as the caller's C array
  and hands that same array to each listener with vectorcall, so a publish allocates nothing
  but its result list (and, when a listener fails, the error aggregate);
* each channel keeps its callbacks in a list sorted by ``(priority, subscription number)``;
  (un)subscribing edits it in place (a memmove) unless a publish is running on it, in which
  case the edit goes to a copy, so a running publish never sees the change.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject, PyCallable_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.ref cimport Py_INCREF
from libc.string cimport memmove

from fastbus._capi cimport (
    METH_FASTCALL, METH_KEYWORDS, PyMethodDef, PyObject_Vectorcall, PyDict_GetItemWithError,
    PyErr_Occurred, PyErr_Clear, PyObject_Hash_unchecked, PyObject_GC_Track, PyObject_GC_UnTrack,
    PyList_SET_ITEM_STEAL, PyList_GET_ITEM_BORROWED, PyList_GET_SIZE, PyList_New,
    add_method, pending_error,
)

import threading

from fastbus._arguments import check_callback, check_channel, resolve_priority, subscriber
from fastbus._errors import ChannelFailures

__all__ = ("CoreBus",)

cdef object DEFAULT_PRIORITY = 50

# The registry edits, as queued by CoreBus._edit.
cdef enum Edit:
    SUBSCRIBE, UNSUBSCRIBE, CLEAR, REMOVE
cdef long long EXACT_LIMIT = 1LL << 53  # every int up to this is exact as a double
cdef object NO_CHANNEL = object()  # what the last-published cache holds when empty


cdef inline bint _exact_double(object priority, double *value) except -1:
    # Whether a C double holds *priority* exactly, so that ordering can compare doubles;
    # everything else (big ints, Fractions, subclasses) is compared as Python objects.
    cdef int overflow = 0
    cdef long long whole
    if type(priority) is float:
        value[0] = priority
        return True
    if type(priority) is int:
        whole = PyLong_AsLongLongAndOverflow(priority, &overflow)
        if overflow == 0 and -EXACT_LIMIT <= whole <= EXACT_LIMIT:
            value[0] = <double>whole
            return True
    return False


@cython.final
cdef class _Channel:
    """The subscribers of one channel, sorted by (priority, subscription number).

    ``callbacks`` is what publish reads; the rest is only touched under the bus's lock.
    Priorities live twice: as the objects given (for ``_entries`` and for comparing exotic
    numbers) and, while every one of them fits a double exactly, as doubles, so that finding
    a position is a binary search in C.
    """

    cdef list callbacks       # the listeners in call order
    cdef list priorities      # their priorities, as given
    cdef double *order        # the priorities as doubles (meaningful while inexact == 0)
    cdef unsigned long long *numbers  # subscription numbers: ties run in this order
    cdef Py_ssize_t capacity
    cdef Py_ssize_t inexact   # how many priorities a double cannot hold exactly
    cdef dict index           # callback -> (priority, number)
    cdef Py_ssize_t readers   # publishes running on ``callbacks`` right now

    def __cinit__(self):
        self.callbacks = []
        self.priorities = []
        self.index = {}

    def __dealloc__(self):
        PyMem_Free(self.order)
        PyMem_Free(self.numbers)

    cdef int _reserve(self, Py_ssize_t size) except -1:
        cdef Py_ssize_t capacity
        cdef void *grown
        if size <= self.capacity:
            return 0
        capacity = max(size, 2 * self.capacity, 8)
        grown = PyMem_Realloc(self.order, capacity * sizeof(double))
        if grown is NULL:
            raise MemoryError()
        self.order = <double *>grown
        grown = PyMem_Realloc(self.numbers, capacity * sizeof(unsigned long long))
        if grown is NULL:
            raise MemoryError()
        self.numbers = <unsigned long long *>grown
        self.capacity = capacity
        return 0

    cdef Py_ssize_t _position(self, object priority, unsigned long long number) except -1:
        """How many entries sort before ``(priority, number)``."""
        cdef Py_ssize_t lo = 0, hi = len(self.callbacks), mid
        cdef double value
        cdef object other
        if self.inexact == 0 and _exact_double(priority, &value):
            while lo < hi:
                mid = (lo + hi) >> 1
                if self.order[mid] < value or (self.order[mid] == value and self.numbers[mid] < number):
                    lo = mid + 1
                else:
                    hi = mid
            return lo
        while lo < hi:
            mid = (lo + hi) >> 1
            other = self.priorities[mid]
            if other < priority or (not priority < other and self.numbers[mid] < number):
                lo = mid + 1
            else:
                hi = mid
        return lo

    cdef inline void _own_callbacks(self):
        # Copy-on-write: a running publish keeps the list it started with.
        if self.readers:
            self.callbacks = list(self.callbacks)

    cdef int insert(self, object callback, object priority, unsigned long long number) except -1:
        cdef Py_ssize_t size = len(self.callbacks)
        cdef Py_ssize_t at = self._position(priority, number)
        cdef double value = 0
        cdef bint exact = _exact_double(priority, &value)
        key = (priority, number)
        self._reserve(size + 1)
        self.index[callback] = key
        # Nothing below can fail or run Python code: the arrays stay in step.
        self._own_callbacks()
        self.callbacks.insert(at, callback)
        self.priorities.insert(at, priority)
        memmove(&self.order[at + 1], &self.order[at], (size - at) * sizeof(double))
        memmove(&self.numbers[at + 1], &self.numbers[at], (size - at) * sizeof(unsigned long long))
        self.order[at] = value
        self.numbers[at] = number
        if not exact:
            self.inexact += 1
        return 0

    cdef int remove(self, object callback, tuple key) except -1:
        cdef object priority = key[0]
        cdef unsigned long long number = key[1]
        cdef Py_ssize_t size = len(self.callbacks)
        cdef Py_ssize_t at = self._position(priority, number)
        cdef double value
        del self.index[callback]
        self._own_callbacks()
        del self.callbacks[at]
        del self.priorities[at]
        memmove(&self.order[at], &self.order[at + 1], (size - at - 1) * sizeof(double))
        memmove(&self.numbers[at], &self.numbers[at + 1], (size - at - 1) * sizeof(unsigned long long))
        if not _exact_double(priority, &value):
            self.inexact -= 1
        return 0


cdef inline bint _plain_number(object priority):
    # ints and non-NaN floats need no further check; anything else goes to resolve_priority.
    cdef double value
    if type(priority) is int:
        return True
    if type(priority) is float:
        value = priority
        return value == value
    return False


cdef inline object _checked_priority(object callback, object priority):
    if priority is None:
        given = getattr(callback, "priority", DEFAULT_PRIORITY)
        if _plain_number(given):
            return given
    elif _plain_number(priority):
        return priority
    return resolve_priority(callback, priority)


cdef class CoreBus:
    """Topic publish/subscribe: the registry and dispatch that :class:`fastbus.Bus` builds on.

    Listeners of a channel run in priority order (lower first); equal priorities run in the
    order they were first subscribed.
    """

    cdef dict _channels
    # The channel published last and its entry: publishing the same channel again (the common
    # case in a loop) then costs an identity test instead of a dict lookup. Reset whenever an
    # entry of _channels is replaced or removed.
    cdef object _last_name
    cdef _Channel _last_channel
    cdef object _lock
    cdef unsigned long long _next_number
    cdef bint _editing
    cdef list _pending        # nested edits, applied after the current one (see _edit)
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._channels = {}
        self._last_name = NO_CHANNEL
        self._last_channel = None
        self._lock = threading.RLock()
        self._next_number = 0
        self._pending = []

    cdef int _edit(self, Edit edit, object channel, object callback, object priority) except -1:
        """Apply a registry edit under the lock, one edit at a time.

        See :meth:`fastbus._core_py.CoreBus._edit`: an edit nested in another (through a
        callback's ``__hash__``, a priority's comparison or a garbage-collector finalizer) is
        queued and applied after it, so the C arrays never see two edits interleaved.
        """
        self._lock.acquire()
        try:
            if self._editing or self._pending:
                self._pending.append((edit, channel, callback, priority))
                if self._editing:
                    return 0
            self._editing = True
            try:
                if self._pending:
                    while self._pending:
                        item = self._pending.pop(0)
                        self._apply(item[0], item[1], item[2], item[3])
                else:
                    self._apply(edit, channel, callback, priority)
                    while self._pending:
                        item = self._pending.pop(0)
                        self._apply(item[0], item[1], item[2], item[3])
            finally:
                self._editing = False
        finally:
            self._lock.release()
        return 0

    cdef int _apply(self, Edit edit, object channel, object callback, object priority) except -1:
        cdef _Channel chan
        cdef tuple old
        if edit == CLEAR:
            self._channels[channel] = _Channel()
            self._forget_last()
            return 0
        if edit == REMOVE:
            del self._channels[channel]
            self._forget_last()
            return 0
        chan = self._channels.get(channel)
        if edit == UNSUBSCRIBE:
            if chan is not None:
                old = chan.index.get(callback)
                if old is not None:
                    chan.remove(callback, old)
            return 0
        if chan is None:
            chan = _Channel()
            self._channels[channel] = chan
        old = chan.index.get(callback)
        if old is None:
            chan.insert(callback, priority, self._next_number)
            self._next_number += 1
        else:
            chan.remove(callback, old)
            chan.insert(callback, priority, old[1])
        return 0

    def subscribe(self, channel, callback=None, priority=None):
        """Call *callback* on each publish to *channel*, at *priority* (lower runs first).

        See :meth:`fastbus._core_py.CoreBus.subscribe`, the contract.
        """
        if callback is None:
            return subscriber(self.subscribe, channel, priority)
        if hash_failed(channel):
            check_channel(channel)
        if not PyCallable_Check(callback) or hash_failed(callback):
            check_callback(callback)
        priority = _checked_priority(callback, priority)
        self._edit(SUBSCRIBE, channel, callback, priority)
        return None

    def unsubscribe(self, channel, callback):
        """Stop calling *callback* on *channel*; a no-op if it is not subscribed there."""
        if hash_failed(channel):
            check_channel(channel)
        if hash_failed(callback):
            check_callback(callback)
        self._edit(UNSUBSCRIBE, channel, callback, None)

    # ``publish`` is added below as a METH_FASTCALL method.

    cdef inline void _forget_last(self):
        self._last_name = NO_CHANNEL
        self._last_channel = None

    def _channel_names(self):
        """Return the channels, in the order they were created."""
        self._lock.acquire()
        try:
            return list(self._channels)
        finally:
            self._lock.release()

    def _has_channel(self, channel):
        return channel in self._channels

    def _declare(self, channel):
        """Create *channel* with no listeners unless it exists; return whether it was created."""
        check_channel(channel)
        self._lock.acquire()
        try:
            if channel in self._channels:
                return False
            self._channels[channel] = _Channel()
            return True
        finally:
            self._lock.release()

    def _listeners_of(self, channel):
        """Return the listeners of *channel* in call order; KeyError if there is no such."""
        cdef _Channel chan = self._channels[channel]
        return tuple(chan.callbacks)

    def _entries(self, channel):
        """Return ``(priority, callback)`` for each listener of *channel*, in call order."""
        cdef _Channel chan
        self._lock.acquire()
        try:
            chan = self._channels[channel]
            return list(zip(chan.priorities, chan.callbacks))
        finally:
            self._lock.release()

    def _clear(self, channel):
        """Remove every listener of *channel*, creating it if needed."""
        check_channel(channel)
        self._edit(CLEAR, channel, None, None)

    def _remove_channel(self, channel):
        """Forget *channel* and its listeners; KeyError if there is no such."""
        self._edit(REMOVE, channel, None, None)


cdef inline bint hash_failed(object value):
    # The caller then reruns the check in Python, which raises the right error.
    if PyObject_Hash_unchecked(value) == -1 and PyErr_Occurred() is not NULL:
        PyErr_Clear()
        return True
    return False


cdef object _failed(object bus, object channel, object listener, object failures):
    """Handle the failure of *listener*, which is the pending exception.

    Returns the failures so far (created on the first); raises what must stop the publish.
    """
    try:
        pending_error()
    except KeyboardInterrupt:
        raise
    except SystemExit as exit_:
        if failures is not None and exit_.code == 0:
            exit_.code = 1
        raise
    except Exception:
        if failures is None:
            failures = ChannelFailures()
        failures.handle_exception()
        if channel != "log":
            try:
                bus.log("Error in %r listener %r" % (channel, listener), level=40, traceback=True)
            except Exception:
                failures.handle_exception()
    return failures


cdef object _publish(object self, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    cdef PyObject *found
    cdef CoreBus bus
    cdef _Channel chan
    cdef list callbacks, output
    cdef PyObject *result
    cdef PyObject *listener
    cdef Py_ssize_t i, n
    cdef object failures = None
    if nargs < 1:
        raise TypeError("publish() missing 1 required positional argument: 'channel'")
    channel = <object>args[0]
    bus = <CoreBus>self
    if channel is bus._last_name and bus._last_channel is not None:
        chan = bus._last_channel
    else:
        found = PyDict_GetItemWithError(bus._channels, channel)
        if found is NULL:
            if PyErr_Occurred() is not NULL:
                try:
                    pending_error()
                except TypeError:
                    check_channel(channel)
                    raise
            return []
        chan = <_Channel>found
        bus._last_name = channel
        bus._last_channel = chan
    callbacks = chan.callbacks
    n = PyList_GET_SIZE(callbacks)
    output = PyList_New(n)
    if n == 0:
        return output
    # Until every slot is filled the list must stay out of the garbage collector's sight
    # (gc.get_referrers() could hand it to a listener, NULL slots and all).
    PyObject_GC_UnTrack(output)
    chan.readers += 1
    try:
        for i in range(n):
            listener = PyList_GET_ITEM_BORROWED(callbacks, i)
            result = PyObject_Vectorcall(listener, args + 1, <size_t>(nargs - 1), kwnames)
            if result is NULL:
                failures = _failed(self, channel, <object>listener, failures)
                result = <PyObject *>None
                Py_INCREF(None)
            PyList_SET_ITEM_STEAL(output, i, result)
    finally:
        chan.readers -= 1
    PyObject_GC_Track(output)
    if failures is not None:
        raise failures
    return output


cdef PyMethodDef _publish_def
_publish_def.ml_name = "publish"
_publish_def.ml_meth = <void *>_publish
_publish_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
_publish_def.ml_doc = (
    "publish($self, channel, /, *args, **kwargs)\n--\n\n"
    "Call every listener of *channel* with the given arguments; return their results.\n\n"
    "See :meth:`fastbus._core_py.CoreBus.publish`, the contract."
)
add_method(<PyTypeObject *>CoreBus, &_publish_def)
