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

/* The machine's physical memory plus swap, in bytes (read once; 2^62 if unknown). */
uint64_t rf_host_memory_limit(void);

#endif
