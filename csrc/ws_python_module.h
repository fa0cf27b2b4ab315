// What both Python modules of wsnet_ext (wsnet_ext._C in ops.cpp, wsnet_ext._C_cuda in
// cuda/ws_cuda_module.cpp) offer besides loading their library: setting the switches of
// ws_switches.h (wsnet_ext/_switches.py calls it). Python's limited API only.
#pragma once

#include <Python.h>

#include "ws_switches.h"

namespace wsnet {

// set_switch(id, value); wsnet_ext/_switches.py checks the values.
inline PyObject* py_set_switch(PyObject*, PyObject* args) {
  int id = 0, value = 0;
  if (!PyArg_ParseTuple(args, "ii", &id, &value)) return nullptr;
  if (!set_switch(id, value)) {
    PyErr_Format(PyExc_ValueError, "set_switch: expected a switch id in [0, %d), got %d",
                 static_cast<int>(Switch::kCount), id);
    return nullptr;
  }
  return Py_BuildValue("");  // None (without _Py_NoneStruct, outside the limited API before 3.13)
}

// get_switch(id): the value the library holds (tests read it back rather than trust Python's copy).
inline PyObject* py_get_switch(PyObject*, PyObject* args) {
  int id = 0;
  if (!PyArg_ParseTuple(args, "i", &id)) return nullptr;
  if (id < 0 || id >= static_cast<int>(Switch::kCount)) {
    PyErr_Format(PyExc_ValueError, "get_switch: expected a switch id in [0, %d), got %d",
                 static_cast<int>(Switch::kCount), id);
    return nullptr;
  }
  return PyLong_FromLong(get_switch(static_cast<Switch>(id)));
}

#define WS_SET_SWITCH_METHOD \
  {"set_switch", wsnet::py_set_switch, METH_VARARGS, "Sets one switch of ws_switches.h."}, \
  {"get_switch", wsnet::py_get_switch, METH_VARARGS, "Reads one switch of ws_switches.h."}

}  // namespace wsnet
