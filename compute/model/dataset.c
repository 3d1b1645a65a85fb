/*
** dataset.c: listing dataset images and preprocessing batches on worker threads.
** Compute layer (L5; host only).
*/
#include "dataset.h"
#include "file_in.h"
#include "status.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct rf_dataset {
	char **paths;
	size_t count, cap;
};

/* {===== listing */

static enum rf_status add_path(rf_dataset *ds, const char *path)
{
	if (ds->count == ds->cap) {
		size_t cap = ds->cap ? ds->cap * 2 : 256;
		char **grown = realloc(ds->paths, cap * sizeof *grown);
		if (!grown)
			return rf_error(RF_ERR_OOM_HOST, "listing images");
		ds->paths = grown;
		ds->cap = cap;
	}
	if (!(ds->paths[ds->count] = strdup(path)))
		return rf_error(RF_ERR_OOM_HOST, "listing images");
	ds->count++;
	return RF_OK;
}

static bool is_image_name(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return false;
	char ext[8];
	size_t n = strlen(dot + 1);
	if (n >= sizeof ext)
		return false;
	for (size_t i = 0; i <= n; i++)
		ext[i] = (char)tolower((unsigned char)dot[1 + i]);
	return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

static enum rf_status walk(rf_dataset *ds, const char *dir, int depth)
{
	if (depth > 64)
		return rf_error(RF_ERR_INVALID, "%s: folders nested too deeply (a link loop?)", dir);
	DIR *d = opendir(dir);
	if (!d)
		return rf_error(RF_ERR_IO, "%s: cannot open the folder: %s", dir, strerror(errno));
	enum rf_status s = RF_OK;
	struct dirent *e;
	for (;;) {
		errno = 0;
		if (s != RF_OK || !(e = readdir(d)))
			break;
		if (e->d_name[0] == '.')
			continue;
		size_t len = strlen(dir) + strlen(e->d_name) + 2;
		char *path = malloc(len);
		if (!path) {
			s = rf_error(RF_ERR_OOM_HOST, "listing images");
			break;
		}
		snprintf(path, len, "%s/%s", dir, e->d_name);
		/* Whatever is named as an image and is not a folder is listed, a FIFO, a device
		** or a link to nothing included: loading it names the problem (or --on-error skip
		** records it). Left out, it changed the dataset without a word. */
		struct stat st;
		if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
			s = walk(ds, path, depth + 1);
		else if (is_image_name(e->d_name))
			s = add_path(ds, path);
		free(path);
	}
	if (s == RF_OK && errno != 0)
		s = rf_error(RF_ERR_IO, "%s: cannot list the folder: %s", dir, strerror(errno));
	closedir(d);
	return s;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void rf_dataset_destroy(rf_dataset *ds)
{
	if (!ds)
		return;
	for (size_t i = 0; i < ds->count; i++)
		free(ds->paths[i]);
	free(ds->paths);
	free(ds);
}

static enum rf_status finish_listing(rf_dataset *ds, const char *what, rf_dataset **out)
{
	if (ds->count == 0) {
		rf_dataset_destroy(ds);
		return rf_error(RF_ERR_INVALID, "%s: no images (.png, .jpg, .jpeg) found", what);
	}
	*out = ds;
	return RF_OK;
}

enum rf_status rf_dataset_from_dir(const char *dir, rf_dataset **out)
{
	*out = NULL;
	rf_dataset *ds = calloc(1, sizeof *ds);
	if (!ds)
		return rf_error(RF_ERR_OOM_HOST, "listing images");
	enum rf_status s = walk(ds, dir, 0);
	if (s != RF_OK) {
		rf_dataset_destroy(ds);
		return s;
	}
	if (ds->count > 1)   /* an empty folder has no array at all: qsort(NULL, ...) is undefined */
		qsort(ds->paths, ds->count, sizeof *ds->paths, by_path);
	return finish_listing(ds, dir, out);
}

/* Adds the list's line; a relative path is relative to the list's folder, the first
** `base_len` characters of `base`. */
static enum rf_status add_listed(rf_dataset *ds, const char *base, size_t base_len, const char *line)
{
	if (line[0] == '/')
		return add_path(ds, line);
	size_t n = strlen(line);
	char *path = malloc(base_len + n + 2);
	if (!path)
		return rf_error(RF_ERR_OOM_HOST, "listing images");
	memcpy(path, base, base_len);
	path[base_len] = '/';
	memcpy(path + base_len + 1, line, n + 1);
	enum rf_status s = add_path(ds, path);
	free(path);
	return s;
}

enum rf_status rf_dataset_from_list(const char *list, rf_dataset **out)
{
	*out = NULL;
	/* A regular file of at most 1 GiB (a FIFO would hang, /dev/zero never end). */
	char *text;
	size_t len;
	enum rf_status s = rf_file_read_all(list, 1ull << 30, "a list of images", &text, &len);
	if (s != RF_OK)
		return rf_error_wrap(s, "the list of images");
	if (memchr(text, '\0', len)) {
		free(text);
		return rf_error(RF_ERR_FORMAT, "%s: holds a NUL byte: not a text file", list);
	}
	rf_dataset *ds = calloc(1, sizeof *ds);
	const char *slash = strrchr(list, '/');
	const char *base = slash ? list : ".";   /* paths as long as they are */
	size_t base_len = slash ? (size_t)(slash - list) : 1;
	s = ds ? RF_OK : rf_error(RF_ERR_OOM_HOST, "listing images");
	for (char *line = text, *next; s == RF_OK && line < text + len; line = next) {
		char *nl = memchr(line, '\n', (size_t)(text + len - line));
		next = nl ? nl + 1 : text + len;
		size_t n = (size_t)((nl ? nl : text + len) - line);
		while (n && (line[n - 1] == '\r' || line[n - 1] == ' '))
			n--;
		line[n] = '\0';
		if (n && line[0] != '#')
			s = add_listed(ds, base, base_len, line);
	}
	free(text);
	if (s != RF_OK) {
		rf_dataset_destroy(ds);
		return s;
	}
	return finish_listing(ds, list, out);
}

enum rf_status rf_dataset_from_paths(const char *const *paths, size_t count, rf_dataset **out)
{
	*out = NULL;
	rf_dataset *ds = calloc(1, sizeof *ds);
	enum rf_status s = ds ? RF_OK : rf_error(RF_ERR_OOM_HOST, "listing images");
	for (size_t i = 0; i < count && s == RF_OK; i++)
		s = add_path(ds, paths[i]);
	if (s != RF_OK) {
		rf_dataset_destroy(ds);
		return s;
	}
	return finish_listing(ds, "the image list", out);
}

size_t rf_dataset_count(const rf_dataset *ds)
{
	return ds->count;
}

const char *rf_dataset_path(const rf_dataset *ds, size_t i)
{
	return i < ds->count ? ds->paths[i] : NULL;
}

/* }===== */

/* {===== loader */

/* A batch being filled: images are claimed one at a time by workers. */
struct slot {
	float *pixels;
	size_t first;             /* dataset index of image 0 */
	int count;
	int claimed, done;        /* images handed out / finished */
	enum rf_status status;
	char message[8192];       /* room for a long path and the reason after it */
	bool used;                /* assigned to a batch */
};

struct rf_loader {
	const rf_dataset *ds;
	struct rf_preprocess pre;
	int batch, depth, nworkers;
	size_t next_first, end;   /* next batch to assign */
	size_t image_floats;
	struct slot *slots;       /* ring of `depth` */
	int head;                 /* slot the consumer reads next */
	int returned;             /* slot handed to the consumer last (-1 none) */
	bool stop;
	pthread_mutex_t lock;
	pthread_cond_t work, ready;
	pthread_t *threads;
};

/* Assigns the next batches to free slots (under the lock). */
static void assign(rf_loader *ld)
{
	for (int k = 0; k < ld->depth; k++) {
		struct slot *s = &ld->slots[(ld->head + k) % ld->depth];
		if (s->used || ld->next_first >= ld->end)
			continue;
		if ((ld->head + k) % ld->depth == ld->returned)
			continue;
		s->used = true;
		s->first = ld->next_first;
		s->count = (int)RF_MIN((size_t)ld->batch, ld->end - ld->next_first);
		s->claimed = s->done = 0;
		s->status = RF_OK;
		ld->next_first += (size_t)s->count;
	}
}

/* The oldest assigned slot with an unclaimed image, in order (under the lock). */
static struct slot *claimable(rf_loader *ld, int *image)
{
	for (int k = 0; k < ld->depth; k++) {
		struct slot *s = &ld->slots[(ld->head + k) % ld->depth];
		if (s->used && s->claimed < s->count && (ld->head + k) % ld->depth != ld->returned) {
			*image = s->claimed++;
			return s;
		}
	}
	return NULL;
}

static void *worker(void *arg)
{
	rf_loader *ld = arg;
	pthread_mutex_lock(&ld->lock);
	for (;;) {
		int image;
		struct slot *s;
		while (!ld->stop && !(s = claimable(ld, &image)))
			pthread_cond_wait(&ld->work, &ld->lock);
		if (ld->stop)
			break;
		size_t index = s->first + (size_t)image;
		float *dst = s->pixels + (size_t)image * ld->image_floats;
		pthread_mutex_unlock(&ld->lock);
		enum rf_status st = rf_image_load_preprocessed(rf_dataset_path(ld->ds, index), &ld->pre, dst);
		pthread_mutex_lock(&ld->lock);
		if (st != RF_OK && s->status == RF_OK) {
			s->status = st;
			snprintf(s->message, sizeof s->message, "%s", rf_error_message());
		}
		if (++s->done == s->count)
			pthread_cond_broadcast(&ld->ready);
	}
	pthread_mutex_unlock(&ld->lock);
	return NULL;
}

static int default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)RF_MIN(n, 16) : 1;
}

