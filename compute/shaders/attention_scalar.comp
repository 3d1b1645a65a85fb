#version 450
// attention_scalar.comp: multi-head attention (common/attention.glsl) reading qkv as r32f
// texels, for head widths or model widths that are not multiples of 4. Dimensions past
// the head width read as 0, so they add nothing to scores and are never written.
//! bindings: fwww
#extension GL_GOOGLE_include_directive : require
#include "common/mathf.glsl"

layout(set = 0, binding = 0) uniform samplerBuffer qkv;

vec4 load4(uint ofs, uint d4);

#include "common/attention.glsl"

vec4 load4(uint ofs, uint d4)
{
	vec4 v;
	for (uint i = 0; i < 4; i++) {
		uint d = d4 * 4 + i;
		v[i] = d < DH ? texelFetch(qkv, int(pc.qkv_base + ofs + min(d, DH - 1))).x : 0.0;
	}
	return v;
}
