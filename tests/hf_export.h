/*
** hf_export.h: test tools that rewrite open_clip data in Hugging Face's layout from the
** public naming, so tests can check that both layouts give identical results:
** the tokenizer files (vocab.json + merges.txt) and a whole CLIP model directory
** (config.json + model.safetensors with split q/k/v projections).
*/
#ifndef RF_TESTS_HF_EXPORT_H
#define RF_TESTS_HF_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

/* The character GPT-2/CLIP write for byte b (UTF-8, NUL-terminated, in out[3]); returns
** its length. */
size_t rf_test_byte_char(unsigned b, char *out);

/* vocab.json and merges.txt from open_clip's bpe_simple_vocab_16e6.txt.gz. */
bool rf_test_write_hf_vocab(const char *vocab_gz, const char *vocab_path, const char *merges_path);

/* The open_clip model in `src_dir` rewritten into `dst_dir` (which must exist) in Hugging
** Face transformers' CLIPModel layout, with the tokenizer files from `vocab_gz`. */
bool rf_test_write_hf_model(const char *src_dir, const char *vocab_gz, const char *dst_dir);

#endif
