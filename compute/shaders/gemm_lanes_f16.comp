#version 450
// gemm_lanes_f16.comp: gemm_lanes.glsl reading weight panels stored as f16 through an
// rgba16f view (binding 2); the texel fetch widens them to f32 for free.
//! bindings: tfhfwrr
#extension GL_GOOGLE_include_directive : require
#include "gemm_lanes.glsl"
