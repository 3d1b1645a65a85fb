/*
** test_file_out.c: the temporary file behind every written output (file_out.h). A link
** planted at `OUT.tmp` must not redirect a write (the link and what it points to stay as
** they are, the output is whole), a file left there by a killed writer must not block
** the next write, and two writers open at once never share a temporary file. A disk
** that fills up (ENOSPC) or fails (EIO) after any number of bytes gives a clear error
** naming the file and the cause, with no target and no temporary file left; short
** writes change nothing that is written.
*/
#include "harness.h"
#include "filetest.h"
#include "file_out.h"
#include "npy.h"
#include "safetensors.h"
#include "safetensors_write.h"
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char victim_bytes[] = "precious data that must not change\n";

static rf_tensor *small_tensor(void)
{
	rf_tensor *t = NULL;
	float v[3] = { 1.0f, 2.0f, 3.0f };
	struct rf_shape shape = rf_shape_of(1, (int64_t)3);
	CHECK_OK(rf_tensor_from_host_data(RF_F32, &shape, v, &t));
	return t;
}

static int is_link(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

/* The victim file still holds exactly what it held. */
static void check_victim(const char *victim)
{
	size_t n = 0;
	uint8_t *got = rf_ft_read(victim, &n);
	CHECK(got && n == sizeof victim_bytes - 1 && !memcmp(got, victim_bytes, n));
	free(got);
}

/* How many entries of the scratch folder start with `prefix` and end in ".tmp". */
static int temporaries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	int count = 0;
	struct dirent *e;
	size_t np = strlen(prefix);
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (!strncmp(e->d_name, prefix, np) && n > 4 && !strcmp(e->d_name + n - 4, ".tmp"))
			count++;
	}
	if (d)
		closedir(d);
	return count;
}

static char *dir_of(const char *path)
{
	char *dir = strdup(path);
	*strrchr(dir, '/') = '\0';
	return dir;
}

/* A link to an existing file at OUT.tmp: the safetensors and .npy writers write OUT,
** leave the link in place and the file it names untouched. */
static void test_planted_link(void)
{
	rf_tensor *t = small_tensor();
	const char *victim = rf_ft_tmp("victim.txt");
	rf_ft_write(victim, victim_bytes, sizeof victim_bytes - 1);
	const char *outs[] = { rf_ft_tmp("planted.safetensors"), rf_ft_tmp("planted.npy") };
	for (int i = 0; i < 2; i++) {
		char tmp[1200];
		snprintf(tmp, sizeof tmp, "%s.tmp", outs[i]);
		CHECK(symlink(victim, tmp) == 0);
		struct rf_st_item item = { "x", t };
		if (i == 0)
			CHECK_OK(rf_safetensors_write(outs[i], &item, 1, NULL));
		else
			CHECK_OK(rf_npy_write(outs[i], t));
		check_victim(victim);
		CHECK(is_link(tmp));
		CHECK(!is_link(outs[i]));
		rf_tensor *back = NULL;
		if (i == 0) {
			rf_safetensors *st = NULL;
			CHECK_OK(rf_safetensors_open(outs[i], &st));
			const struct rf_st_entry *e = st ? rf_safetensors_find(st, "x") : NULL;
			CHECK(e && e->nbytes == 12 && !memcmp(e->data, t->host, 12));
			rf_safetensors_close(st);
		} else {
			CHECK_OK(rf_npy_read(outs[i], &back));
			CHECK(back && !memcmp(back->host, t->host, 12));
			rf_tensor_destroy(back);
		}
		unlink(tmp);
	}
	rf_tensor_destroy(t);
}

/* A dangling link at OUT.tmp must not create the file it names. */
static void test_dangling_link(void)
{
	rf_tensor *t = small_tensor();
	const char *out = rf_ft_tmp("dangling.npy");
	const char *target = rf_ft_tmp("created-through-link.npy");
	char tmp[1200];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	CHECK(symlink(target, tmp) == 0);
	CHECK_OK(rf_npy_write(out, t));
	CHECK(!rf_ft_exists(target));
	CHECK(is_link(tmp));
	unlink(tmp);
	rf_tensor_destroy(t);
}

