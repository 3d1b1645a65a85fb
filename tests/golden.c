/*
** golden.c: golden data access for tests (see golden.h).
*/
#include "golden.h"
#include "harness.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Paths handed out so far; kept for the life of the test and freed at exit. */
static char **paths;
static size_t npaths;

static void free_paths(void)
{
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
}

const char *rf_test_data(const char *rel)
{
	const char *root = getenv("RF_TEST_DATA");
	if (!root) {
		fprintf(stderr, "SKIP: RF_TEST_DATA is not set\n");
		exit(77);
	}
	if (!paths)
		atexit(free_paths);
	char **grown = realloc(paths, (npaths + 1) * sizeof *paths);
	size_t len = strlen(root) + strlen(rel) + 2;
	char *p = malloc(len);
	if (!grown || !p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	paths = grown;
	snprintf(p, len, "%s/%s", root, rel);
	paths[npaths++] = p;
	return p;
}

rf_tensor *rf_golden_read(const char *file, const char *name)
{
	rf_safetensors *st;
	rf_tensor *t = NULL;
	if (rf_safetensors_open(file, &st) != RF_OK) {
		fprintf(stderr, "cannot open golden %s: %s\n", file, rf_error_message());
		rf_test_failures++;
		return NULL;
	}
	if (rf_safetensors_read(st, name, &t) != RF_OK) {
		fprintf(stderr, "golden: %s\n", rf_error_message());
		rf_test_failures++;
	}
	rf_safetensors_close(st);
	return t;
}

bool rf_golden_compare(const char *label, const rf_tensor *got, const rf_tensor *want, double atol)
{
	char a[96], b[96];
	if (!got || !want || !rf_shape_equal(&got->shape, &want->shape) || got->dtype != RF_F32) {
		fprintf(stderr, "%s: shape %s, golden %s\n", label, got ? rf_shape_str(&got->shape, a, sizeof a) : "(none)",
			want ? rf_shape_str(&want->shape, b, sizeof b) : "(none)");
		rf_test_failures++;
		return false;
	}
	size_t n = (size_t)rf_tensor_numel(got);
	float *g = malloc((n ? n : 1) * sizeof *g);
	double *r = malloc((n ? n : 1) * sizeof *r);
	bool ok = false;
	if (g && r && rf_tensor_download(got, g, n * sizeof *g) == RF_OK) {
		for (size_t i = 0; i < n; i++)
			r[i] = ((const float *)want->host)[i];
		ok = rf_compare(label, g, r, n, atol, 0);
	} else {
		fprintf(stderr, "%s: cannot read the result: %s\n", label, rf_error_message());
		rf_test_failures++;
	}
	free(g);
	free(r);
	return ok;
}

char *rf_temp_dir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir = malloc(4096);
	snprintf(dir, 4096, "%s/refract-test-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	return dir;
}

void rf_temp_dir_remove(char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
	free(dir);
}
