# cython: language_level=3
"""The floor for benchmarks: the least any bus must do to publish.

:class:`Floor` calls a fixed sequence of callbacks with vectorcall and collects their results
in a new list: no channel lookup, no priorities, no error handling, no thread safety. A bus's
publish cost divided by the floor's for the same callbacks is its overhead.
"""

cimport cython
from cpython.object cimport PyObject, PyTypeObject

from fastbus._capi cimport (
    METH_FASTCALL, METH_KEYWORDS, PyMethodDef, PyObject_Vectorcall, PyList_SET_ITEM_STEAL,
    PyList_GET_ITEM_BORROWED, PyList_GET_SIZE, PyList_New, PyObject_GC_Track, PyObject_GC_UnTrack,
    add_method,
)

__all__ = ("Floor",)


@cython.final
cdef class Floor:
    """``Floor(callbacks).call(*args, **kwargs)``: call each callback, return the results."""

    cdef list callbacks

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)

    def __len__(self):
        return len(self.callbacks)


cdef object _call(object self, PyObject **args, Py_ssize_t nargs, PyObject *kwnames):
    cdef list callbacks = (<Floor>self).callbacks
    cdef Py_ssize_t i, n = PyList_GET_SIZE(callbacks)
    cdef list output = PyList_New(n)
    cdef PyObject *result
    PyObject_GC_UnTrack(output)  # as the bus does: no half-filled list in the collector's sight
    for i in range(n):
        result = PyObject_Vectorcall(PyList_GET_ITEM_BORROWED(callbacks, i), args, <size_t>nargs, kwnames)
        if result is NULL:
            raise  # the callback's own exception
        PyList_SET_ITEM_STEAL(output, i, result)
    PyObject_GC_Track(output)
    return output


cdef PyMethodDef _call_def
_call_def.ml_name = "call"
_call_def.ml_meth = <void *>_call
_call_def.ml_flags = METH_FASTCALL | METH_KEYWORDS
_call_def.ml_doc = "call($self, /, *args, **kwargs)\n--\n\nCall each callback with the arguments; return the results."
add_method(<PyTypeObject *>Floor, &_call_def)
