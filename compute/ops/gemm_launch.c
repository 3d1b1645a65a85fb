/*
** gemm_launch.c: turns one matrix-product description (struct rf_mm_problem) into
** dispatches of a kernel family: picks the kernel's block shape for the problem and the
** device, splits the work where a storage binding would pass maxStorageBufferRange or
** a grid would pass maxComputeWorkGroupCount, and fills the shared push constants
** (compute/shaders/common/gemm.glsl). Compute layer (L4).
**
** What the lanes kernel's shape rests on (lavapipe 22.3, 2 threads, ViT-B/16 shapes,
** best of interleaved runs on a shared machine; gemm_lanes.glsl says why it looks as it
** does). A texel fetch is a call of ~46 instructions that spills every live register,
** so time follows fetches per multiply-add, (R + NP) / (4 R NP): 5x12 blocks gave ~39
** GFLOP/s, 8..16 x 16 blocks ~52-55; past ~400 accumulators (16x24, 24x24) the unrolled
** loop leaves the instruction cache and falls to 20-30. With those blocks the kernel
** spends ~45% in fetches and ~40% in multiply-adds (profiled). Then: an epilogue
** specialized by constants (an unrolled general one ran every branch: 45 -> 63), A
** packed in read order (K = 3072: 43 -> 62), and 2-4 K quads per trip. Now 60-72
** GFLOP/s when the machine is quiet (OpenBLAS 170-190 there), ~35 when it is shared.
*/
#include "gemm_internal.h"
#include "launch.h"
#include "status.h"

#include <string.h>

struct mm_push {
	uint32_t m, n, k, flags;
	uint32_t a_off, a_rs, a_cs, a_bs;
	uint32_t b_off, b_rs, b_cs, b_bs;
	uint32_t c_off, c_rs, c_cs, c_bs;
	uint32_t bias_off, res_off, res_rs, pad;
	float alpha, beta;
};
_Static_assert(sizeof(struct mm_push) <= 128, "push constants");

enum { FLAG_BIAS = 4, FLAG_RESIDUAL = 8 };

/* How one kernel family covers the problem: the block of C per workgroup, the
** pipeline, and which operands it reads through texel views (no range limit there). */
struct mm_plan {
	enum rf_mm_kernel kernel;
	rf_pipeline *pipeline;
	int64_t tile_m, tile_n;
	bool texel_ab;
	bool a_vec4, b_vec4;        /* lanes: which texel view of A and B the kernel reads */
	bool pack_a;                /* lanes: A is read from a packed copy (gemm_pack_a.comp) */
	uint32_t lanes, rows;       /* lanes: workgroup size and rows per lane */
};

/* {===== block shapes */

/* Rows per lane for the lanes kernel: the R that computes the fewest rows (M rounded up
** to whole workgroups of lanes*R rows), weighted by the kernel's cost per row, which
** falls as the fetches of B are shared by more rows: 1 + 1.2/R fits measurements at
** R = 5..25 (flat from R ~ 8; R = 5 is ~15% slower per row). Larger R would pass the
** instruction cache; R*NP <= 256 accumulators. */
static int lanes_rows(int64_t m, int64_t lanes)
{
	int best = 1;
	double best_cost = 0;
	for (int r = 1; r <= 16; r++) {
		double cost = (double)RF_ALIGN_UP(m, lanes * r) * (1.0 + 1.2 / r);
		if (r == 1 || cost < best_cost - 1e-9) {
			best = r;
			best_cost = cost;
		}
	}
	return best;
}

/* K quads per loop trip, dividing K/4: more quads per trip mean fewer masked
** accumulator updates per multiply-add; 4 only for short blocks (R <= 8), which keeps
** the unrolled loop inside the instruction cache. K = 588 = 4 * 147 takes 3. */
static int lanes_unroll(int64_t k, int r)
{
	int64_t kq = k / 4;
	if (r <= 8 && kq % 4 == 0)
		return 4;
	if (kq % 2 == 0)
		return 2;
	if (kq % 3 == 0)
		return 3;
	return 1;
}

