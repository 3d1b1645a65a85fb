/*
** rf_base.c: the one function rf_base.h declares, the report of a broken invariant.
** Runtime layer (L0).
*/
#include "rf_base.h"

#include <stdio.h>
#include <stdlib.h>

void rf_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "refract: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
	abort();
}
