/*
** paths.c: locating the bundled scripts, Lua library and data. Lua layer (L6).
*/
#include "paths.h"
#include "device.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];
static char lualib[PATH_MAX + 16];
static char scripts[PATH_MAX + 16];
static char data[PATH_MAX + 16];

static bool is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_scripts(const char *dir)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/scripts", dir);
	return is_dir(p);
}

void rf_paths_init(const char *argv0)
{
	(void)argv0;
	const char *env = getenv("REFRACT_HOME");
	char exe[PATH_MAX] = "";
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
	}
	char installed[PATH_MAX + 32];
	snprintf(installed, sizeof installed, "%s/../share/refract", exe);
	if (env && *env)
		snprintf(root, sizeof root, "%s", env);
	else if (exe[0] && has_scripts(installed) && realpath(installed, root))
		;
	else
		snprintf(root, sizeof root, "%s", RF_SOURCE_DIR);
	snprintf(lualib, sizeof lualib, "%s/lua/lib", root);
	snprintf(scripts, sizeof scripts, "%s/scripts", root);
	snprintf(data, sizeof data, "%s/scripts/data", root);
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

bool rf_paths_subcommand(const char *name, char *buf, size_t size)
{
	if (!*name || strchr(name, '/') || name[0] == '.')
		return false;
	snprintf(buf, size, "%s/%s.lua", scripts, name);
	struct stat st;
	return stat(buf, &st) == 0 && S_ISREG(st.st_mode);
}

int rf_lua_validation_failures(void)
{
	return (int)rf_validation_total();
}
