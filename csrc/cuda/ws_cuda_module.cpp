// The C functions of the CUDA library _C_cuda (ws_c_api.h): its own copy of the switches. Loading
// the library registers the CUDA kernels for the schemas of _C (load that first).
#include "common/ws_c_api.h"

WS_SWITCH_C_API(wsnet_cuda)