static bool aligned4(int64_t x)
{
	return x % 4 == 0;
}

static enum rf_status plan_lanes(rf_ctx *ctx, const struct rf_mm_problem *p, struct mm_plan *out)
{
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	uint32_t lanes = RF_MIN(caps->subgroup_size, caps->max_workgroup_invocations);
	if (lanes == 0)
		lanes = 1;
	const struct rf_mm_operand *a = &p->a, *b = &p->b;
	int a_mode = a->cs == 1 && aligned4(a->offset) && aligned4(a->rs) && aligned4(a->bs) &&
		     aligned4(p->k);
	int b_mode, np;
	if (p->panels) {
		b_mode = 3;
		np = (int)p->panels->np;
	} else {
		np = p->n >= RF_MM_PANEL ? RF_MM_PANEL : (int)RF_ALIGN_UP(p->n, 4);
		if (b->rs == 1 && aligned4(b->offset) && aligned4(b->cs) && aligned4(b->bs) && aligned4(p->k))
			b_mode = 1;
		else if (b->cs == 1 && aligned4(b->offset) && aligned4(b->rs) && aligned4(b->bs) &&
			 aligned4(p->n))
			b_mode = 2;
		else
			b_mode = 0;
	}
	bool tail = p->k % 4 != 0;
	int r = lanes_rows(p->m, lanes);
	/* Packing A costs one pass over it (~2.3 GB/s: 4-8% of the product at ViT-B sizes)
	** and made the product itself 1.15x faster at 1576 x 768 x 2304, 1.35x at
	** 197 x 1024 x 768, 1.6x at K = 3072: per fetch, LANES*R rows far apart become one
	** contiguous run. Not for matrix-vector sizes, nor past one storage binding. */
	bool pack = p->panels && a_mode == 1 && p->batch == 1 && r >= 2 &&
		    (uint64_t)RF_ALIGN_UP(p->m, (int64_t)lanes * r) * (uint64_t)p->k * 4 <=
			    caps->max_storage_range;
	if (pack)
		a_mode = 2;
	/* A partial quad (tail) leaves k/4 full quads; modes 1 and 2 never have one. */
	int u = tail ? 1 : lanes_unroll(p->k, r);
	/* The bias seeds the accumulators, which is alpha * (A·B + bias): only gemm has a
	** bias, and its alpha is 1. */
	RF_ASSERT(!p->bias || p->alpha == 1.0f);
	uint32_t spec[] = { lanes, (uint32_t)r, (uint32_t)np, (uint32_t)u, (uint32_t)a_mode,
			    (uint32_t)b_mode, tail, (uint32_t)p->act, p->res != NULL, p->beta != 0.0f };
	enum rf_shader_id id = p->panels && p->panels->storage == RF_F16 ? RF_SHADER_gemm_lanes_f16
									 : RF_SHADER_gemm_lanes;
	*out = (struct mm_plan){ .kernel = RF_MM_LANES, .tile_m = (int64_t)lanes * r, .tile_n = np,
				 .texel_ab = true, .a_vec4 = a_mode != 0, .b_vec4 = b_mode != 0,
				 .pack_a = pack, .lanes = lanes, .rows = (uint32_t)r };
	return rf_launch_pipeline(ctx, id, spec, RF_ARRAY_LEN(spec), &out->pipeline);
}

/* Register block per invocation of the tiled kernel: 4 x 4 for large problems, smaller
** when M or N is small so that thin products do not compute mostly padding. */
static uint32_t tiled_block(int64_t extent, uint32_t threads)
{
	if (extent > 2 * threads)
		return 4;
	return extent > threads ? 2 : 1;
}

