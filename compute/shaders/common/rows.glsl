// rows.glsl: row-wise kernels with two layouts chosen per device by specialization
// constants (see LAVAPIPE.md):
//   ROW_LANES == 1   each lane owns a whole row (CPU devices: no shared memory, no
//                    barriers; a workgroup of LOCAL lanes handles LOCAL rows);
//   ROW_LANES == LOCAL  a workgroup owns a row and its lanes stride over the columns,
//                    combining partial results through shared memory (GPUs).
// ROW_LANES must be 1 or LOCAL, and LOCAL a power of two in the second case. The
// including shader includes index.glsl (LOCAL) first.

layout(constant_id = 1) const uint ROW_LANES = 1;

shared float row_scratch[LOCAL];

// This lane's row (may be past the last row: callers check) and first column.
uint row_index()
{
	return ROW_LANES == 1 ? flat_group() * LOCAL + gl_LocalInvocationID.x : flat_group();
}

uint row_lane()
{
	return ROW_LANES == 1 ? 0 : gl_LocalInvocationID.x;
}

// Sum of v over the lanes sharing a row, by a pairwise tree. Every lane of the
// workgroup must call it (it contains barriers when ROW_LANES > 1).
float row_sum(float v)
{
	if (ROW_LANES == 1)
		return v;
	uint l = gl_LocalInvocationID.x;
	row_scratch[l] = v;
	barrier();
	for (uint s = ROW_LANES / 2; s > 0; s >>= 1) {
		if (l < s)
			row_scratch[l] += row_scratch[l + s];
		barrier();
	}
	float r = row_scratch[0];
	barrier();
	return r;
}

// Maximum of v over the lanes sharing a row (NaN propagates); same rules as row_sum.
float row_max(float v)
{
	if (ROW_LANES == 1)
		return v;
	uint l = gl_LocalInvocationID.x;
	row_scratch[l] = v;
	barrier();
	for (uint s = ROW_LANES / 2; s > 0; s >>= 1) {
		if (l < s) {
			float o = row_scratch[l + s];
			if (isnan(o) || o > row_scratch[l])
				row_scratch[l] = o;
		}
		barrier();
	}
	float r = row_scratch[0];
	barrier();
	return r;
}

// Compensated (Kahan) accumulation: s.x is the sum, s.y the negated lost low part. The
// `precise` qualifier stops the compiler from simplifying (t - s.x) - y to 0.
void kahan_add(inout vec2 s, float v)
{
	precise float y = v - s.y;
	precise float t = s.x + y;
	s.y = isinf(t) ? 0.0 : (t - s.x) - y;   // an infinite sum has no low part (else NaN)
	s.x = t;
}

// Row data as float, or as vec4 in the VEC4 variants (rows of a multiple of 4 columns):
// on lavapipe every storage access is a per-lane loop, so a vec4 access moves four
// elements for the price of one. VT is the element type, WIDTH its float count.
#ifdef VEC4
#define VT vec4
#define WIDTH 4u
float hsum(vec4 v) { return (v.x + v.y) + (v.z + v.w); }
#else
#define VT float
#define WIDTH 1u
float hsum(float v) { return v; }
#endif

// Kahan accumulation of VT values: s the sums, c the negated lost low parts.
void kahan_addv(inout VT s, inout VT c, VT v)
{
	precise VT y = v - c;
	precise VT t = s + y;
	c = mix((t - s) - y, VT(0.0), isinf(t));   // an infinite sum has no low part (else NaN)
	s = t;
}
