/*
** attention_host.h: rf_op_attention on the host for the `host` family (attention.c
** hands it arguments it has checked). Compute-internal (L4).
*/
#ifndef RF_COMPUTE_OPS_ATTENTION_HOST_H
#define RF_COMPUTE_OPS_ATTENTION_HOST_H

#include "nn.h"

enum rf_status rf_attention_host(rf_ctx *ctx, const struct rf_attention *a);

#endif