static enum rf_status plan_tiled(rf_ctx *ctx, const struct rf_mm_problem *p, struct mm_plan *out)
{
	const struct rf_caps *caps = rf_ctx_caps(ctx);
	uint32_t t = caps->max_workgroup_invocations >= 256 ? 16 : 8;
	uint32_t rm = tiled_block(p->m, t), rn = tiled_block(p->n, t), bk = 16;
	/* Shared memory: BK rows of BM+1 and BN+1 floats (gemm: 8.3 KiB at 64 x 64). */
	while (bk > 4 && (uint64_t)bk * (t * rm + t * rn + 2) * 4 > caps->max_shared_memory)
		bk /= 2;
	uint32_t spec[] = { t, t, rm, rn, bk, p->a.cs == 1, p->b.rs == 1 };
	enum rf_shader_id id = p->b.dtype == RF_F16 ? RF_SHADER_mm_tiled_f16 : RF_SHADER_mm_tiled;
	*out = (struct mm_plan){ .kernel = RF_MM_TILED, .tile_m = t * rm, .tile_n = t * rn };
	return rf_launch_pipeline(ctx, id, spec, RF_ARRAY_LEN(spec), &out->pipeline);
}

static enum rf_status plan_generic(rf_ctx *ctx, const struct rf_mm_problem *p, struct mm_plan *out)
{
	enum rf_shader_id id = p->b.dtype == RF_F16 ? RF_SHADER_mm_generic_f16 : RF_SHADER_mm_generic;
	*out = (struct mm_plan){ .kernel = RF_MM_GENERIC, .tile_m = 8, .tile_n = 8 };
	return rf_launch_pipeline(ctx, id, NULL, 0, &out->pipeline);
}

/* }===== */

/* {===== chunks and bindings */

/* A chunk of the problem: batches [b0, b0+nb), rows [i0, i0+ni), columns [j0, j0+nj). */
struct chunk {
	int64_t b0, nb, i0, ni, j0, nj;
};

/* Elements [lo, hi) of an operand that a chunk touches along (batch, i, j) with strides
** (bs, rs, cs); `ni` or `nj` of 0 (K = 0) still spans one element. */
static void span(int64_t offset, int64_t bs, int64_t rs, int64_t cs, int64_t b0, int64_t nb,
		 int64_t i0, int64_t ni, int64_t j0, int64_t nj, int64_t *lo, int64_t *hi)
{
	*lo = offset + b0 * bs + i0 * rs + j0 * cs;
	*hi = *lo + (RF_MAX(nb, 1) - 1) * bs + (RF_MAX(ni, 1) - 1) * rs + (RF_MAX(nj, 1) - 1) * cs + 1;
}

/* Bytes a storage window over [lo, hi) binds at most, alignment slack included. */
static uint64_t window_bytes(const rf_ctx *ctx, int64_t lo, int64_t hi, size_t esize)
{
	return (uint64_t)(hi - lo) * esize + rf_ctx_caps(ctx)->storage_align + 4;
}

/* Binds elements [lo, hi) of `m` as a storage range starting on the device's alignment;
** returns the binding and, in *base, the index of element `lo` inside it. */
static struct rf_arg storage_window(const rf_ctx *ctx, const struct rf_mem *m, size_t esize,
				    int64_t lo, int64_t hi, uint32_t *base)
{
	uint64_t align = rf_ctx_caps(ctx)->storage_align ? rf_ctx_caps(ctx)->storage_align : 4;
	uint64_t begin = (uint64_t)lo * esize / align * align;
	uint64_t end = RF_MIN(RF_ALIGN_UP((uint64_t)hi * esize, 4), m->size);
	*base = (uint32_t)((uint64_t)lo - begin / esize);
	return (struct rf_arg){ m, begin, end - begin };
}

/* A texel binding of `m`: the whole allocation where the kernel reads it, else one
** texel at its start, so that an operand larger than one view's reach (r32f: 128 Mi
** elements on lavapipe) only has to fit the view the kernel actually reads. */
static struct rf_arg texel_arg(const struct rf_mem *m, bool read)
{
	return read ? rf_arg_whole(m) : (struct rf_arg){ m, 0, RF_MIN(m->size, 16) };
}

