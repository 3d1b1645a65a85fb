/*
** paths.c: locating the bundled scripts, Lua library and data. Every path is held in a
** string of the length it needs: a fixed buffer would cut a long path and name another
** folder. Lua layer (L6).
*/
#include "paths.h"
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *root, *lualib, *scripts, *data;

/* "a" "b" in a new string; exits on OOM (only at start-up, before anything runs). */
static char *concat(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	char *p = malloc(n + m + 1);
	if (!p) {
		fputs("refract: out of memory at start-up\n", stderr);
		exit(EXIT_FAILURE);
	}
	memcpy(p, a, n);
	memcpy(p + n, b, m + 1);
	return p;
}

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_scripts(const char *dir)
{
	char *p = concat(dir, "/scripts");
	bool yes = is_dir(p);
	free(p);
	return yes;
}

/* The running executable's folder (malloc'd), or NULL. */
static char *exe_dir(void)
{
	for (size_t size = 256; size <= (1u << 20); size *= 2) {
		char *buf = malloc(size);
		if (!buf)
			return NULL;
		ssize_t n = readlink("/proc/self/exe", buf, size);
		if (n > 0 && (size_t)n < size) {
			buf[n] = '\0';
			char *slash = strrchr(buf, '/');
			if (slash)
				*slash = '\0';
			return buf;
		}
		free(buf);
		if (n <= 0)
			return NULL;
	}
	return NULL;
}

void rf_paths_init(const char *argv0)
{
	(void)argv0;
	const char *env = getenv("REFRACT_HOME");
	char *exe = exe_dir();
	char *installed = exe ? concat(exe, "/../share/refract") : NULL;
	if (env && *env)
		root = concat(env, "");
	else if (installed && has_scripts(installed) && (root = realpath(installed, NULL)))
		;
	else
		root = concat(RF_SOURCE_DIR, "");
	free(installed);
	free(exe);
	lualib = concat(root, "/lua/lib");
	scripts = concat(root, "/scripts");
	data = concat(root, "/scripts/data");
}

const char *rf_paths_root(void)
{
	return root;
}

const char *rf_paths_lualib(void)
{
	return lualib;
}

const char *rf_paths_scripts(void)
{
	return scripts;
}

const char *rf_paths_data(void)
{
	return data;
}

char *rf_paths_subcommand(const char *name)
{
	if (!*name || strchr(name, '/') || name[0] == '.')
		return NULL;
	char *dir = concat(scripts, "/"), *file = concat(name, ".lua"), *path = concat(dir, file);
	free(dir);
	free(file);
	struct stat st;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
		return path;
	free(path);
	return NULL;
}

int rf_lua_validation_failures(void)
{
	return (int)rf_validation_total();
}
