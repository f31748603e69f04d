# cython: language_level=3
"""The compiled core: the subscriber registry and the dispatch loop in C.

The twin of :mod:`fastbus._core_py`, whose docstrings are the contract: same names,
signatures and behaviour. What differs is how:

* ``publish`` is a METH_FASTCALL method: it receives its arguments as the caller's C array
  and hands that same array to each listener with vectorcall, so a publish allocates nothing
  but its result list (and, when a listener fails, the error aggregate);
* each channel keeps its callbacks in a list sorted by ``(priority, subscription number)``;
  (un)subscribing edits it in place (a memmove) unless someone holds it (a publish running
  on it), in which case the edit goes to a copy, so a running publish never sees the change;
* edits take a re-entrant lock written in C rather than a ``threading.RLock``;
* a weak, one-shot or ``async def`` listener is stored as an ``_Entry`` and counted per
  channel: publish tests one counter and takes the bare loop when it is zero, so the new
  kinds of listener cost a channel without them one C comparison.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject, PyCallable_Check
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.pythread cimport (
    NOWAIT_LOCK, WAIT_LOCK, PyThread_acquire_lock, PyThread_allocate_lock, PyThread_free_lock,
    PyThread_get_thread_ident, PyThread_release_lock, PyThread_type_lock,
)
from cpython.ref cimport Py_DECREF, Py_INCREF, _Py_REFCNT
from libc.string cimport memmove
from types import MethodType
import weakref

from fastbus._capi cimport (
    METH_FASTCALL, METH_KEYWORDS, PyMethodDef, PyObject_Vectorcall, PyDict_GetItemWithError,
    PyErr_Occurred, PyErr_Clear, PyObject_Hash_unchecked, PyObject_GC_Track, PyObject_GC_UnTrack,
    PyList_SET_ITEM_STEAL, PyList_GET_ITEM_BORROWED, PyList_GET_SIZE, PyList_New, PyList_Insert,
    add_method, async_function, call_tuple_ptr, call_with, decref_ptr, gen_check_exact_ptr,
    has_await_ptr, list_append_ptr, list_delete, pending_error, type_of,
)

from fastbus._arguments import (
    awaitable, check_callback, check_channel, check_flag, check_weak, is_async, resolve_priority, subscriber,
)
from fastbus._errors import listener_failed
from fastbus._subscriptions import Subscription, needs_apublish

__all__ = ("CoreBus",)

cdef object DEFAULT_PRIORITY = 50

# The registry edits, as queued by CoreBus._edit.
cdef enum Edit:
    SUBSCRIBE, UNSUBSCRIBE, SET, SET_IF_NEW, REMOVE, DROP
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


cdef inline bint _shared(PyObject *items) noexcept:
    # Whether anyone but the channel holds *items*. Passed as a pointer, so that no temporary
    # reference is taken to pass it.
    return _Py_REFCNT(items) > 1


@cython.final
cdef class _Entry:
    """A listener that publish cannot simply call: held weakly, one-shot, or ``async def``.

    A weak entry holds its function (or, for a bound method, the object and the function)
    by weak reference, and is itself the registry's key for it: it hashes like the callback
    and equals it while the referents live, so ``unsubscribe`` finds it by the callable. When
    a referent dies, a :class:`_Reaper` removes it; until then it is skipped. A one-shot
    entry is claimed by exactly one publish (a flag tested and set with no Python code
    between, under the GIL), which removes it before calling it.
    """

    cdef object callback      # the callable, unless weak
    cdef object ref           # weak: a weak reference to the function, or to a method's object
    cdef object func_ref      # weak method: a weak reference to its function
    cdef Py_hash_t hash
    cdef bint weak, once, coroutine, claimed
    cdef object __weakref__

    cdef object resolve(self):
        """The callable, or None if a weak referent died."""
        cdef object referent, function
        if self.ref is None:
            return self.callback
        referent = self.ref()
        if self.func_ref is None or referent is None:
            return referent
        function = self.func_ref()
        return None if function is None else MethodType(function, referent)

    cdef object target(self):
        """The callable to call, or None if it died (weak) or already ran (once)."""
        if self.claimed:
            return None
        return self.resolve()

    cdef object claim(self):
        """The callable, for a publish about to call it; None if it must be skipped."""
        cdef object callback = self.resolve()
        if callback is None or self.claimed:
            return None
        if self.once:
            self.claimed = True
        return callback

    def __hash__(self):
        return self.hash

    def __eq__(self, other):
        if other is self:
            return True
        mine = self.resolve()
        if mine is None:
            return False  # a dead entry equals nothing but itself
        if type(other) is _Entry:
            other = (<_Entry>other).resolve()
            if other is None:
                return False
        return bool(mine == other)

    def __repr__(self):
        kinds = [kind for kind, on in (("weak", self.weak), ("once", self.once), ("async", self.coroutine)) if on]
        return f"<listener {self.resolve()!r} ({', '.join(kinds)})>"


@cython.final
cdef class _Reaper:
    """The weak-reference callback of a weak entry: removes the entry from the bus's channel.

    It holds the bus and the entry weakly, so a dead entry's references keep nothing alive.
    """

    cdef object bus, channel, entry

    def __call__(self, _):
        bus = self.bus()
        entry = self.entry()
        if bus is not None and entry is not None:
            (<CoreBus>bus)._drop(self.channel, <_Entry>entry)


cdef _Entry _new_entry(CoreBus bus, object channel, object callback, bint weak, bint once, bint coroutine):
    cdef _Entry entry = _Entry.__new__(_Entry)
    cdef _Reaper reaper
    entry.weak = weak
    entry.once = once
    entry.coroutine = coroutine
    entry.hash = hash(callback)
    if not weak:
        entry.callback = callback
        return entry
    check_weak(callback)
    reaper = _Reaper.__new__(_Reaper)
    reaper.bus = weakref.ref(bus)
    reaper.channel = channel
    reaper.entry = weakref.ref(entry)
    try:
        if type(callback) is MethodType:
            entry.ref = weakref.ref(callback.__self__, reaper)
            entry.func_ref = weakref.ref(callback.__func__, reaper)
        else:
            entry.ref = weakref.ref(callback, reaper)
    except TypeError:
        raise TypeError(
            f"callback {callback!r} cannot be held weakly (its type does not support weak "
            "references): subscribe it with weak=False"
        ) from None
    return entry


cdef inline object _key_of(object item):
    # What the registry's index holds *item* under: a weak entry is its own key.
    if type(item) is _Entry:
        return item if (<_Entry>item).weak else (<_Entry>item).callback
    return item


cdef inline bint _is_async(object callback) except -1:
    cdef int known = async_function(callback)
    if known >= 0:
        return known
    return is_async(callback)


@cython.final
cdef class _Channel:
    """The subscribers of one channel, sorted by (priority, subscription number).

    ``callbacks`` is what publish reads; ``priorities`` holds the priorities as given (for
    ``_entries`` and for comparing exotic numbers) and, while every one of them fits a double
    exactly, ``order`` holds them as doubles, so that finding a position is a binary search in
    C. Only edits (under the bus's lock) change any of it.

    An edit does everything that can fail or run Python code (hashing, comparing priorities,
    allocating, which can run the garbage collector and so any finalizer) first, and then
    changes the lists and arrays in a step that runs no Python code: whoever looks at the
    channel from Python (a listener, a finalizer, another thread) sees it before or after an
    edit, never halfway. A list that anyone else holds a reference to (a publish or a snapshot
    in progress) is copied before it is changed, so its holder keeps it as it was.
    """

    cdef list callbacks       # the listeners in call order: callables and _Entry objects
    cdef list priorities      # their priorities, as given
    cdef double *order        # the priorities as doubles (meaningful while inexact == 0)
    cdef unsigned long long *numbers  # subscription numbers: ties run in this order
    cdef Py_ssize_t capacity
    cdef Py_ssize_t inexact   # how many priorities a double cannot hold exactly
    cdef Py_ssize_t entries   # how many listeners are _Entry objects (publish's one test)
    cdef Py_ssize_t coroutines  # how many of those are async def listeners
    cdef dict index           # key (see _key_of) -> (priority, number, item)

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
        cdef Py_ssize_t lo = 0, hi = PyList_GET_SIZE(self.callbacks), mid
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

    cdef int _own(self) except -1:
        # Copy-on-write: a list someone else holds (refcount above ours) is copied. Copying
        # allocates and so may run Python code, which may take a new reference: check again
        # until neither list is shared, after which nothing runs Python code until the change
        # is done.
        while _shared(<PyObject *>self.callbacks) or _shared(<PyObject *>self.priorities):
            if _shared(<PyObject *>self.priorities):
                self.priorities = list(self.priorities)
            if _shared(<PyObject *>self.callbacks):
                self.callbacks = list(self.callbacks)
        return 0

    cdef int _put(self, Py_ssize_t at, object item, object priority, double value,
                  unsigned long long number, bint exact) except -1:
        # Room was reserved and the lists are owned: nothing here runs Python code (only a
        # list that cannot grow could fail).
        cdef Py_ssize_t size = PyList_GET_SIZE(self.callbacks)
        PyList_Insert(self.callbacks, at, item)
        if type(item) is _Entry:
            self.entries += 1
            self.coroutines += (<_Entry>item).coroutine
        PyList_Insert(self.priorities, at, priority)
        memmove(&self.order[at + 1], &self.order[at], (size - at) * sizeof(double))
        memmove(&self.numbers[at + 1], &self.numbers[at], (size - at) * sizeof(unsigned long long))
        self.order[at] = value
        self.numbers[at] = number
        if not exact:
            self.inexact += 1
        return 0

    cdef void _take(self, Py_ssize_t at, bint exact):
        # The caller holds references to the entry's callback and priority, so deleting them
        # from the lists frees nothing (and runs no finalizer) here.
        cdef Py_ssize_t size = PyList_GET_SIZE(self.callbacks)
        cdef PyObject *item = PyList_GET_ITEM_BORROWED(self.callbacks, at)
        if type(<object>item) is _Entry:
            self.entries -= 1
            self.coroutines -= (<_Entry><object>item).coroutine
        list_delete(self.callbacks, at)
        list_delete(self.priorities, at)
        memmove(&self.order[at], &self.order[at + 1], (size - at - 1) * sizeof(double))
        memmove(&self.numbers[at], &self.numbers[at + 1], (size - at - 1) * sizeof(unsigned long long))
        if not exact:
            self.inexact -= 1

    cdef bint subscribe(self, object item, object priority, unsigned long long number, bint keep) except -1:
        """Add *item*, or make it the one already here at *priority* (unless *keep*).

        A bare callable already here as a bare callable stays the object first subscribed,
        as in a set; any other change of kind replaces the item. Returns whether *number* was
        used (for a new entry).
        """
        cdef object key = _key_of(item)
        cdef tuple old = self.index.get(key)
        cdef Py_ssize_t at, was
        cdef double value = 0, old_value = 0
        cdef bint exact, old_exact
        cdef object stored, old_priority
        if old is None:
            at = self._position(priority, number)
            exact = _exact_double(priority, &value)
            self._reserve(PyList_GET_SIZE(self.callbacks) + 1)
            self.index[key] = (priority, number, item)
            try:
                self._own()
            except BaseException:
                del self.index[key]
                raise
            self._put(at, item, priority, value, number, exact)
            return True
        if keep:
            return False
        number = old[1]
        was = self._position(old[0], number)
        at = self._position(priority, number)  # counting the old entry, if it sorts before
        if at > was:
            at -= 1
        stored = self.callbacks[was]
        old_priority = self.priorities[was]
        old_exact = _exact_double(old_priority, &old_value)
        exact = _exact_double(priority, &value)
        if type(stored) is not _Entry and type(item) is not _Entry:
            item = stored  # the first object subscribed stays, as in a set
            self.index[key] = (priority, number, item)  # an existing key: the stored one stays
        else:
            del self.index[key]
            try:
                self.index[key] = (priority, number, item)
            except BaseException:
                self.index[_key_of(stored)] = old
                raise
        try:
            self._own()
        except BaseException:
            self.index.pop(key, None)
            self.index[_key_of(stored)] = old
            raise
        self._take(was, old_exact)
        self._put(at, item, priority, value, number, exact)
        return False

    cdef int unsubscribe(self, object key, object only=None) except -1:
        """Remove the listener held under *key*; with *only*, only if it is that item."""
        cdef tuple old = self.index.get(key)
        cdef Py_ssize_t at
        cdef double value
        cdef object stored, priority
        if old is None or (only is not None and old[2] is not only):
            return 0
        at = self._position(old[0], old[1])
        stored = self.callbacks[at]
        priority = self.priorities[at]
        del self.index[key]
        try:
            self._own()
        except BaseException:
            self.index[_key_of(stored)] = old
            raise
        self._take(at, _exact_double(priority, &value))
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
    # A re-entrant lock for edits, in C (see _enter): a threading.RLock costs two Python
    # method calls per edit.
    cdef PyThread_type_lock _mutex
    cdef long _owner
    cdef Py_ssize_t _depth
    cdef unsigned long long _next_number
    cdef bint _editing
    cdef list _pending        # nested edits, applied after the current one (see _edit)
    cdef object __weakref__

    def __cinit__(self, *args, **kwargs):
        self._channels = {}
        self._last_name = NO_CHANNEL
        self._last_channel = None
        self._mutex = PyThread_allocate_lock()
        if self._mutex is NULL:
            raise MemoryError()
        self._next_number = 0
        self._pending = []

    def __dealloc__(self):
        if self._mutex is not NULL:
            PyThread_free_lock(self._mutex)

    cdef int _enter(self) except -1:
        cdef long me = PyThread_get_thread_ident()
        if self._depth and self._owner == me:
            self._depth += 1
            return 0
        if not PyThread_acquire_lock(self._mutex, NOWAIT_LOCK):
            with nogil:
                PyThread_acquire_lock(self._mutex, WAIT_LOCK)
        self._owner = me
        self._depth = 1
        return 0

    cdef inline void _leave(self):
        self._depth -= 1
        if self._depth == 0:
            PyThread_release_lock(self._mutex)

    cdef int _edit(self, Edit edit, object channel, object callback, object priority) except -1:
        """Apply a registry edit under the lock, one edit at a time.

        An edit may run Python code midway (a callback's ``__hash__`` or ``__eq__``, a
        priority's comparison, a finalizer run by the garbage collector), and that code may
        edit the registry again, in this thread since the lock is held. Such a nested edit is
        queued and applied right after the current one, never on its halfway state; it is
        applied even if the current one fails, whose error is then raised (the first error,
        if several failed).
        """
        cdef object error = None
        self._enter()
        try:
            if self._editing:
                self._pending.append((edit, channel, callback, priority))
                return 0
            self._editing = True
            try:
                try:
                    self._apply(edit, channel, callback, priority)
                except BaseException as exc:
                    error = exc
                while self._pending:
                    item = self._pending.pop(0)
                    try:
                        self._apply(item[0], item[1], item[2], item[3])
                    except BaseException as exc:
                        if error is None:
                            error = exc
            finally:
                self._editing = False
        finally:
            self._leave()
        if error is not None:
            raise error
        return 0

    cdef int _apply(self, Edit edit, object channel, object callback, object priority) except -1:
        cdef _Channel chan, old
        cdef tuple kept
        if edit == REMOVE:
            self._channels.pop(channel, None)
            self._forget_last()
            return 0
        if edit == SET or edit == SET_IF_NEW:
            old = self._channels.get(channel)
            if old is not None and edit == SET_IF_NEW:
                return 0
            chan = _Channel()
            for entry in <tuple>callback:
                kept = old.index.get(entry[0]) if old is not None else None
                if kept is None:
                    item = self._item(channel, entry[0], False, False)
                    if chan.subscribe(item, entry[1], self._next_number, True):
                        self._next_number += 1
                else:
                    chan.subscribe(kept[2], kept[0], kept[1], True)
            self._channels[channel] = chan
            self._forget_last()
            return 0
        chan = self._channels.get(channel)
        if edit == UNSUBSCRIBE:
            if chan is not None:
                chan.unsubscribe(callback)
            return 0
        if edit == DROP:
            if chan is not None:
                chan.unsubscribe(_key_of(callback), callback)
            return 0
        if chan is None:
            chan = _Channel()
            if chan.subscribe(callback, priority, self._next_number, False):
                self._next_number += 1
            self._channels[channel] = chan
        elif chan.subscribe(callback, priority, self._next_number, False):
            self._next_number += 1
        return 0

    def subscribe(self, channel, callback=None, priority=None, *, weak=False, once=False):
        """Call *callback* on each publish to *channel*, at *priority* (lower runs first).

        Without *priority*, the callback's ``priority`` attribute is used, else 50. Subscribing
        a callback again (or one equal to it) keeps the first one's single entry and its place
        among equal priorities, and takes the new priority (and the new *weak* and *once*).
        Without *callback*, return a decorator that subscribes the function it decorates and
        returns it unchanged.

        With *weak*, the bus holds the callback by weak reference (a bound method by weak
        references to its object and its function, not to the short-lived method object):
        once the referent is collected the subscription disappears by itself. With *once*,
        the callback runs on one publish only, even if several threads publish at once, and
        is unsubscribed before it is called. An ``async def`` callback can only be published
        to with :meth:`apublish`.

        Raises TypeError for an unhashable *channel*, a *callback* that is not callable or not
        hashable (or, with *weak*, cannot be weakly referenced), a *priority* that is not a
        real number (ValueError for NaN), or a *weak* or *once* that is not a bool; nothing is
        registered then.
        """
        if callback is None:
            return subscriber(self.subscribe, channel, priority, weak, once)
        if hash_failed(channel):
            check_channel(channel)
        if not PyCallable_Check(callback) or hash_failed(callback):
            check_callback(callback)
        priority = _checked_priority(callback, priority)
        if weak is not False or once is not False:
            check_flag(weak, "weak")
            check_flag(once, "once")
        self._edit(SUBSCRIBE, channel, self._item(channel, callback, weak is True, once is True), priority)
        return None

    cdef object _item(self, object channel, object callback, bint weak, bint once):
        """What the registry stores for *callback*: itself, or an :class:`_Entry`."""
        cdef bint coroutine = _is_async(callback)
        if not (weak or once or coroutine):
            return callback
        return _new_entry(self, channel, callback, weak, once, coroutine)

    cdef int _drop(self, object channel, _Entry entry) except -1:
        """Remove *entry* (a weak one whose referent died, or a claimed one-shot), if it is still there."""
        self._edit(DROP, channel, entry, None)
        return 0

    def unsubscribe(self, channel, callback):
        """Stop calling *callback* on *channel*; a no-op if it is not subscribed there.

        Callbacks match by equality, as in a set, so ``bus.unsubscribe('x', obj.method)``
        removes a bound method subscribed earlier through another ``obj.method`` (weakly or
        not).
        """
        if hash_failed(channel):
            check_channel(channel)
        if hash_failed(callback):
            check_callback(callback)
        self._edit(UNSUBSCRIBE, channel, callback, None)

    # ``publish`` is added below as a METH_FASTCALL method.

    async def apublish(self, channel, /, *args, **kwargs):
        """Call every listener of *channel* as :meth:`publish` does, awaiting what they return.

        A listener whose result is awaitable (an ``async def`` listener's coroutine, or any
        awaitable a plain one returns) is awaited before the next listener runs, so priority
        order holds across sync and async listeners alike; the results are the awaited values.
        Failures are handled as by :meth:`publish`: every listener runs, each failure is logged
        and all are raised together as :class:`ChannelFailures`. KeyboardInterrupt, SystemExit
        and cancellation (``asyncio.CancelledError``, or any BaseException that is not an
        Exception) propagate at once, leaving the bus as it was.

        Only ``await`` is used, no event loop API: any loop that runs coroutines can run this.
        """
        cdef PyObject *found
        cdef _Applying run
        found = PyDict_GetItemWithError(self._channels, channel)
        if found is NULL:
            _no_channel(channel)
            return []
        run = _Applying.__new__(_Applying)
        run.bus = self
        run.channel = channel
        run.callbacks = (<_Channel>found).callbacks  # held: an edit meanwhile copies it
        run.args = args
        run.kwargs = kwargs if kwargs else None
        run.output = []
        while run.advance():
            awaitable = run.awaitable
            run.awaitable = None
            try:
                result = await awaitable
            except BaseException:
                run.failures = listener_failed(self, run.channel, run.listener, run.failures)
                result = None
            run.output.append(result)
        if run.failures is not None:
            raise run.failures
        return run.output

    cdef inline void _forget_last(self):
        self._last_name = NO_CHANNEL
        self._last_channel = None

    # The registry, for the ``listeners`` mapping and the lifecycle: snapshots and edits of
    # whole channels. Callbacks and priorities given to these are checked by the caller.

    def _channel_names(self):
        """Return the channels, in the order they were created."""
        return list(self._channels.copy())

    def _has_channel(self, channel):
        return channel in self._channels

    def _listeners_of(self, channel):
        """Return the listeners of *channel* in call order; KeyError if there is no such."""
        cdef _Channel chan = self._channels[channel]
        cdef list callbacks = chan.callbacks  # held, so an edit meanwhile copies it
        if chan.entries == 0:
            return tuple(callbacks)
        visible = []
        for item in callbacks:
            if type(item) is _Entry:
                item = (<_Entry>item).target()
                if item is None:
                    continue
            visible.append(item)
        return tuple(visible)

    def _entries(self, channel):
        """Return ``(callback, priority, weak, once)`` per listener of *channel*, in call order."""
        cdef _Channel chan = self._channels[channel]
        cdef list callbacks = chan.callbacks
        cdef list priorities = chan.priorities
        cdef _Entry entry
        entries = []
        for priority, item in zip(priorities, callbacks):
            if type(item) is _Entry:
                entry = <_Entry>item
                callback = entry.target()
                if callback is not None:
                    entries.append((callback, priority, entry.weak, entry.once))
            else:
                entries.append((item, priority, False, False))
        return entries

    def subscriptions(self, channel):
        """Return the listeners of *channel* in call order, as :class:`Subscription` tuples.

        Each says the callback, its priority and whether it is weak or one-shot: what
        ``subscribe`` was last told for it. An unknown channel gives ``[]``. A snapshot: later
        edits do not change it.
        """
        if hash_failed(channel):
            check_channel(channel)
        try:
            entries = self._entries(channel)
        except KeyError:
            return []
        return [Subscription(*entry) for entry in entries]

    def _set_listeners(self, channel, entries, only_if_new=False):
        """Make *entries* ``(callback, priority)`` the listeners of *channel*, all at once.

        A callback already subscribed there keeps its priority and place. With *only_if_new*,
        an existing channel is left as it is. Nothing changes if building the new list fails.
        """
        check_channel(channel)
        self._edit(SET_IF_NEW if only_if_new else SET, channel, tuple(entries), None)

    def _remove_channel(self, channel):
        """Forget *channel*; return the listeners it had. KeyError if there is no such."""
        cdef tuple callbacks
        self._enter()
        try:
            callbacks = self._listeners_of(channel)
            self._edit(REMOVE, channel, None, None)
            return callbacks
        finally:
            self._leave()


cdef inline bint hash_failed(object value):
    # The caller then reruns the check in Python, which raises the right error.
    if PyObject_Hash_unchecked(value) == -1 and PyErr_Occurred() is not NULL:
        PyErr_Clear()
        return True
    return False


cdef int _no_channel(object channel) except -1:
    # A lookup of *channel* found nothing: raise its error if it failed (an unhashable
    # channel gets the argument check's words), else there is no such channel.
    if PyErr_Occurred() is not NULL:
        try:
            pending_error()
        except TypeError:
            check_channel(channel)
            raise
    return 0


cdef object _failed(object bus, object channel, object listener, object failures):
    # The failure of *listener* is the pending exception: handle it as the pure core does.
    try:
        pending_error()
    except BaseException:
        return listener_failed(bus, channel, listener, failures)


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
            _no_channel(channel)
            return []
        chan = <_Channel>found
        bus._last_name = channel
        bus._last_channel = chan
    # Holding the list claims it: from here on an edit (from a finalizer that allocating the
    # result list runs, from a listener, from another thread) copies it instead.
    callbacks = chan.callbacks
    if chan.entries:
        return _publish_entries(bus, chan, callbacks, channel, args, nargs, kwnames)
    n = PyList_GET_SIZE(callbacks)
    output = PyList_New(n)
    if n == 0:
        return output
    # Until every slot is filled the list must stay out of the garbage collector's sight
    # (gc.get_referrers() could hand it to a listener, NULL slots and all).
    PyObject_GC_UnTrack(output)
    for i in range(n):
        listener = PyList_GET_ITEM_BORROWED(callbacks, i)
        result = PyObject_Vectorcall(listener, args + 1, <size_t>(nargs - 1), kwnames)
        if result is NULL:
            failures = _failed(self, channel, <object>listener, failures)
            result = <PyObject *>None
            Py_INCREF(None)
        PyList_SET_ITEM_STEAL(output, i, result)
    PyObject_GC_Track(output)
    if failures is not None:
        raise failures
    return output


@cython.final
cdef class _Applying:
    """One ``apublish`` in progress, for its coroutine: the listeners that return a plain value
    run here, in C as in publish; each awaitable result is handed to the coroutine to await.
    """

    cdef CoreBus bus
    cdef object channel
    cdef list callbacks       # the snapshot being published
    cdef tuple args
    cdef dict kwargs          # None when there are none: the listeners are then vectorcalled
    cdef list output
    cdef object failures
    cdef Py_ssize_t next      # the listener to call next
    cdef object listener      # the one whose result is being awaited
    cdef object awaitable

    cdef bint advance(self) except -1:
        """Run listeners until one returns an awaitable (True) or none is left (False)."""
        # Borrowed pointers throughout: the snapshot list is held, so its items live.
        cdef list callbacks = self.callbacks, output = self.output
        cdef tuple args = self.args
        cdef dict kwargs = self.kwargs
        cdef Py_ssize_t i = self.next, n = PyList_GET_SIZE(callbacks)
        cdef PyObject *listener
        cdef PyObject *result
        cdef object claimed
        while i < n:
            listener = PyList_GET_ITEM_BORROWED(callbacks, i)
            i += 1
            self.next = i
            if type_of(listener) == <PyTypeObject *>_Entry:
                claimed = (<_Entry><object>listener).claim()
                if claimed is None:
                    continue
                if (<_Entry><object>listener).once:
                    self.bus._drop(self.channel, <_Entry><object>listener)
                listener = <PyObject *>claimed  # kept alive by *claimed*
            if kwargs is None:
                result = call_tuple_ptr(listener, args)
            else:
                result = call_with(listener, args, kwargs)
            if result is NULL:
                self.failures = _failed(self.bus, self.channel, <object>listener, self.failures)
                output.append(None)
                continue
            if has_await_ptr(result) or (gen_check_exact_ptr(result) and awaitable(<object>result)):
                self.listener = <object>listener
                self.awaitable = <object>result
                decref_ptr(result)  # the reference the call returned, now held by the attribute
                return True
            try:
                list_append_ptr(output, result)
            finally:
                decref_ptr(result)
        return False


cdef object _publish_entries(CoreBus bus, _Channel chan, list callbacks, object channel, PyObject **args,
                             Py_ssize_t nargs, PyObject *kwnames):
    # publish's loop for a channel that has weak, one-shot or async listeners. Read before
    # anything allocates, so it is the count of the snapshot publish holds.
    cdef Py_ssize_t coroutines = chan.coroutines
    cdef Py_ssize_t i, n = PyList_GET_SIZE(callbacks)
    cdef list output
    cdef object failures = None, listener, item, value
    cdef PyObject *result
    if coroutines:
        for i in range(n):
            item = <object>PyList_GET_ITEM_BORROWED(callbacks, i)
            if type(item) is _Entry and (<_Entry>item).coroutine:
                listener = (<_Entry>item).target()
                if listener is not None:
                    raise needs_apublish(channel, listener)
    output = []
    for i in range(n):
        item = <object>PyList_GET_ITEM_BORROWED(callbacks, i)
        if type(item) is _Entry:
            listener = (<_Entry>item).claim()
            if listener is None:
                continue
            if (<_Entry>item).once:
                bus._drop(channel, <_Entry>item)
        else:
            listener = item
        result = PyObject_Vectorcall(<PyObject *>listener, args + 1, <size_t>(nargs - 1), kwnames)
        if result is NULL:
            failures = _failed(bus, channel, listener, failures)
            output.append(None)
        else:
            value = <object>result  # a new reference of ours, taken over here
            Py_DECREF(value)
            output.append(value)
    if failures is not None:
        raise failures
    return output


cdef PyMethodDef _publish_def
_publish_def.ml_name = "publish"
_publish_def.ml_meth = <void *>_publish
_publish_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
# The signature line is for inspect.signature; the rest is the contract's docstring.
cdef bytes _publish_doc = ("publish($self, channel, /, *args, **kwargs)\n--\n\n" + """Call every listener of *channel* with the given arguments; return their results.

        The results come in call order; an unknown channel gives ``[]`` (and is not created).
        Every listener runs even if others fail: each failure is logged to ``log`` at level 40
        with its traceback (except failures of ``log`` listeners themselves), and all of them
        are raised together afterwards as :class:`ChannelFailures`. KeyboardInterrupt stops the
        publish at once; so does SystemExit, whose code 0 becomes 1 if a listener already
        failed in this publish.

        A weak listener whose referent died, or a one-shot listener that another publish
        claimed, is skipped and gives no result. A channel with an ``async def`` listener
        raises TypeError before calling anything: use :meth:`apublish`. (A plain function that
        returns an awaitable cannot be recognised beforehand; publish returns its awaitable
        among the results, not awaited.)
        """).encode()
_publish_def.ml_doc = _publish_doc
add_method(<PyTypeObject *>CoreBus, &_publish_def)