/* Element index of an operand's element `lo` in its block's texel view. */
static uint32_t texel_base(const struct rf_mem *m, size_t esize, int64_t lo)
{
	return (uint32_t)(m->offset / esize + (uint64_t)lo);
}

static bool grid_fits(const rf_ctx *ctx, const struct mm_plan *pl, const struct chunk *c)
{
	const uint32_t *max = rf_ctx_caps(ctx)->max_workgroup_count;
	return RF_CEIL_DIV(c->nj, pl->tile_n) <= max[0] && RF_CEIL_DIV(c->ni, pl->tile_m) <= max[1] &&
	       c->nb <= max[2];
}

/* Whether every storage binding of a chunk of this size stays inside the device's range. */
static bool chunk_fits(const rf_ctx *ctx, const struct mm_plan *pl, const struct rf_mm_problem *p,
		       const struct chunk *c)
{
	uint64_t range = rf_ctx_caps(ctx)->max_storage_range;
	int64_t lo, hi;
	if (!grid_fits(ctx, pl, c))
		return false;
	span(0, p->c.bs, p->c.rs, p->c.cs, 0, c->nb, 0, c->ni, 0, c->nj, &lo, &hi);
	if (window_bytes(ctx, lo, hi, 4) > range)
		return false;
	if (p->res) {
		span(0, 0, p->res_rs, 1, 0, 1, 0, c->ni, 0, c->nj, &lo, &hi);
		if (window_bytes(ctx, lo, hi, 4) > range)
			return false;
	}
	if (p->bias && window_bytes(ctx, 0, c->nj, 4) > range)
		return false;
	if (pl->texel_ab)
		return true;
	span(0, p->a.bs, p->a.rs, p->a.cs, 0, c->nb, 0, c->ni, 0, p->k, &lo, &hi);
	if (window_bytes(ctx, lo, hi, 4) > range)
		return false;
	span(0, p->b.bs, p->b.rs, p->b.cs, 0, c->nb, 0, p->k, 0, c->nj, &lo, &hi);
	return window_bytes(ctx, lo, hi, rf_dtype_size(p->b.dtype)) <= range;
}

/* Halves a chunk extent, keeping it a multiple of the tile while it is larger. */
static int64_t halve(int64_t n, int64_t tile)
{
	int64_t h = RF_CEIL_DIV(n, 2);
	return n > tile ? RF_ALIGN_UP(h, tile) : h;
}

/* The largest chunk (batches first, then rows, then columns split) that fits. The lanes
** kernel splits rows and columns only at whole blocks: its packed A and its B addressing
** (panels, vec4 groups) assume a chunk starts on one. */
static enum rf_status chunk_size(const rf_ctx *ctx, const struct mm_plan *pl,
				 const struct rf_mm_problem *p, struct chunk *c)
{
	*c = (struct chunk){ 0, p->batch, 0, p->m, 0, p->n };
	while (!chunk_fits(ctx, pl, p, c)) {
		if (c->nb > 1)
			c->nb = RF_CEIL_DIV(c->nb, 2);
		else if (c->ni > pl->tile_m || (c->ni > 1 && !pl->texel_ab))
			c->ni = halve(c->ni, pl->tile_m);
		else if (c->nj > pl->tile_n || (c->nj > 1 && !pl->texel_ab))
			c->nj = halve(c->nj, pl->tile_n);
		else
			return rf_error(RF_ERR_UNSUPPORTED, "matrix product: one row of an operand is over "
					"the device's %.1f MiB storage-buffer range",
					rf_ctx_caps(ctx)->max_storage_range / 1048576.0);
	}
	return RF_OK;
}

