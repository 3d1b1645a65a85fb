/*
** host_memory.c: the machine's memory as a bound for single allocations (host_memory.h).
** Runtime layer (L0).
*/
#include "host_memory.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/sysinfo.h>

static uint64_t limit;
static pthread_once_t limit_once = PTHREAD_ONCE_INIT;

/* REFRACT_HOST_BUDGET as a number of bytes (at least 65536), or 0 if unset or not one. */
static uint64_t budget_from_env(void)
{
	const char *v = getenv("REFRACT_HOST_BUDGET");
	if (!v || !*v || v[0] == '-')
		return 0;
	char *end;
	errno = 0;
	unsigned long long bytes = strtoull(v, &end, 10);
	return *end || errno || bytes < 65536 ? 0 : (uint64_t)bytes;
}

static void compute_limit(void)
{
	struct sysinfo si;
	if (sysinfo(&si) == 0 && si.mem_unit > 0)
		limit = ((uint64_t)si.totalram + (uint64_t)si.totalswap) * si.mem_unit;
	else
		limit = UINT64_C(1) << 62;
	uint64_t budget = budget_from_env();
	if (budget && budget < limit)
		limit = budget;
}

uint64_t rf_host_memory_limit(void)
{
	/* Once for every thread: the dataset workers and the Lua state may ask together. */
	pthread_once(&limit_once, compute_limit);
	return limit;
}

bool rf_host_budget_env_ok(void)
{
	const char *v = getenv("REFRACT_HOST_BUDGET");
	return !v || !*v || budget_from_env() != 0;
}