enum rf_status rf_loader_create(const rf_dataset *ds, const struct rf_preprocess *pre, int batch,
				int workers, int depth, size_t first, size_t end, rf_loader **out)
{
	*out = NULL;
	if (batch < 1 || depth < 1 || pre->size < 1)
		return rf_error(RF_ERR_INVALID, "loader: batch, depth and size must be positive");
	rf_loader *ld = calloc(1, sizeof *ld);
	if (!ld)
		return rf_error(RF_ERR_OOM_HOST, "creating a loader");
	ld->ds = ds;
	ld->pre = *pre;
	ld->batch = batch;
	ld->depth = depth + 1;           /* one more: the slot the consumer holds */
	ld->end = RF_MIN(end, rf_dataset_count(ds));
	ld->next_first = RF_MIN(first, ld->end);
	ld->image_floats = 3 * (size_t)pre->size * (size_t)pre->size;
	ld->returned = -1;
	pthread_mutex_init(&ld->lock, NULL);
	pthread_cond_init(&ld->work, NULL);
	pthread_cond_init(&ld->ready, NULL);
	ld->slots = calloc((size_t)ld->depth, sizeof *ld->slots);
	enum rf_status s = ld->slots ? RF_OK : rf_error(RF_ERR_OOM_HOST, "creating a loader");
	for (int i = 0; i < ld->depth && s == RF_OK; i++)
		if (!(ld->slots[i].pixels = malloc((size_t)batch * ld->image_floats * sizeof(float))))
			s = rf_error(RF_ERR_OOM_HOST, "allocating %d batch buffers", ld->depth);
	int n = workers > 0 ? workers : default_workers();
	ld->threads = calloc((size_t)n, sizeof *ld->threads);
	if (s == RF_OK && !ld->threads)
		s = rf_error(RF_ERR_OOM_HOST, "creating a loader");
	if (s == RF_OK) {
		pthread_mutex_lock(&ld->lock);
		assign(ld);
		pthread_mutex_unlock(&ld->lock);
	}
	for (int i = 0; i < n && s == RF_OK; i++) {
		if (pthread_create(&ld->threads[i], NULL, worker, ld) != 0)
			s = rf_error(RF_ERR_OOM_HOST, "starting a decoding thread");
		else
			ld->nworkers++;
	}
	if (s != RF_OK) {
		rf_loader_destroy(ld);
		return s;
	}
	*out = ld;
	return RF_OK;
}

