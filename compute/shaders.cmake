# Every kernel and variant the engine embeds (see rf_add_shader in CMakeLists.txt).
rf_add_shader(shaders/binary.comp)
# Matrix products (compute/ops/gemm_launch.c): one kernel family per device class.
rf_add_shader(shaders/gemm_lanes.comp)
rf_add_shader(shaders/gemm_lanes_f16.comp)
rf_add_shader(shaders/gemm_pack_a.comp)
rf_add_shader(shaders/mm_tiled.comp)
rf_add_shader(shaders/mm_tiled.comp NAME mm_tiled_f16 DEFINES B_F16=1)
rf_add_shader(shaders/mm_generic.comp)
rf_add_shader(shaders/mm_generic.comp NAME mm_generic_f16 DEFINES B_F16=1)
