/*
** filetest.c: scratch files for the file-format tests (see filetest.h).
*/
#include "filetest.h"
#include "golden.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *tmpdir;

/* Paths live until cleanup, so tests can hold as many as they like. */
struct saved {
	struct saved *next;
	char path[];
};
static struct saved *saved;

void rf_ft_setup(void)
{
	tmpdir = rf_temp_dir();
}

void rf_ft_cleanup(void)
{
	if (tmpdir)
		rf_temp_dir_remove(tmpdir);
	tmpdir = NULL;
	while (saved) {
		struct saved *next = saved->next;
		free(saved);
		saved = next;
	}
}

static const char *save_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	struct saved *s = malloc(sizeof *s + n);
	if (!s) {
		perror("saving a path");
		exit(1);
	}
	snprintf(s->path, n, "%s/%s", dir, name);
	s->next = saved;
	saved = s;
	return s->path;
}

const char *rf_ft_tmp(const char *name)
{
	return save_path(tmpdir, name);
}

const char *rf_ft_data(const char *rel)
{
	const char *root = getenv("RF_TEST_DATA");
	if (!root) {
		fprintf(stderr, "SKIP: RF_TEST_DATA is not set (run under ctest)\n");
		rf_ft_cleanup();
		exit(77);
	}
	return save_path(root, rel);
}

void rf_ft_write(const char *path, const void *bytes, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	if (!f)
		return;
	CHECK(fwrite(bytes, 1, n, f) == n);
	CHECK(fclose(f) == 0);
}

uint8_t *rf_ft_read(const char *path, size_t *n)
{
	*n = 0;
	FILE *f = fopen(path, "rb");
	CHECK(f != NULL);
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
	CHECK(buf && fread(buf, 1, (size_t)size, f) == (size_t)size);
	fclose(f);
	*n = (size_t)size;
	return buf;
}

int rf_ft_same_file(const char *a, const char *b)
{
	size_t na, nb;
	uint8_t *x = rf_ft_read(a, &na), *y = rf_ft_read(b, &nb);
	int same = x && y && na == nb && memcmp(x, y, na) == 0;
	if (!same && x && y) {
		size_t i = 0;
		while (i < na && i < nb && x[i] == y[i])
			i++;
		fprintf(stderr, "%s (%zu bytes) and %s (%zu bytes) differ from byte %zu\n", a, na, b, nb, i);
	}
	free(x);
	free(y);
	return same;
}

int rf_ft_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

void rf_ft_check_fails(enum rf_status got, enum rf_status want, const char *needle, const char *path,
		       const char *expr, const char *file, int line)
{
	rf_check_fails(got, want, needle, expr, file, line);
	if (got != RF_OK && !strstr(rf_error_message(), path)) {
		fprintf(stderr, "%s:%d: %s: message \"%s\" does not name %s\n", file, line, expr,
			rf_error_message(), path);
		rf_test_failures++;
	}
}
