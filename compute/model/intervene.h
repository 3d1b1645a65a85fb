/*
** intervene.h: a vision forward pass with edits and taps. Edits zero-ablate,
** mean-ablate or replace a component's output at a layer, so that indirect effects (through
** later layers) can be measured; taps return any intermediate tensor. An edit that writes
** back the values a component already had leaves the output bit-identical.
** Compute layer (L5).
*/
#ifndef RF_COMPUTE_MODEL_INTERVENE_H
#define RF_COMPUTE_MODEL_INTERVENE_H

#include "clip.h"

/* What an edit changes, at block `layer`:
**   HEAD   head `index`'s attention output (its dh columns, every token, before out_proj)
**   ATTN   the whole attention branch output (after out_proj, with bias)
**   MLP    the MLP branch output (after c_proj, with bias)
**   TOKEN  source token `index`'s value vectors (all heads): what every query reads from it */
enum rf_edit_site { RF_SITE_HEAD, RF_SITE_ATTN, RF_SITE_MLP, RF_SITE_TOKEN };

enum rf_edit_kind {
	RF_EDIT_ZERO,     /* set to 0 */
	RF_EDIT_MEAN,     /* set to `value`, the same for every image: HEAD [N, dh] or [dh];
			     ATTN/MLP [N, W] or [W]; TOKEN [W] */
	RF_EDIT_REPLACE,  /* set to `value` per image: HEAD [B, N, dh]; ATTN/MLP [B, N, W];
			     TOKEN [B, W] */
};

struct rf_edit {
	enum rf_edit_site site;
	int layer;
	int index;                 /* head or token; unused otherwise */
	enum rf_edit_kind kind;
	const rf_tensor *value;    /* f32, host or device; NULL for ZERO */
};

/* Intermediates a tap can return (device f32 tensors):
**   EMBED       [B, N, W]    ln_pre output (the stream entering block 0)
**   RESID_PRE   [B, N, W]    the stream before block `layer`
**   RESID_POST  [B, N, W]    the stream after block `layer`
**   Q, K, V     [B, N, W]    projections, heads side by side (head h: columns h*dh..)
**   PROBS       [B, H, N, N] attention probabilities (query, key)
**   HEADS       [B, N, W]    attention output before out_proj (heads side by side)
**   ATTN_OUT    [B, N, W]    attention branch output
**   MLP_HIDDEN  [B, N, mlp]  MLP activations after the nonlinearity
**   MLP_OUT     [B, N, W]    MLP branch output
** A tap sees the value after any edit at the same place. */
enum rf_tap_site {
	RF_TAP_EMBED, RF_TAP_RESID_PRE, RF_TAP_RESID_POST, RF_TAP_Q, RF_TAP_K, RF_TAP_V,
	RF_TAP_PROBS, RF_TAP_HEADS, RF_TAP_ATTN_OUT, RF_TAP_MLP_HIDDEN, RF_TAP_MLP_OUT,
};

struct rf_tap {
	enum rf_tap_site site;
	int layer;                 /* unused for EMBED */
	rf_tensor *out;            /* set by rf_clip_intervene; the caller destroys it */
};

/* Runs the vision tower on pixels [B, 3, S, S] with the edits applied in order, filling
** every tap; *embeds receives the image embeddings [B, D]. The whole batch is one pass.
** Layers, heads and tokens are 0-based here. RF_ERR_INVALID, nothing run, for pixels of
** the wrong shape, unknown sites or kinds, out-of-range indices (the message names the
** edit or tap by its 1-based position and gives the valid range: "edit 2: head 4 is out
** of range (0..3)") and values of the wrong dtype or shape (the message gives the shapes
** the edit takes and the one it got). On any failure *embeds is NULL and no tap is set. */
enum rf_status rf_clip_intervene(rf_clip *m, const rf_tensor *pixels, const struct rf_edit *edits,
				 int nedits, struct rf_tap *taps, int ntaps, rf_tensor **embeds);

/* Parses names like "resid_post", "probs" into a tap site; false if unknown. */
bool rf_tap_site_parse(const char *name, enum rf_tap_site *out);
const char *rf_tap_site_name(enum rf_tap_site site);

#endif
