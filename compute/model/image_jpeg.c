/*
** image_jpeg.c: JPEG decoding through libjpeg-turbo, the library and the settings PIL
** uses, so the pixels are PIL's bit for bit: islow DCT, fancy upsampling, no scaling,
** output in RGB, gray, or CMYK (YCCK converted to CMYK by libjpeg) which PIL reads as
** Adobe-inverted ("CMYK;I": every value v becomes 255 - v, whatever the file's markers
** say) and converts to RGB with its own formula. Compute layer (L5; host only).
**
** The data source behaves as PIL's does: it hands libjpeg the whole file and suspends
** when more is asked for. Needing data past the end while reading the header or any
** scanline is PIL's "image file is truncated" and an error here; after the last
** scanline (looking for the end-of-image marker) it is accepted, as PIL accepts it.
** libjpeg's warnings (corrupt data it decodes anyway) are ignored, as PIL ignores them.
**
** libjpeg reports errors through error_exit, which must not return: it longjmps back into
** jpeg_run(), and everything allocated hangs off one struct jpeg_job that its caller
** frees on every path.
*/
#include "image_internal.h"
#include "status.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/* Progressive scans a file may have: each one is a pass over the whole image, so a small
** file repeating a scan keeps the decoder busy for minutes (200 scans of 8000 x 8000 took
** 42 s here). The budget is 2^31 pixel-scans, so work stays within a few seconds, but
** never fewer than 32 scans (encoders write about ten) nor more than 1000. */
#define SCAN_BUDGET (1ull << 31)
#define MIN_SCANS 32
#define MAX_SCANS 1000

struct jpeg_job {
	const struct rf_image_src *src;
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr err;
	struct jpeg_source_mgr in;
	struct jpeg_progress_mgr progress;
	jmp_buf jmp;
	uint8_t *cmyk_row;       /* one CMYK row, converted to RGB into the image */
	struct rf_image img;
	char msg[JMSG_LENGTH_MAX + 64];
	enum rf_status status;   /* of the error that stopped jpeg_run */
	bool named;              /* msg already names the file */
};

/* {===== libjpeg's callbacks */

static struct jpeg_job *job_of(j_common_ptr cinfo)
{
	return cinfo->client_data;
}

static void on_error_exit(j_common_ptr cinfo)
{
	struct jpeg_job *j = job_of(cinfo);
	char text[JMSG_LENGTH_MAX];
	cinfo->err->format_message(cinfo, text);
	snprintf(j->msg, sizeof j->msg, "corrupt or unsupported JPEG: %s", text);
	j->status = cinfo->err->msg_code == JERR_OUT_OF_MEMORY ? RF_ERR_OOM_HOST : RF_ERR_FORMAT;
	longjmp(j->jmp, 1);
}

static void on_output_message(j_common_ptr cinfo)
{
	(void)cinfo;
}

/* The scan number is known here while libjpeg consumes input, so too many scans stop
** the decode as soon as they start. */
static void on_progress(j_common_ptr cinfo)
{
	j_decompress_ptr d = (j_decompress_ptr)cinfo;
	uint64_t pixels = (uint64_t)d->image_width * d->image_height;
	uint64_t limit = SCAN_BUDGET / (pixels ? pixels : 1);
	limit = limit < MIN_SCANS ? MIN_SCANS : limit > MAX_SCANS ? MAX_SCANS : limit;
	if ((uint64_t)d->input_scan_number > limit) {
		struct jpeg_job *j = job_of(cinfo);
		snprintf(j->msg, sizeof j->msg, "JPEG of %u x %u pixels with more than %u scans (refused: "
			 "each scan is a pass over the whole image)", d->image_width, d->image_height,
			 (unsigned)limit);
		j->status = RF_ERR_UNSUPPORTED;
		longjmp(j->jmp, 1);
	}
}

static void source_noop(j_decompress_ptr cinfo)
{
	(void)cinfo;
}

/* Suspends: the whole file was in the buffer from the start. */
static boolean source_fill(j_decompress_ptr cinfo)
{
	(void)cinfo;
	return FALSE;
}

static void source_skip(j_decompress_ptr cinfo, long n)
{
	struct jpeg_source_mgr *in = cinfo->src;
	if (n <= 0)
		return;
	if ((unsigned long)n > in->bytes_in_buffer)
		n = (long)in->bytes_in_buffer;
	in->next_input_byte += n;
	in->bytes_in_buffer -= (size_t)n;
}

/* }===== */

static _Noreturn __attribute__((format(printf, 3, 4)))
void fail(struct jpeg_job *j, enum rf_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(j->msg, sizeof j->msg, fmt, ap);
	va_end(ap);
	j->status = status;
	longjmp(j->jmp, 1);
}

/* Stops with the message rf_error just recorded (it names the file). */
static _Noreturn void fail_recorded(struct jpeg_job *j, enum rf_status status)
{
	j->named = true;
	fail(j, status, "%s", rf_error_message());
}

