// The Python module `wsnet_ext._C_cuda`: importing it loads the CUDA kernels, which register
// themselves for the schemas of wsnet_ext._C (load that first). Python's limited API only.
#include <Python.h>

#include "../ws_python_module.h"

namespace {

// (what it was built for is recorded in wsnet_ext._C's build_info, read before this is loaded)
PyMethodDef methods[] = {
    WS_SET_SWITCH_METHOD,
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C_cuda", nullptr, -1, methods};

}  // namespace

extern "C" PyObject* PyInit__C_cuda(void) { return PyModule_Create(&module_def); }
