/*
** host_memory.h: the most host memory one allocation may ask for. A request beyond the
** machine's memory cannot succeed, and a sanitizer build's allocator aborts the process
** on one (rather than returning NULL), so every allocation whose size a user controls
** (host tensors, the Lua state's allocations) is checked against this first and refused
** with a clear error. Runtime layer (L0).
*/
#ifndef RF_RUNTIME_HOST_MEMORY_H
#define RF_RUNTIME_HOST_MEMORY_H

#include "rf_base.h"

/* The machine's physical memory plus swap, in bytes (read once; 2^62 if unknown), or
** REFRACT_HOST_BUDGET=<bytes> (at least 65536) where that is lower: the fuzzers set it,
** since to libFuzzer a legal 4 GiB host tensor is a finding. */
uint64_t rf_host_memory_limit(void);
/* Whether REFRACT_HOST_BUDGET is unset or such a number (the device context refuses
** another value with a clear error when it is created). */
bool rf_host_budget_env_ok(void);

#endif
