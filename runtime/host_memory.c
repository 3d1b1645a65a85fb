/*
** host_memory.c: the machine's memory as a bound for single allocations (host_memory.h).
** Runtime layer (L0).
*/
#include "host_memory.h"

#include <sys/sysinfo.h>

uint64_t rf_host_memory_limit(void)
{
	/* Racy first use is harmless: every thread computes the same value. */
	static uint64_t limit;
	if (!limit) {
		struct sysinfo si;
		if (sysinfo(&si) == 0 && si.mem_unit > 0)
			limit = ((uint64_t)si.totalram + (uint64_t)si.totalswap) * si.mem_unit;
		else
			limit = UINT64_C(1) << 62;
	}
	return limit;
}
