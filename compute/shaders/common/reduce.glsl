// reduce.glsl: the accumulator of the reductions (reduce.comp reads the tensor,
// reduce_partials.comp combines partial results). A state is a vec2:
//   sums (SUM, MEAN, NORM2, VAR, STD)  (s, c): value s - c, Kahan compensated
//   PROD                               (p, c): value p (1 + c), c the relative error
//                                      of the rounded products (compensated product)
//   MAX, MIN                           (value, index: only "seen yet" matters)
//   ARGMAX, ARGMIN                     (value, index of its first occurrence)
// NaN wins max/min (and its first index wins argmax/argmin), as in NumPy.
// The including shader includes mathf.glsl first (split_hi).

layout(constant_id = 1) const uint OP = 0;

// Mirrors enum rf_reduce_op (tensor_ops.h).
const uint RED_SUM = 0, RED_MEAN = 1, RED_MAX = 2, RED_MIN = 3, RED_VAR = 4, RED_STD = 5,
	RED_ARGMAX = 6, RED_ARGMIN = 7, RED_PROD = 8, RED_NORM2 = 9;

const bool IS_SUM = OP == RED_SUM || OP == RED_MEAN || OP == RED_NORM2 || OP == RED_VAR ||
		    OP == RED_STD;
const bool IS_ARG = OP == RED_ARGMAX || OP == RED_ARGMIN;
const bool IS_MAX = OP == RED_MAX || OP == RED_ARGMAX;

vec2 state_init()
{
	if (OP == RED_PROD)
		return vec2(1.0, 0.0);
	if (IS_SUM)
		return vec2(0.0);
	return vec2(0.0, -1.0);    // max/min family: index -1 marks "nothing seen yet"
}

// Does candidate value v replace the current best b? Strictly better, or the first NaN.
bool better(float v, vec2 best)
{
	if (best.y < 0.0)
		return true;
	if (isnan(best.x))
		return false;
	return isnan(v) || (IS_MAX ? v > best.x : v < best.x);
}

// The relative rounding error of p = a * b: (a * b - p) / p, from Dekker's exact
// product (fma() may not be fused); 0 where that is not finite (p zero or infinite).
float product_error(float a, float b, float p)
{
	float ah = split_hi(a), al = a - ah, bh = split_hi(b), bl = b - bh;
	precise float e = ((ah * bh - p) + ah * bl + al * bh) + al * bl;
	float rel = e / p;
	return isnan(rel) || isinf(rel) ? 0.0 : rel;
}

void prod_add(inout vec2 s, float v, float vc)
{
	float p = s.x * v;
	s.y += vc + product_error(s.x, v, p);
	s.x = p;
}

void kahan_add(inout vec2 s, float v)
{
	// `precise` keeps the compiler from simplifying (t - s.x) - y to 0.
	precise float y = v - s.y;
	precise float t = s.x + y;
	// Once the sum is infinite there is no low part: (inf - s.x) - y would be NaN (or inf,
	// which the next step turns into NaN), so sum({1, inf}) or an overflowing sum gave NaN.
	s.y = isinf(t) ? 0.0 : (t - s.x) - y;
	s.x = t;
}

// Adds element value v (already squared/centred for NORM2/VAR) at index `at`.
void state_add(inout vec2 s, float v, uint at)
{
	if (IS_SUM)
		kahan_add(s, v);
	else if (OP == RED_PROD)
		prod_add(s, v, 0.0);
	else if (better(v, s))
		s = vec2(v, float(at));
}

// Folds a partial state p (covering later indices than s) into s.
void state_combine(inout vec2 s, vec2 p)
{
	if (IS_SUM) {
		kahan_add(s, p.x);
		kahan_add(s, -p.y);
	} else if (OP == RED_PROD) {
		prod_add(s, p.x, p.y);
	} else if (p.y >= 0.0 && better(p.x, s)) {
		s = p;
	}
}

// The result from the final state: len = reduced elements, correction for VAR/STD.
float state_finish(vec2 s, uint len, uint correction)
{
	float sum = s.x - s.y;
	const float NAN_F32 = uintBitsToFloat(0x7fc00000u);
	switch (OP) {
	case RED_MEAN: return sum / float(len);
	case RED_NORM2: return sqrt(sum);
	case RED_VAR: return len > correction ? sum / float(len - correction) : NAN_F32;
	case RED_STD: return len > correction ? sqrt(sum / float(len - correction)) : NAN_F32;
	case RED_ARGMAX: case RED_ARGMIN: return max(s.y, 0.0);
	case RED_PROD: return isinf(s.x) ? s.x : s.x + s.x * s.y;   // inf * 0 would be NaN
	case RED_MAX: case RED_MIN: return s.x;
	default: return sum;
	}
}