enum rf_status rf_loader_next(rf_loader *ld, const float **pixels, size_t *index, int *count)
{
	*pixels = NULL;
	*count = 0;
	*index = ld->end;
	pthread_mutex_lock(&ld->lock);
	/* Give back the slot returned last time, and let workers fill it again. */
	if (ld->returned >= 0) {
		ld->slots[ld->returned].used = false;
		ld->head = (ld->returned + 1) % ld->depth;
		ld->returned = -1;
	}
	assign(ld);
	pthread_cond_broadcast(&ld->work);
	struct slot *s = &ld->slots[ld->head];
	if (!s->used) {
		pthread_mutex_unlock(&ld->lock);
		return RF_OK;   /* the end */
	}
	while (s->done < s->count)
		pthread_cond_wait(&ld->ready, &ld->lock);
	ld->returned = ld->head;
	enum rf_status st = s->status;
	char message[sizeof s->message];
	snprintf(message, sizeof message, "%s", s->message);
	pthread_mutex_unlock(&ld->lock);
	if (st != RF_OK)
		return rf_error(st, "%s", message);
	*pixels = s->pixels;
	*index = s->first;
	*count = s->count;
	return RF_OK;
}

void rf_loader_destroy(rf_loader *ld)
{
	if (!ld)
		return;
	pthread_mutex_lock(&ld->lock);
	ld->stop = true;
	pthread_cond_broadcast(&ld->work);
	pthread_mutex_unlock(&ld->lock);
	for (int i = 0; i < ld->nworkers; i++)
		pthread_join(ld->threads[i], NULL);
	for (int i = 0; i < ld->depth && ld->slots; i++)
		free(ld->slots[i].pixels);
	free(ld->slots);
	free(ld->threads);
	pthread_mutex_destroy(&ld->lock);
	pthread_cond_destroy(&ld->work);
	pthread_cond_destroy(&ld->ready);
	free(ld);
}

/* }===== */