/* Records the dispatch of one chunk. */
static enum rf_status dispatch_chunk(rf_ctx *ctx, const struct mm_plan *pl,
				     const struct rf_mm_problem *p, const struct chunk *c,
				     const struct rf_mem *packed_a)
{
	struct mm_push pc = {
		.m = (uint32_t)c->ni, .n = (uint32_t)c->nj, .k = (uint32_t)p->k, .flags = (uint32_t)p->act,
		.a_rs = (uint32_t)p->a.rs, .a_cs = (uint32_t)p->a.cs, .a_bs = (uint32_t)p->a.bs,
		.b_rs = (uint32_t)p->b.rs, .b_cs = (uint32_t)p->b.cs, .b_bs = (uint32_t)p->b.bs,
		.c_rs = (uint32_t)p->c.rs, .c_cs = (uint32_t)p->c.cs, .c_bs = (uint32_t)p->c.bs,
		.res_rs = (uint32_t)p->res_rs, .alpha = p->alpha, .beta = p->beta,
	};
	struct rf_arg args[7];
	uint32_t nargs = 0;
	int64_t lo, hi;
	size_t bsize = rf_dtype_size(p->b.dtype);
	span(p->a.offset, p->a.bs, p->a.rs, p->a.cs, c->b0, c->nb, c->i0, c->ni, 0, p->k, &lo, &hi);
	if (packed_a) {
		/* Row groups of tile_m rows, each kq * tile_m texels; i0 starts one. */
		pc.a_off = texel_base(packed_a, 4, c->i0 / pl->tile_m * RF_CEIL_DIV(p->k, 4) * pl->tile_m * 4);
		args[nargs++] = texel_arg(packed_a, true);
		args[nargs++] = texel_arg(packed_a, false);
	} else if (pl->texel_ab) {
		pc.a_off = texel_base(p->a.mem, 4, lo);
		args[nargs++] = texel_arg(p->a.mem, pl->a_vec4);
		args[nargs++] = texel_arg(p->a.mem, !pl->a_vec4);
	} else {
		args[nargs++] = storage_window(ctx, p->a.mem, 4, lo, hi, &pc.a_off);
	}
	if (p->panels) {
		/* Chunks start on a panel: j0 is a multiple of the tile, which is the panel. */
		int64_t panel_texels = p->panels->kq * p->panels->np;
		pc.b_off = texel_base(p->b.mem, bsize, (c->j0 / p->panels->np) * panel_texels * 4);
		pc.b_cs = (uint32_t)panel_texels;
	} else {
		span(p->b.offset, p->b.bs, p->b.rs, p->b.cs, c->b0, c->nb, 0, p->k, c->j0, c->nj, &lo, &hi);
		if (pl->texel_ab)
			pc.b_off = texel_base(p->b.mem, bsize, lo);
	}
	if (pl->texel_ab) {
		args[nargs++] = texel_arg(p->b.mem, pl->b_vec4);
		args[nargs++] = texel_arg(p->b.mem, !pl->b_vec4);
	} else {
		args[nargs++] = storage_window(ctx, p->b.mem, bsize, lo, hi, &pc.b_off);
	}
	span(p->c.offset, p->c.bs, p->c.rs, p->c.cs, c->b0, c->nb, c->i0, c->ni, c->j0, c->nj, &lo, &hi);
	args[nargs++] = storage_window(ctx, p->c.mem, 4, lo, hi, &pc.c_off);
	if (p->bias) {
		pc.flags |= FLAG_BIAS;
		args[nargs++] = storage_window(ctx, p->bias, 4, p->bias_offset + c->j0,
					       p->bias_offset + c->j0 + c->nj, &pc.bias_off);
	} else {
		args[nargs] = args[nargs - 1];  /* unread: any valid binding */
		nargs++;
	}
	if (p->res) {
		pc.flags |= FLAG_RESIDUAL;
		span(p->res_offset, 0, p->res_rs, 1, 0, 1, c->i0, c->ni, c->j0, c->nj, &lo, &hi);
		args[nargs++] = storage_window(ctx, p->res, 4, lo, hi, &pc.res_off);
	} else {
		args[nargs] = args[nargs - 1];
		nargs++;
	}
	uint32_t gx = (uint32_t)RF_CEIL_DIV(c->nj, pl->tile_n);
	uint32_t gy = (uint32_t)RF_CEIL_DIV(c->ni, pl->tile_m);
	return rf_cmd_dispatch(ctx, pl->pipeline, args, nargs, &pc, sizeof pc, gx, gy, (uint32_t)c->nb);
}

