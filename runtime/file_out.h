/*
** file_out.h: writing a file so that its final name only ever holds a complete file:
** the bytes go to a temporary file next to it, which is flushed to disk and then renamed
** over `path`. Shared by the safetensors, .npy and PNG writers. Runtime layer (L2).
**
** The temporary file is `path.tmp`, created with O_EXCL|O_NOFOLLOW: it is always a new
** file of ours, so a link planted at that name cannot redirect the write. When something
** is already there (a file left by a writer that was killed, another writer's file, a
** link), the name is `path.<16 random hex digits>.tmp` instead, never anything existing.
** A killed writer leaves its temporary file behind (never read; safe to delete).
**
** Every failure is RF_ERR_IO with a message naming `path` and the reason, and leaves
** no temporary file behind; a previous file at `path` is untouched until the rename.
*/
#ifndef RF_RUNTIME_FILE_OUT_H
#define RF_RUNTIME_FILE_OUT_H

#include "rf_base.h"
#include "tensor.h"

struct rf_file_out {
	const char *path;  /* the final name (borrowed) */
	char *tmp;         /* the temporary file's name: path + ".tmp" or ".<hex>.tmp" */
	int fd;            /* -1 when closed */
};

/* Creates the temporary file (see above). On failure `f` needs no abort. */
enum rf_status rf_file_out_open(struct rf_file_out *f, const char *path);
/* Appends `n` bytes (retrying short writes). On failure the caller still calls abort. */
enum rf_status rf_file_out_write(struct rf_file_out *f, const void *data, uint64_t n);
/* fsync, close, rename onto the final name, then fsync the directory so the new name
** survives a crash too. Aborts by itself on failure. */
enum rf_status rf_file_out_commit(struct rf_file_out *f);
/* Closes and removes `path.tmp`. Safe to call twice and after commit. */
void rf_file_out_abort(struct rf_file_out *f);

/* For files that a library writes by itself (libzip): makes the complete file `tmp` the
** file at `path` as commit does (fsync, rename, directory fsync). Removes `tmp` on
** failure. */
enum rf_status rf_file_out_publish(const char *tmp, const char *path);

/* The raw bytes of `t`: a host tensor's own buffer, or a device tensor downloaded into
** `*scratch` (malloc'd, the caller frees it; NULL for host tensors). `path` names the
** file in error messages. */
enum rf_status rf_file_out_tensor_bytes(const rf_tensor *t, const char *path, const void **bytes,
					void **scratch);

/* Fault injection for tests (process-wide; not thread-safe, tests only): once `budget`
** more bytes have been written through rf_file_out_write, the next write stores what is
** left of the budget (a short write) and then fails with errno `err` (ENOSPC, EIO, ...);
** with short_writes, every write() moves at most 7 bytes (which must not change what is
** written). rf_file_out_fault(0, 0, false) turns it off. */
void rf_file_out_fault(int err, uint64_t budget, bool short_writes);

#endif
