#version 450
// attention.comp: multi-head attention (common/attention.glsl) reading qkv as rgba32f
// texels, four head dimensions per load; needs W and the head width to be multiples of 4.
//! bindings: twww
#extension GL_GOOGLE_include_directive : require
#include "common/mathf.glsl"

layout(set = 0, binding = 0) uniform samplerBuffer qkv;

// Forward declaration: the push block lives in attention.glsl.
vec4 load4(uint ofs, uint d4);

#include "common/attention.glsl"

vec4 load4(uint ofs, uint d4)
{
	return texelFetch(qkv, int(pc.qkv_base + (ofs >> 2) + d4));
}
