/* fuzz_util.c: the scratch folder and file helpers of fuzz_util.h. */
#include "fuzz_util.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_dir[512];

void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz property violated: %s\n", what);
	abort();
}

/* Removes the scratch folder's files (one level: the targets make no subfolders). */
static void remove_tmp_dir(void)
{
	DIR *d = opendir(tmp_dir);
	if (!d)
		return;
	struct dirent *e;
	char path[1024];
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof path, "%s/%s", tmp_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(tmp_dir);
}

const char *fuzz_tmp_dir(void)
{
	if (tmp_dir[0])
		return tmp_dir;
	const char *base = getenv("TMPDIR");
	snprintf(tmp_dir, sizeof tmp_dir, "%s/rf-fuzz-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp_dir)) {
		perror("mkdtemp");
		abort();
	}
	atexit(remove_tmp_dir);
	return tmp_dir;
}

const char *fuzz_write(const char *name, const void *data, size_t size)
{
	static char path[1024];
	snprintf(path, sizeof path, "%s/%s", fuzz_tmp_dir(), name);
	FILE *f = fopen(path, "wb");
	if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		perror(path);
		abort();
	}
	return path;
}

void *fuzz_read(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t got;
	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	fclose(f);
	*size = n;
	return buf;
}
