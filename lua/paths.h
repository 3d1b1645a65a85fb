/*
** paths.h: where the bundled scripts, Lua library and data are: $REFRACT_HOME if set,
** else the install's share/refract next to the executable, else the source tree the
** binary was built from (so a build runs without installing). Lua layer (L6).
*/
#ifndef RF_LUA_PATHS_H
#define RF_LUA_PATHS_H

#include <stdbool.h>
#include <stddef.h>

void rf_paths_init(const char *argv0);
/* The root holding scripts/ and lua/lib/. */
const char *rf_paths_root(void);
const char *rf_paths_lualib(void);
const char *rf_paths_scripts(void);
/* The bundled data (the tokenizer's vocabulary, the example model and images):
** scripts/data under the root, installed with the scripts. */
const char *rf_paths_data(void);
/* The path of the bundled subcommand NAME (scripts/NAME.lua, malloc'd: the caller frees
** it), or NULL if there is none. */
char *rf_paths_subcommand(const char *name);
/* Validation messages counted over the whole run (see device.h). */
int rf_lua_validation_failures(void);

#endif