/* }===== */

/* Records the copy of A in the lanes kernel's read order into `out` (allocated here). */
static enum rf_status pack_a(rf_ctx *ctx, const struct mm_plan *pl, const struct rf_mm_problem *p,
			     struct rf_mem *out)
{
	enum { QUADS_PER_GROUP = 16 };
	int64_t kq = p->k / 4, groups = RF_CEIL_DIV(p->m, pl->tile_m);
	enum rf_status s = rf_mem_alloc(ctx, (uint64_t)(groups * pl->tile_m * kq) * 16, out);
	if (s != RF_OK)
		return s;
	uint32_t spec[] = { pl->lanes, pl->rows, QUADS_PER_GROUP };
	rf_pipeline *pipe;
	if ((s = rf_launch_pipeline(ctx, RF_SHADER_gemm_pack_a, spec, RF_ARRAY_LEN(spec), &pipe)) != RF_OK)
		return s;
	struct {
		uint32_t m, kq, a_off4, a_rs4;
	} pc = { (uint32_t)p->m, (uint32_t)kq, texel_base(p->a.mem, 4, p->a.offset) / 4,
		 (uint32_t)(p->a.rs / 4) };
	struct rf_arg args[] = { texel_arg(p->a.mem, true), rf_arg_whole(out) };
	/* Row groups stay under the grid limit: the chunks of the product do (chunk_fits). */
	return rf_cmd_dispatch(ctx, pipe, args, 2, &pc, sizeof pc,
			       (uint32_t)RF_CEIL_DIV(kq, QUADS_PER_GROUP), (uint32_t)groups, 1);
}

enum rf_status rf_mm_launch(rf_ctx *ctx, enum rf_mm_kernel kernel, const struct rf_mm_problem *p)
{
	if (p->batch == 0 || p->m == 0 || p->n == 0)
		return RF_OK;
	struct mm_plan pl;
	enum rf_status s;
	switch (kernel) {
	case RF_MM_LANES: s = plan_lanes(ctx, p, &pl); break;
	case RF_MM_TILED: s = plan_tiled(ctx, p, &pl); break;
	default: s = plan_generic(ctx, p, &pl); break;
	}
	if (s != RF_OK)
		return s;
	struct chunk size;
	if ((s = chunk_size(ctx, &pl, p, &size)) != RF_OK)
		return s;
	/* The packed copy is freed once recorded: work already recorded stays ordered
	** before any later reuse of its memory (memory.h). */
	struct rf_mem packed = { 0 };
	if (pl.pack_a && (s = pack_a(ctx, &pl, p, &packed)) != RF_OK)
		goto out;
	for (int64_t b0 = 0; b0 < p->batch && s == RF_OK; b0 += size.nb)
		for (int64_t i0 = 0; i0 < p->m && s == RF_OK; i0 += size.ni)
			for (int64_t j0 = 0; j0 < p->n && s == RF_OK; j0 += size.nj) {
				struct chunk c = { b0, RF_MIN(size.nb, p->batch - b0), i0,
						   RF_MIN(size.ni, p->m - i0), j0, RF_MIN(size.nj, p->n - j0) };
				s = dispatch_chunk(ctx, &pl, p, &c, pl.pack_a ? &packed : NULL);
			}
out:
	rf_mem_free(ctx, &packed);
	return s;
}
