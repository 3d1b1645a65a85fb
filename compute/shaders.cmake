# Every kernel and variant the engine embeds (see rf_add_shader in CMakeLists.txt).
rf_add_shader(shaders/binary.comp)
rf_add_shader(shaders/unary.comp)
rf_add_shader(shaders/layernorm.comp)
rf_add_shader(shaders/softmax.comp)
rf_add_shader(shaders/attention.comp)
rf_add_shader(shaders/attention_scalar.comp)
rf_add_shader(shaders/reduce.comp)
rf_add_shader(shaders/reduce_partials.comp)
