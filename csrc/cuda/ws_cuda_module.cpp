// The Python module `wsnet_ext._C_cuda`: importing it loads the CUDA kernels, which register
// themselves for the schemas of wsnet_ext._C (load that first). Python's limited API only.
#include <Python.h>

#include "../ws_switches.h"

#ifndef WSNET_CUDA_VERSION
#define WSNET_CUDA_VERSION "unknown"
#endif

namespace {

// "cuda=<the CUDA version of the torch this library was built against>"
PyObject* build_info(PyObject*, PyObject*) {
  return PyUnicode_FromString("cuda=" WSNET_CUDA_VERSION);
}

// set_switch(id, value): one of the switches of ws_switches.h (wsnet_ext/_switches.py checks values).
PyObject* set_switch(PyObject*, PyObject* args) {
  int id = 0, value = 0;
  if (!PyArg_ParseTuple(args, "ii", &id, &value)) return nullptr;
  if (!wsnet::set_switch(id, value)) {
    PyErr_Format(PyExc_ValueError, "set_switch: expected a switch id in [0, %d), got %d",
                 static_cast<int>(wsnet::Switch::kCount), id);
    return nullptr;
  }
  return Py_BuildValue("");  // None (without _Py_NoneStruct, outside the limited API before 3.13)
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this library was built against."},
    {"set_switch", set_switch, METH_VARARGS, "Sets one switch of ws_switches.h."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_cuda", nullptr, -1, methods};

}  // namespace

extern "C" PyObject* PyInit__C_cuda(void) { return PyModule_Create(&module_def); }
