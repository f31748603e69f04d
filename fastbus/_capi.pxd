# C-API pieces shared by the compiled modules: vectorcall, and methods that receive their
# arguments as a C array (METH_FASTCALL), which Cython's ``def f(*args, **kwargs)`` cannot do
# without allocating a tuple and a dict on every call.

from cpython.object cimport PyObject, PyTypeObject

cdef extern from "Python.h":
    ctypedef struct PyMethodDef:
        const char *ml_name
        void *ml_meth
        int ml_flags
        const char *ml_doc

    int METH_FASTCALL
    int METH_KEYWORDS

    PyObject *PyObject_Vectorcall(PyObject *callable, PyObject **args, size_t nargsf, PyObject *kwnames)
    object PyDescr_NewMethod(type cls, PyMethodDef *meth)
    void PyType_Modified(type cls)
    PyObject *PyDict_GetItemWithError(object d, object key)
    PyObject *PyErr_Occurred()
    void PyErr_Clear()
    void PyObject_GC_Track(object op)
    void PyObject_GC_UnTrack(object op)
    Py_hash_t PyObject_Hash_unchecked "PyObject_Hash" (object value)
    void PyList_SET_ITEM_STEAL "PyList_SET_ITEM" (object lst, Py_ssize_t i, PyObject *item)
    PyObject *PyList_GET_ITEM_BORROWED "PyList_GET_ITEM" (object lst, Py_ssize_t i)
    Py_ssize_t PyList_GET_SIZE(object lst)
    object PyList_New(Py_ssize_t n)
    int PyList_Insert(object lst, Py_ssize_t i, object item) except -1
    Py_ssize_t PyTuple_GET_SIZE(object t)

cdef extern from *:
    """
    /* Calling this from Cython re-raises the exception that is already set, so that a plain
       try/except can handle the failure of a C-level call. */
    static inline PyObject *fastbus_pending_error(void) { return NULL; }

    /* Delete item *at* of a list in place: what ``del lst[at]`` does, without the generic
       slice machinery. The caller must hold its own reference to the item, so that
       dropping the list's reference frees nothing (and runs no finalizer) here. */
    static inline void fastbus_list_delete(PyObject *lst, Py_ssize_t at) {
        PyListObject *list = (PyListObject *)lst;
        PyObject *item = list->ob_item[at];
        memmove(&list->ob_item[at], &list->ob_item[at + 1], (Py_SIZE(list) - at - 1) * sizeof(PyObject *));
        Py_SET_SIZE(list, Py_SIZE(list) - 1);
        Py_DECREF(item);
    }

    /* Whether ``await value`` works through the type's __await__ slot (coroutines, futures,
       any class defining __await__); generator-based coroutines are left to the caller. */
    static inline int fastbus_has_await(PyObject *value) {
        PyAsyncMethods *methods = Py_TYPE(value)->tp_as_async;
        return methods != NULL && methods->am_await != NULL;
    }

    /* For a Python function (or a bound method of one), 1 if it is an ``async def``, 0 if it
       is surely not, -1 if that cannot be told from its code alone (it has a __dict__, which
       may hold inspect's coroutine marker) or it is no Python function. */
    static inline int fastbus_async_function(PyObject *callback) {
        PyObject *dict;
        if (PyMethod_Check(callback)) callback = PyMethod_GET_FUNCTION(callback);
        if (!PyFunction_Check(callback)) return -1;
        if (((PyCodeObject *)PyFunction_GET_CODE(callback))->co_flags & CO_COROUTINE) return 1;
        dict = ((PyFunctionObject *)callback)->func_dict;
        return (dict == NULL || PyDict_GET_SIZE(dict) == 0) ? 0 : -1;
    }

    /* Call *callable* with a tuple's items as positional arguments, by vectorcall straight
       from the tuple's own array: what ``callable(*args)`` costs without unpacking. */
    static inline PyObject *fastbus_call_tuple(PyObject *callable, PyObject *args) {
        return PyObject_Vectorcall(callable, &PyTuple_GET_ITEM(args, 0), (size_t)PyTuple_GET_SIZE(args), NULL);
    }

    /* Put a METH_FASTCALL method on an extension type after it is created. */
    static inline int fastbus_add_method(PyTypeObject *type, PyMethodDef *def) {
        PyObject *descr = PyDescr_NewMethod(type, def);
        if (descr == NULL) return -1;
        if (PyDict_SetItemString(type->tp_dict, def->ml_name, descr) < 0) {
            Py_DECREF(descr);
            return -1;
        }
        Py_DECREF(descr);
        PyType_Modified(type);
        return 0;
    }
    """
    object pending_error "fastbus_pending_error" ()
    int async_function "fastbus_async_function" (object callback)
    PyObject *call_with "PyObject_Call" (PyObject *callable, object args, object kwargs)
    bint has_await_ptr "fastbus_has_await" (PyObject *value)
    PyObject *call_tuple_ptr "fastbus_call_tuple" (PyObject *callable, object args)
    int list_append_ptr "PyList_Append" (object lst, PyObject *item) except -1
    bint gen_check_exact_ptr "PyGen_CheckExact" (PyObject *value)
    PyTypeObject *type_of "Py_TYPE" (PyObject *value)
    void decref_ptr "Py_DECREF" (PyObject *value)
    void list_delete "fastbus_list_delete" (object lst, Py_ssize_t at)
    int add_method "fastbus_add_method" (PyTypeObject *type, PyMethodDef *meth) except -1
