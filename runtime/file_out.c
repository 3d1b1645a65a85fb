/*
** file_out.c: crash-safe file writing through a new temporary file next to the target +
** fsync + rename (see file_out.h). Runtime layer (L2).
*/
#include "file_out.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ".<16 hex digits>.tmp" and its NUL. */
#define TEMP_SUFFIX_MAX 22
/* Names tried before giving up (each collision needs a file already at a random name). */
#define TEMP_ATTEMPTS 16

/* Creates `name` for writing only if nothing (not even a dangling link) is there: a link
** planted at the name cannot redirect the write, and two writers never share a file. */
static int create_new(const char *name)
{
	return open(name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
}

/* `path` + ".tmp", or + ".<16 hex digits>.tmp" (random) when `random` is set. */
static void temp_name(char *tmp, const char *path, size_t n, bool random)
{
	memcpy(tmp, path, n);
	if (!random) {
		memcpy(tmp + n, ".tmp", sizeof ".tmp");
		return;
	}
	uint64_t r;
	if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r) {
		/* No entropy source: pid, clock and address still differ between writers. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		r = ((uint64_t)getpid() << 40) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
		    (uint64_t)(uintptr_t)tmp;
	}
	snprintf(tmp + n, TEMP_SUFFIX_MAX, ".%016llx.tmp", (unsigned long long)r);
}

enum rf_status rf_file_out_open(struct rf_file_out *f, const char *path)
{
	f->path = path;
	f->fd = -1;
	size_t n = strlen(path);
	f->tmp = malloc(n + TEMP_SUFFIX_MAX);
	if (!f->tmp)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a file name", path);
	/* `path.tmp` first; if anything is there (a file left by a killed writer, another
	** writer's, a planted link), a fresh random name next to it instead. */
	int err = 0;
	for (int attempt = 0; attempt < TEMP_ATTEMPTS && f->fd < 0; attempt++) {
		temp_name(f->tmp, path, n, attempt > 0);
		f->fd = create_new(f->tmp);
		err = errno;
		if (f->fd < 0 && err != EEXIST)
			break;
	}
	if (f->fd < 0) {
		enum rf_status s = rf_error(RF_ERR_IO, "%s: cannot create %s: %s", path, f->tmp,
					    strerror(err));
		free(f->tmp);
		f->tmp = NULL;
		return s;
	}
	return RF_OK;
}

/* {===== fault injection (rf_file_out_fault) */

static struct {
	int err;             /* 0: no failure */
	uint64_t budget;     /* bytes still written before it */
	bool short_writes;
} fault;

void rf_file_out_fault(int err, uint64_t budget, bool short_writes)
{
	fault.err = err;
	fault.budget = budget;
	fault.short_writes = short_writes;
}

/* write(), or what a full or failing disk would do under the test hook. */
static ssize_t write_some(int fd, const void *p, size_t n)
{
	if (fault.short_writes && n > 7)
		n = 7;
	if (fault.err) {
		if (fault.budget == 0) {
			errno = fault.err;
			return -1;
		}
		if (n > fault.budget)
			n = (size_t)fault.budget;
		fault.budget -= n;
	}
	return write(fd, p, n);
}

/* }===== */

enum rf_status rf_file_out_write(struct rf_file_out *f, const void *data, uint64_t n)
{
	const char *p = data;
	while (n > 0) {
		/* Linux moves at most about 2 GiB per write(); ask for less and loop. */
		size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t w = write_some(f->fd, p, chunk);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return rf_error(RF_ERR_IO, "%s: writing %s: %s", f->path, f->tmp,
					w < 0 ? strerror(errno) : "no progress");
		p += w;
		n -= (uint64_t)w;
	}
	return RF_OK;
}

void rf_file_out_abort(struct rf_file_out *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	if (f->tmp)
		unlink(f->tmp);
	free(f->tmp);
	f->tmp = NULL;
}

/* Makes the rename itself durable. Directories that cannot be opened for reading (a
** write-only directory) or synced (some network filesystems answer EINVAL) still hold
** the renamed file: only durability across a power cut is not guaranteed there. */
static enum rf_status sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating a directory name", path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	enum rf_status s = RF_OK;
	if (fd >= 0) {
		if (fsync(fd) != 0 && errno != EINVAL)
			s = rf_error(RF_ERR_IO, "%s: written, but syncing directory %s failed: %s", path,
				     dir, strerror(errno));
		close(fd);
	}
	free(dir);
	return s;
}

enum rf_status rf_file_out_commit(struct rf_file_out *f)
{
	enum rf_status s = RF_OK;
	if (fsync(f->fd) != 0)
		s = rf_error(RF_ERR_IO, "%s: flushing %s: %s", f->path, f->tmp, strerror(errno));
	/* close() reports delayed write errors on some filesystems (NFS), so check it too. */
	int fd = f->fd;
	f->fd = -1;
	if (close(fd) != 0 && s == RF_OK)
		s = rf_error(RF_ERR_IO, "%s: closing %s: %s", f->path, f->tmp, strerror(errno));
	if (s == RF_OK && rename(f->tmp, f->path) != 0)
		s = rf_error(RF_ERR_IO, "%s: renaming %s onto it: %s", f->path, f->tmp, strerror(errno));
	if (s != RF_OK) {
		rf_file_out_abort(f);
		return s;
	}
	free(f->tmp);
	f->tmp = NULL;
	return sync_dir(f->path);
}

enum rf_status rf_file_out_publish(const char *tmp, const char *path)
{
	enum rf_status s = RF_OK;
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		s = rf_error(RF_ERR_IO, "%s: flushing %s: %s", path, tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (s == RF_OK && rename(tmp, path) != 0)
		s = rf_error(RF_ERR_IO, "%s: renaming %s onto it: %s", path, tmp, strerror(errno));
	if (s != RF_OK) {
		unlink(tmp);
		return s;
	}
	return sync_dir(path);
}

enum rf_status rf_file_out_tensor_bytes(const rf_tensor *t, const char *path, const void **bytes,
					void **scratch)
{
	*scratch = NULL;
	if (!rf_tensor_on_device(t)) {
		*bytes = t->host;
		return RF_OK;
	}
	uint64_t n = rf_tensor_nbytes(t);
	void *buf = malloc(n ? n : 1);
	if (!buf)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating %llu bytes to download a tensor", path,
				(unsigned long long)n);
	enum rf_status s = rf_tensor_download(t, buf, n);
	if (s != RF_OK) {
		free(buf);
		return rf_error_wrap(s, "%s: downloading a tensor", path);
	}
	*bytes = buf;
	*scratch = buf;
	return RF_OK;
}
