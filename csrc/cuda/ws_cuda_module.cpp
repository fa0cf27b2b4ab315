// The Python module `wsnet_ext._C_cuda`: importing it loads the CUDA kernels, which register
// themselves for the schemas of wsnet_ext._C (load that first). Python's limited API only.
#include <Python.h>

#ifndef WSNET_CUDA_VERSION
#define WSNET_CUDA_VERSION "unknown"
#endif

namespace {

// "cuda=<the CUDA version of the torch this library was built against>"
PyObject* build_info(PyObject*, PyObject*) {
  return PyUnicode_FromString("cuda=" WSNET_CUDA_VERSION);
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this library was built against."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_cuda", nullptr, -1, methods};

}  // namespace

extern "C" PyObject* PyInit__C_cuda(void) { return PyModule_Create(&module_def); }
