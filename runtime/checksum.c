/*
** checksum.c: SHA-256 of a file through OpenSSL's libcrypto (see checksum.h).
** Runtime layer (L2).
*/
#include "checksum.h"
#include "file_in.h"
#include "status.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Large enough that the syscalls cost nothing next to hashing, small enough for the stack. */
#define BLOCK (64 * 1024)

/* Feeds every byte of the open file `fd` to `md`. */
static enum rf_status hash_stream(int fd, const char *path, EVP_MD_CTX *md)
{
	unsigned char block[BLOCK];
	for (;;) {
		ssize_t n = read(fd, block, sizeof block);
		if (n == 0)
			return RF_OK;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rf_error(RF_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
		}
		if (EVP_DigestUpdate(md, block, (size_t)n) != 1)
			return rf_error(RF_ERR_IO, "%s: SHA-256 update failed", path);
	}
}

static void to_hex(const unsigned char *digest, unsigned len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = digits[digest[i] >> 4];
		out[2 * i + 1] = digits[digest[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Opens `path` for reading if it is a regular file: a folder or a device is an error
** here rather than a hash of nothing (or a read that never ends). */
static enum rf_status open_regular(const char *path, int *fd)
{
	uint64_t size;
	return rf_file_open_read(path, fd, &size);   /* a FIFO is refused, not waited on */
}

enum rf_status rf_file_sha256(const char *path, char out_hex[RF_SHA256_HEX_LEN])
{
	out_hex[0] = '\0';
	int fd;
	enum rf_status s = open_regular(path, &fd);
	if (s != RF_OK)
		return s;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md) {
		close(fd);
		return rf_error(RF_ERR_OOM_HOST, "%s: cannot allocate a SHA-256 context", path);
	}
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		s = rf_error(RF_ERR_IO, "%s: SHA-256 initialisation failed", path);
	if (s == RF_OK)
		s = hash_stream(fd, path, md);
	if (s == RF_OK && EVP_DigestFinal_ex(md, digest, &len) != 1)
		s = rf_error(RF_ERR_IO, "%s: SHA-256 finalisation failed", path);
	EVP_MD_CTX_free(md);
	close(fd);
	if (s == RF_OK)
		to_hex(digest, len, out_hex);
	return s;
}
