/*
** fold.h: the matrices that turn a vision component's output into its contribution to the
** (projected) image embedding, computed once per model, projection and centring mode
** (each decomposer builds and owns one):
**   GP      = diag(gamma) proj P              [W, C]   (centred over W for exact centring)
**   M[l]    = out_proj[l].weightᵀ GP, extended: [H*(dh+4), C]; head h's block of dh+4
**             rows is its dh rows of out_proj.weightᵀ GP, then three constant rows,
**             cb[l]/(N H), bpP and g1P, which a value row with the extra entries
**             (1, w sigma, -w mu) turns into the summand's bias and ln_post shares,
**             then a zero row (padding)
**   cb[l]   = out_proj[l].bias GP             [C]
**   g1P     = 1ᵀ GP  (0 for exact centring)   [C]      carries ln_post's mean
**   bpP     = beta proj P                     [C]      carries ln_post's beta
** computed in double precision on the host (OpenBLAS dgemm), stored on the device as f32.
** Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_FOLD_H
#define RF_COMPUTE_MODEL_FOLD_H

#include "clip_internal.h"
#include "decompose.h"

struct rf_fold {
	enum rf_centering centering;
	int width, dim;             /* W and C */
	int heads, head_width;      /* H and dh */
	rf_tensor *gp;              /* [W, C] */
	rf_tensor **m;              /* per layer [H*(dh+4), C], the extended layout above */
	int layers;
	double *cb;                 /* [layers][C] */
	double *g1p, *bpp;          /* [C] each */
};

/* Builds the fold for `projection` ([D, C] host or device f32, or NULL: a device
** projection is downloaded, which waits for the device). */
enum rf_status rf_fold_build(rf_clip *m, const rf_tensor *projection, enum rf_centering centering,
			     struct rf_fold **out);
void rf_fold_destroy(struct rf_fold *f);

/* Rows per head in the extended per-layer matrices: the 3 constant rows and a zero row,
** so a head's block starts on a multiple of 4 when dh is one (vector loads). */
#define RF_FOLD_EXTRA 4

#endif
