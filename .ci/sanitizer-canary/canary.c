/* A deliberately broken extension: proves that the sanitizer gate fails on a report.
 *
 * .ci/gate-sanitizers builds it with the flags it builds fastbus with and runs
 * test_canary.py under the same harness: each bad call must fail the run, and the
 * in-bounds call must not (so the harness is not simply failing everything).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Read byte *index* of an 8-byte heap block: index 8 is one past the end. */
static PyObject *
read_byte(PyObject *self, PyObject *arg)
{
    Py_ssize_t index = PyLong_AsSsize_t(arg);
    if (index == -1 && PyErr_Occurred()) {
        return NULL;
    }
    char *block = malloc(8);
    if (block == NULL) {
        return PyErr_NoMemory();
    }
    memset(block, 7, 8);
    /* Through a volatile pointer, so that the read is AddressSanitizer's to catch (the
     * compiler cannot see the block's size, so UBSan's object-size check stays out). */
    char *volatile opaque = block;
    volatile char value = opaque[index];
    free(block);
    return PyLong_FromLong(value);
}

/* Read the item array of a list after the list is freed: the kind of read a publish that
 * kept a stale pointer across a finalizer would make. The array is small enough for
 * pymalloc, so only PYTHONMALLOC=malloc lets AddressSanitizer see it. */
static PyObject *
read_freed_list(PyObject *self, PyObject *unused)
{
    PyObject *list = PyList_New(2);
    if (list == NULL) {
        return NULL;
    }
    PyObject **volatile items = ((PyListObject *)list)->ob_item;
    Py_DECREF(list);
    PyObject *volatile item = items[0];
    return PyBool_FromLong(item != NULL);
}

/* Add one to a C int: INT_MAX overflows, which is undefined behaviour. */
static PyObject *
add_one(PyObject *self, PyObject *arg)
{
    long given = PyLong_AsLong(arg);
    if (given == -1 && PyErr_Occurred()) {
        return NULL;
    }
    volatile int number = (int)given;
    int result = number + 1;
    return PyLong_FromLong(result);
}

static PyMethodDef methods[] = {
    {"read_byte", read_byte, METH_O, "Read a byte of an 8-byte heap block."},
    {"read_freed_list", read_freed_list, METH_NOARGS, "Read a freed list's items."},
    {"add_one", add_one, METH_O, "Add one to a C int."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "sanitizer_canary", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit_sanitizer_canary(void)
{
    return PyModule_Create(&module);
}