/* A whole file left at OUT.tmp (a writer killed before its rename) does not block the
** next write, which neither reads nor changes it and leaves no temporary of its own. */
static void test_leftover(void)
{
	rf_tensor *t = small_tensor();
	const char *out = rf_ft_tmp("leftover.npy");
	char tmp[1200];
	snprintf(tmp, sizeof tmp, "%s.tmp", out);
	rf_ft_write(tmp, victim_bytes, sizeof victim_bytes - 1);
	CHECK_OK(rf_npy_write(out, t));
	check_victim(tmp);
	char *dir = dir_of(out);
	CHECK(temporaries(dir, "leftover.npy") == 1);
	free(dir);
	unlink(tmp);
	rf_tensor_destroy(t);
}

/* Two writers of one target open at the same time get two temporary files; each
** commit renames its own whole file; aborting removes only the aborted one's. */
static void test_two_writers(void)
{
	const char *out = rf_ft_tmp("two.bin");
	struct rf_file_out a, b;
	CHECK_OK(rf_file_out_open(&a, out));
	CHECK_OK(rf_file_out_open(&b, out));
	CHECK(strcmp(a.tmp, b.tmp) != 0);
	CHECK_OK(rf_file_out_write(&a, "first", 5));
	CHECK_OK(rf_file_out_write(&b, "second", 6));
	CHECK_OK(rf_file_out_commit(&b));
	size_t n = 0;
	uint8_t *got = rf_ft_read(out, &n);
	CHECK(got && n == 6 && !memcmp(got, "second", 6));
	free(got);
	rf_file_out_abort(&a);
	got = rf_ft_read(out, &n);
	CHECK(got && n == 6 && !memcmp(got, "second", 6));
	free(got);
	char *dir = dir_of(out);
	CHECK(temporaries(dir, "two.bin") == 0);
	free(dir);
}

/* The two writers every output goes through, as one signature. */
static enum rf_status write_npy(const char *path, const rf_tensor *t)
{
	return rf_npy_write(path, t);
}

static enum rf_status write_st(const char *path, const rf_tensor *t)
{
	const struct rf_st_item item = { "x", t };
	const char *meta[] = { "format", "pt", NULL };
	return rf_safetensors_write(path, &item, 1, meta);
}

/* Every failure point of a writer: fails after 0, 1, ... bytes up to the file's size. */
static void sweep_faults(enum rf_status (*writer)(const char *, const rf_tensor *),
			 const char *name, int err)
{
	rf_tensor *t = small_tensor();
	const char *ref = rf_ft_tmp(name);
	CHECK_OK(writer(ref, t));
	size_t size = 0;
	free(rf_ft_read(ref, &size));
	char out_name[128];
	snprintf(out_name, sizeof out_name, "fault-%s", name);
	const char *out = rf_ft_tmp(out_name);
	char *dir = dir_of(out);
	int failures = 0;
	for (uint64_t budget = 0; budget < size; budget++) {
		rf_file_out_fault(err, budget, budget % 2 == 1);
		FT_CHECK_FAILS(writer(out, t), RF_ERR_IO, strerror(err), out);
		rf_file_out_fault(0, 0, false);
		if (rf_ft_exists(out) || temporaries(dir, out_name) != 0) {
			fprintf(stderr, "%s: a failure after %llu bytes left a file behind\n", out,
				(unsigned long long)budget);
			failures++;
		}
	}
	CHECK(failures == 0 && size > 0);
	/* The budget is enough: the write succeeds, byte-identical to the reference. */
	rf_file_out_fault(err, size, false);
	CHECK_OK(writer(out, t));
	rf_file_out_fault(0, 0, false);
	CHECK(rf_ft_same_file(out, ref));
	unlink(out);
	free(dir);
	rf_tensor_destroy(t);
}

/* Writes of at most 7 bytes at a time (a pipe, a signal) give the same file. */
static void test_short_writes(void)
{
	rf_tensor *t = small_tensor();
	const char *ref = rf_ft_tmp("short-ref.safetensors");
	const char *out = rf_ft_tmp("short.safetensors");
	CHECK_OK(write_st(ref, t));
	rf_file_out_fault(0, 0, true);
	CHECK_OK(write_st(out, t));
	rf_file_out_fault(0, 0, false);
	CHECK(rf_ft_same_file(out, ref));
	rf_tensor_destroy(t);
}

int main(void)
{
	rf_ft_setup();
	test_planted_link();
	test_dangling_link();
	test_leftover();
	test_two_writers();
	sweep_faults(write_npy, "enospc.npy", ENOSPC);
	sweep_faults(write_npy, "eio.npy", EIO);
	sweep_faults(write_st, "enospc.safetensors", ENOSPC);
	sweep_faults(write_st, "eio.safetensors", EIO);
	test_short_writes();
	rf_ft_cleanup();
	return rf_test_finish();
}