static _Noreturn void truncated(struct jpeg_job *j)
{
	fail(j, RF_ERR_FORMAT, "truncated JPEG: the file ends before the image data does (PIL: "
	     "\"image file is truncated\")");
}

/* Header checks and PIL's decoder settings; allocates the image. */
static void setup(struct jpeg_job *j)
{
	struct jpeg_decompress_struct *c = &j->cinfo;
	int r;
	do
		r = jpeg_read_header(c, FALSE);
	while (r == JPEG_HEADER_TABLES_ONLY);
	if (r != JPEG_HEADER_OK)
		truncated(j);
	if (c->num_components != 1 && c->num_components != 3 && c->num_components != 4)
		fail(j, RF_ERR_UNSUPPORTED, "unsupported JPEG: %d components (1, 3 or 4 only)",
		     c->num_components);
	enum rf_status s = rf_image_check_size(j->src, "JPEG", c->image_width, c->image_height);
	if (s != RF_OK)
		fail_recorded(j, s);
	c->out_color_space = c->num_components == 1 ? JCS_GRAYSCALE :
			     c->num_components == 3 ? JCS_RGB : JCS_CMYK;
	c->dct_method = JDCT_ISLOW;
	c->do_fancy_upsampling = TRUE;
	c->scale_num = c->scale_denom = 1;
	bool cmyk = c->num_components == 4;
	int channels = cmyk && !j->src->keep_cmyk ? 3 : c->num_components;
	if (rf_image_alloc(j->src, (int)c->image_width, (int)c->image_height, channels, &j->img) != RF_OK)
		fail_recorded(j, RF_ERR_OOM_HOST);
	j->img.cmyk = cmyk && j->src->keep_cmyk;
	if (cmyk && !j->src->keep_cmyk && !(j->cmyk_row = malloc(4 * (size_t)c->image_width)))
		fail(j, RF_ERR_OOM_HOST, "out of memory for a row");
}

/* Everything libjpeg does, under the setjmp: false (j->msg, j->status set) if it stopped. */
static bool jpeg_run(struct jpeg_job *j)
{
	if (setjmp(j->jmp))
		return false;
	struct jpeg_decompress_struct *c = &j->cinfo;
	c->err = jpeg_std_error(&j->err);
	j->err.error_exit = on_error_exit;
	j->err.output_message = on_output_message;
	c->client_data = j;
	jpeg_create_decompress(c);
	j->in = (struct jpeg_source_mgr){
		.next_input_byte = j->src->data, .bytes_in_buffer = j->src->size,
		.init_source = source_noop, .fill_input_buffer = source_fill,
		.skip_input_data = source_skip, .resync_to_restart = jpeg_resync_to_restart,
		.term_source = source_noop,
	};
	c->src = &j->in;
	j->progress.progress_monitor = on_progress;
	c->progress = &j->progress;
	setup(j);
	if (!jpeg_start_decompress(c))
		truncated(j);
	if ((int)c->output_width != j->img.width || (int)c->output_height != j->img.height ||
	    c->output_components != (j->cmyk_row ? 4 : j->img.channels))
		fail(j, RF_ERR_FORMAT, "corrupt JPEG: the decoder's output differs from the header");
	size_t stride = (size_t)j->img.width * (size_t)j->img.channels;
	while (c->output_scanline < c->output_height) {
		size_t y = c->output_scanline;
		JSAMPROW row = j->cmyk_row ? j->cmyk_row : j->img.pixels + y * stride;
		if (jpeg_read_scanlines(c, &row, 1) != 1)
			truncated(j);
		if (c->out_color_space == JCS_CMYK) {
			/* PIL's rawmode CMYK;I: Adobe's inverted values, assumed for every file. */
			for (size_t i = 0; i < (size_t)j->img.width * 4; i++)
				row[i] = (uint8_t)(255 - row[i]);
			if (j->cmyk_row)
				rf_image_cmyk_to_rgb(row, (size_t)j->img.width, j->img.pixels + y * stride);
		}
	}
	/* Suspension here (no end-of-image marker) is accepted, as PIL accepts it. */
	(void)jpeg_finish_decompress(c);
	return true;
}

enum rf_status rf_image_decode_jpeg(const struct rf_image_src *src, struct rf_image *out)
{
	*out = (struct rf_image){0};
	struct jpeg_job *j = calloc(1, sizeof *j);
	if (!j)
		return rf_error(RF_ERR_OOM_HOST, "%s: out of memory for the JPEG decoder", src->name);
	j->src = src;
	enum rf_status s = RF_OK;
	if (!jpeg_run(j))
		s = j->named ? rf_error(j->status, "%s", j->msg) :
		    rf_error(j->status, "%s: %s", src->name, j->msg);
	/* Safe whatever jpeg_run reached: a cinfo never created has no memory manager. */
	jpeg_destroy_decompress(&j->cinfo);
	free(j->cmyk_row);
	if (s != RF_OK)
		rf_image_fini(&j->img);
	else
		*out = j->img;
	free(j);
	return s;
}
