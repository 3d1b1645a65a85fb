#version 450
// gemm_lanes.comp: register-blocked matrix product for CPU devices, f32 operands (the
// body and its design notes are in gemm_lanes.glsl).
//! bindings: tftfwrr
#extension GL_GOOGLE_include_directive : require
#include "gemm_lanes.glsl"
