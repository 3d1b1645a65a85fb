/*
** npz.h: NumPy .npz archives: a zip file of .npy members ("name.npy"), what np.savez
** writes and np.load reads. Written uncompressed, as np.savez does (np.load reads it
** without any other package); read stored or deflated (np.savez_compressed). Metadata
** (string pairs, as safetensors files keep them) travels as a JSON object in a member
** named "__metadata__.json", which np.load lists and returns as bytes. Zip handling is
** Debian's libzip. Runtime layer (L2).
*/
#ifndef RF_RUNTIME_NPZ_H
#define RF_RUNTIME_NPZ_H

#include "safetensors.h"
#include "safetensors_write.h"
#include "tensor.h"

/* The member that holds the metadata. */
#define RF_NPZ_METADATA "__metadata__.json"

/* Writes tensors as members "<name>.npy" (each exactly as rf_npy_write would write the
** file; bf16 widened to <f4) and, if `metadata` (NULL-terminated key, value, ... list) is
** not NULL, the metadata member. The archive is built at `path.tmp` and renamed over
** `path` once complete and flushed. RF_ERR_INVALID (nothing written) for a NULL or empty
** name, a name used twice, a metadata key without a value; RF_ERR_IO when the file
** cannot be written. Members carry a fixed date, so equal tensors give equal files. */
enum rf_status rf_npz_write(const char *path, const struct rf_st_item *items, uint32_t n,
			    const char *const *metadata);

typedef struct rf_npz rf_npz;

/* Opens an archive and reads its member list and metadata. RF_ERR_IO if it cannot be
** opened; RF_ERR_FORMAT if it is not a zip file or the metadata member is not a JSON
** object of strings. Members that are not .npy files (other than the metadata) are
** ignored. */
enum rf_status rf_npz_open(const char *path, rf_npz **out);
void rf_npz_close(rf_npz *z);
/* The .npy members, in archive order, by name without ".npy". */
uint32_t rf_npz_count(const rf_npz *z);
const char *rf_npz_name(const rf_npz *z, uint32_t i);
/* Whether a member "<name>.npy" exists. */
bool rf_npz_has(const rf_npz *z, const char *name);
/* Reads member "<name>.npy" into a new host tensor (checks as rf_npy_read; messages
** name "path:name"). RF_ERR_INVALID if there is no such member. */
enum rf_status rf_npz_read(rf_npz *z, const char *name, rf_tensor **out);
/* Metadata key i (NULL past the end) and the value of a key (NULL if absent). */
const char *rf_npz_metadata_key(const rf_npz *z, uint32_t i);
const char *rf_npz_metadata(const rf_npz *z, const char *key);

#endif
