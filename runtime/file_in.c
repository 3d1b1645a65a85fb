/*
** file_in.c: regular files only, opened without blocking, and size-limited whole-file
** reads (file_in.h). Runtime layer (L2).
*/
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *rf_path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, a);
	p[a] = '/';
	memcpy(p + a + 1, name, b + 1);
	return p;
}

static const char *kind_of(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a folder";
	if (S_ISFIFO(mode))
		return "a FIFO (named pipe)";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "a device";
	if (S_ISSOCK(mode))
		return "a socket";
	return "not a regular file";
}

static enum rf_status not_regular(const char *path, mode_t mode)
{
	return rf_error(RF_ERR_IO, "%s: is %s, not a regular file", path, kind_of(mode));
}

enum rf_status rf_file_open_read(const char *path, int *fd, uint64_t *size)
{
	*fd = -1;
	*size = 0;
	int f = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (f < 0)
		return rf_error(RF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	struct stat st;
	if (fstat(f, &st) != 0) {
		int err = errno;
		close(f);
		return rf_error(RF_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
	}
	if (!S_ISREG(st.st_mode)) {
		close(f);
		return not_regular(path, st.st_mode);
	}
	int flags = fcntl(f, F_GETFL);
	if (flags < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		int err = errno;
		close(f);
		return rf_error(RF_ERR_IO, "%s: cannot set blocking reads: %s", path, strerror(err));
	}
	*fd = f;
	*size = (uint64_t)st.st_size;
	return RF_OK;
}

enum rf_status rf_file_check_regular(const char *path)
{
	int fd;
	uint64_t size;
	enum rf_status s = rf_file_open_read(path, &fd, &size);
	if (s == RF_OK)
		close(fd);
	return s;
}

/* Reads until end of file or past `max_bytes` (a file may grow after fstat: the limit
** holds for what is read, not for what fstat said). */
static enum rf_status read_fd(int fd, const char *path, uint64_t max_bytes, const char *what,
			      uint64_t hint, char **data, size_t *len)
{
	size_t cap = (size_t)RF_MIN(hint, max_bytes) + 1, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu bytes to read it", path, cap + 1);
	for (;;) {
		if (n == cap) {
			if (n > max_bytes)
				break;
			size_t grown = cap * 2 > max_bytes + 1 ? (size_t)max_bytes + 1 : cap * 2;
			char *nb = realloc(buf, grown + 1);
			if (!nb) {
				free(buf);
				return rf_error(RF_ERR_OOM_HOST, "%s: allocating %zu bytes to read it", path,
						grown + 1);
			}
			buf = nb;
			cap = grown;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			free(buf);
			return rf_error(RF_ERR_IO, "%s: reading: %s", path, strerror(err));
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max_bytes) {
		free(buf);
		return rf_error(RF_ERR_FORMAT, "%s: more than %llu bytes: over the limit for %s", path,
				(unsigned long long)max_bytes, what);
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return RF_OK;
}

enum rf_status rf_file_read_all(const char *path, uint64_t max_bytes, const char *what,
				char **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd;
	uint64_t size;
	enum rf_status s = rf_file_open_read(path, &fd, &size);
	if (s != RF_OK)
		return s;
	if (size > max_bytes)
		s = rf_error(RF_ERR_FORMAT, "%s: %llu bytes: over the limit of %llu for %s", path,
			     (unsigned long long)size, (unsigned long long)max_bytes, what);
	else
		s = read_fd(fd, path, max_bytes, what, size, data, len);
	close(fd);
	return s;
}
