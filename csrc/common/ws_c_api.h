// What each compiled library of wsnet_ext offers besides its op registrations, as plain C
// functions: no Python symbol anywhere, so a C++ program with only libtorch can load the library
// (dlopen registers the ops) and Python reaches these with ctypes (wsnet_ext/_build.py).
// WS_SWITCH_C_API(prefix) defines <prefix>_set_switch and <prefix>_get_switch over the library's
// own copy of the switches (ws_switches.h): distinct names per library, so nothing clashes when
// both are loaded.
#pragma once

#include "common/ws_switches.h"

#define WS_C_EXPORT extern "C" __attribute__((visibility("default")))

#define WS_SWITCH_C_API(prefix)                                                                  \
  /* 1 when set, 0 for an id out of range (the Python side checks values) */                      \
  WS_C_EXPORT int prefix##_set_switch(int id, int value) { return wsnet::set_switch(id, value) ? 1 : 0; } \
  /* the value, or -1 for an id out of range */                                                   \
  WS_C_EXPORT int prefix##_get_switch(int id) {                                                  \
    if (id < 0 || id >= static_cast<int>(wsnet::Switch::kCount)) return -1;                     \
    return wsnet::get_switch(static_cast<wsnet::Switch>(id));                                    \
  }
