/*
** spirv.c: the size of a module's push-constant block, read from its instructions (the
** SPIR-V 1.x binary layout: a 5-word header, then instructions whose first word holds
** the word count in its high half and the opcode in its low half). Runtime layer (L3).
*/
#include "spirv.h"
#include "status.h"

#include <stdlib.h>

enum {
	SPV_MAGIC = 0x07230203,
	OP_TYPE_INT = 21,
	OP_TYPE_FLOAT = 22,
	OP_TYPE_VECTOR = 23,
	OP_TYPE_ARRAY = 28,
	OP_TYPE_STRUCT = 30,
	OP_TYPE_POINTER = 32,
	OP_CONSTANT = 43,
	OP_VARIABLE = 59,
	OP_DECORATE = 71,
	OP_MEMBER_DECORATE = 72,
	DECORATION_ARRAY_STRIDE = 6,
	DECORATION_OFFSET = 35,
	STORAGE_PUSH_CONSTANT = 9,
	MAX_DEPTH = 8,
};

struct module {
	const uint32_t *words;
	size_t nwords;
	uint32_t bound;        /* ids are below it */
	size_t *def;           /* [bound]: word index of the instruction defining each id, 0 if none */
	const char *name;
};

static uint16_t opcode(const struct module *m, size_t at)
{
	return (uint16_t)(m->words[at] & 0xffff);
}

static uint32_t operand(const struct module *m, size_t at, uint32_t k)
{
	return m->words[at + k];
}

static uint32_t word_count(const struct module *m, size_t at)
{
	return m->words[at] >> 16;
}

static enum rf_status malformed(const struct module *m, const char *what)
{
	return rf_error(RF_ERR_FORMAT, "shader '%s': %s", m->name, what);
}

/* Records where every type and constant is defined; checks every instruction's length. */
static enum rf_status index_module(struct module *m)
{
	for (size_t at = 5; at < m->nwords;) {
		uint32_t n = word_count(m, at);
		if (n == 0 || at + n > m->nwords)
			return malformed(m, "an instruction runs past the end of the module");
		uint16_t op = opcode(m, at);
		/* Types define their id in operand 1, constants in operand 2. */
		uint32_t id = 0;
		if (op >= OP_TYPE_INT && op <= OP_TYPE_POINTER && n >= 2)
			id = operand(m, at, 1);
		else if (op == OP_CONSTANT && n >= 4)
			id = operand(m, at, 2);
		if (id >= m->bound)
			return malformed(m, "an id is past the module's bound");
		if (id)
			m->def[id] = at;
		at += n;
	}
	return RF_OK;
}

/* The value of decoration `deco` on `id` (member `member` of it, or -1 for the id itself). */
static bool find_decoration(const struct module *m, uint32_t id, int64_t member, uint32_t deco,
			    uint32_t *value)
{
	for (size_t at = 5; at < m->nwords; at += word_count(m, at)) {
		uint32_t n = word_count(m, at);
		if (member < 0 && opcode(m, at) == OP_DECORATE && n >= 4 && operand(m, at, 1) == id &&
		    operand(m, at, 2) == deco) {
			*value = operand(m, at, 3);
			return true;
		}
		if (member >= 0 && opcode(m, at) == OP_MEMBER_DECORATE && n >= 5 &&
		    operand(m, at, 1) == id && operand(m, at, 2) == (uint32_t)member &&
		    operand(m, at, 3) == deco) {
			*value = operand(m, at, 4);
			return true;
		}
	}
	return false;
}

/* Bytes a value of type `id` spans inside a block laid out by its decorations. */
static enum rf_status type_size(const struct module *m, uint32_t id, int depth, uint64_t *out)
{
	size_t at = id < m->bound ? m->def[id] : 0;
	if (!at || depth > MAX_DEPTH)
		return malformed(m, "a push-constant member has an unknown type");
	uint32_t n = word_count(m, at);
	enum rf_status s;
	switch (opcode(m, at)) {
	case OP_TYPE_INT:
	case OP_TYPE_FLOAT:
		if (n < 3)
			break;
		*out = operand(m, at, 2) / 8;
		return RF_OK;
	case OP_TYPE_VECTOR: {
		uint64_t component;
		if (n < 4 || (s = type_size(m, operand(m, at, 2), depth + 1, &component)) != RF_OK)
			return n < 4 ? malformed(m, "a short vector type") : s;
		*out = component * operand(m, at, 3);
		return RF_OK;
	}
	case OP_TYPE_ARRAY: {
		size_t len_at = n >= 4 && operand(m, at, 3) < m->bound ? m->def[operand(m, at, 3)] : 0;
		uint32_t stride;
		if (!len_at || opcode(m, len_at) != OP_CONSTANT)
			return malformed(m, "a push-constant array has no constant length");
		if (!find_decoration(m, id, -1, DECORATION_ARRAY_STRIDE, &stride))
			return malformed(m, "a push-constant array has no ArrayStride");
		*out = (uint64_t)stride * operand(m, len_at, 3);
		return RF_OK;
	}
	case OP_TYPE_STRUCT: {
		uint64_t end = 0;
		for (uint32_t k = 0; k + 2 < n; k++) {
			uint32_t offset;
			uint64_t size;
			if (!find_decoration(m, id, k, DECORATION_OFFSET, &offset))
				return malformed(m, "a push-constant member has no Offset");
			if ((s = type_size(m, operand(m, at, 2 + k), depth + 1, &size)) != RF_OK)
				return s;
			end = RF_MAX(end, (uint64_t)offset + size);
		}
		*out = end;
		return RF_OK;
	}
	default:
		break;
	}
	return malformed(m, "a push-constant member is a matrix, pointer or runtime array");
}

/* The pointee of the push-constant variable's pointer type, or 0 without one. */
static enum rf_status push_block_type(const struct module *m, uint32_t *out)
{
	*out = 0;
	for (size_t at = 5; at < m->nwords; at += word_count(m, at)) {
		if (opcode(m, at) != OP_VARIABLE || word_count(m, at) < 4 ||
		    operand(m, at, 3) != STORAGE_PUSH_CONSTANT)
			continue;
		uint32_t ptr = operand(m, at, 1);
		size_t p = ptr < m->bound ? m->def[ptr] : 0;
		if (!p || opcode(m, p) != OP_TYPE_POINTER || word_count(m, p) < 4)
			return malformed(m, "the push-constant variable has no pointer type");
		*out = operand(m, p, 3);
		return RF_OK;
	}
	return RF_OK;
}

enum rf_status rf_spirv_push_size(const uint32_t *code, size_t bytes, const char *name,
				  uint32_t *out)
{
	*out = 0;
	struct module m = { code, bytes / 4, 0, NULL, name ? name : "?" };
	if (bytes % 4 || m.nwords < 5 || code[0] != SPV_MAGIC)
		return malformed(&m, "not a SPIR-V module");
	m.bound = code[3];
	m.def = calloc(m.bound ? m.bound : 1, sizeof *m.def);
	if (!m.def)
		return rf_error(RF_ERR_OOM_HOST, "reading shader '%s'", m.name);
	uint32_t block;
	uint64_t size = 0;
	enum rf_status s = index_module(&m);
	if (s == RF_OK)
		s = push_block_type(&m, &block);
	if (s == RF_OK && block)
		s = type_size(&m, block, 0, &size);
	free(m.def);
	if (s == RF_OK && size > UINT32_MAX)
		s = malformed(&m, "the push-constant block is too large");
	if (s == RF_OK)
		*out = (uint32_t)size;
	return s;
}
