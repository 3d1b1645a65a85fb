/*
** l_spawn.c: child processes for scripts that run workers side by side (one per device
** in `refract decompose --devices`), and waiting without busy loops. Lua layer (L6).
**
**   refract.spawn({ program, arg1, ... } [, { NAME = value, ... }]) -> pid
**       runs `program` (a path) with the arguments and this process's environment plus
**       the given variables; the child gets SIGTERM if this process dies.
**   refract.wait(pid [, timeout_s]) -> nil (still running after timeout_s; default:
**       wait until it ends) | "exit", code | "signal", number
**   refract.kill(pid [, "TERM"|"INT"|"KILL"])
**   refract.sleep(seconds)
** Waiting returns early when a signal arrives, so Ctrl-C reaches the script.
*/
#include "lhost.h"
#include "l_util.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* A NULL-terminated array of the strings of the list at `idx`, in a userdata left on
** the stack. The list is read raw (no __index or __len: l_util.h) and the strings stay
** anchored in the list; one with a NUL byte is refused (execve would see it cut short). */
static char **check_argv(lua_State *L, int idx)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_Unsigned n = lua_rawlen(L, idx);
	luaL_argcheck(L, n >= 1 && n < 4096, idx, "a list of 1 to 4095 strings expected");
	char **argv = lua_newuserdatauv(L, (size_t)(n + 1) * sizeof *argv, 0);
	for (lua_Integer i = 1; i <= (lua_Integer)n; i++) {
		lua_rawgeti(L, idx, i);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "spawn: argument %d is a %s, not a string", (int)i, luaL_typename(L, -1));
		argv[i - 1] = (char *)rf_lua_to_cstring(L, -1, "spawn: an argument");
		lua_pop(L, 1);
	}
	argv[n] = NULL;
	return argv;
}

/* This process's environment with the NAME = value pairs of the table at `idx` set, as
** an envp array in a userdata on the stack; the "NAME=value" strings are kept in a table
** pushed below it. */
static char **build_env(lua_State *L, int idx)
{
	size_t own = 0;
	while (environ[own])
		own++;
	lua_newtable(L);
	int strings = lua_gettop(L);
	int extra = 0;
	if (!lua_isnoneornil(L, idx)) {
		luaL_checktype(L, idx, LUA_TTABLE);
		for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
			/* Strings only (a number is not converted in place: lua_next needs the key
			** as it is), without NUL bytes, which would cut the name or value short. */
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "spawn: the environment must map names to strings");
			const char *name = rf_lua_to_cstring(L, -2, "spawn: an environment variable name");
			const char *value = rf_lua_to_cstring(L, -1, "spawn: an environment value");
			if (!*name || strchr(name, '='))
				luaL_error(L, "spawn: bad environment variable name '%s'", name);
			lua_pushfstring(L, "%s=%s", name, value);
			lua_rawseti(L, strings, ++extra);
		}
	}
	char **envp = lua_newuserdatauv(L, (own + (size_t)extra + 1) * sizeof *envp, 0);
	size_t at = 0;
	for (size_t i = 0; i < own; i++) {
		bool replaced = false;
		for (int k = 1; k <= extra && !replaced; k++) {
			lua_rawgeti(L, strings, k);
			const char *kv = lua_tostring(L, -1);
			size_t name_len = (size_t)(strchr(kv, '=') - kv);
			replaced = !strncmp(environ[i], kv, name_len + 1);
			lua_pop(L, 1);
		}
		if (!replaced)
			envp[at++] = environ[i];
	}
	for (int k = 1; k <= extra; k++) {
		lua_rawgeti(L, strings, k);
		envp[at++] = (char *)lua_tostring(L, -1);  /* anchored in `strings` */
		lua_pop(L, 1);
	}
	envp[at] = NULL;
	return envp;
}

static int l_spawn(lua_State *L)
{
	lua_settop(L, 2);
	char **argv = check_argv(L, 1);
	char **envp = build_env(L, 2);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return luaL_error(L, "spawn: %s: cannot fork: %s", argv[0], strerror(errno));
	if (pid == 0) {
		/* Only async-signal-safe calls here: the parent may have other threads. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	lua_pushinteger(L, pid);
	return 1;
}

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);  /* a signal ends it early, which is what callers want */
}

static int push_status(lua_State *L, int status)
{
	if (WIFEXITED(status)) {
		lua_pushliteral(L, "exit");
		lua_pushinteger(L, WEXITSTATUS(status));
	} else {
		lua_pushliteral(L, "signal");
		lua_pushinteger(L, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	}
	return 2;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The process id at `arg`, checked before it is narrowed to a pid_t: 2^32 + 1 became
** pid 1 (and kill signalled init), 2^32 - 1 became -1 (every process). */
static pid_t check_pid(lua_State *L, int arg)
{
	lua_Integer n = luaL_checkinteger(L, arg);
	luaL_argcheck(L, n > 0 && n <= INT_MAX, arg, "a process id expected");
	return (pid_t)n;
}

static int l_wait(lua_State *L)
{
	pid_t pid = check_pid(L, 1);
	double timeout = -1;   /* none: wait for the end */
	if (!lua_isnoneornil(L, 2)) {
		timeout = luaL_checknumber(L, 2);
		/* NaN compared false with everything and waited forever. */
		luaL_argcheck(L, timeout >= 0 && timeout <= 1e9, 2, "timeout_s must be a number of seconds in 0..1e9");
	}
	double end = now_s() + timeout;
	for (;;) {
		int status;
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return push_status(L, status);
		if (r < 0 && errno != EINTR)
			return luaL_error(L, "wait: process %d: %s", (int)pid, strerror(errno));
		if (timeout >= 0 && now_s() >= end)
			return 0;
		pause_ms(20);
	}
}

static int l_kill(lua_State *L)
{
	pid_t pid = check_pid(L, 1);
	static const char *const names[] = { "TERM", "INT", "KILL", NULL };
	static const int signals[] = { SIGTERM, SIGINT, SIGKILL };
	int which = luaL_checkoption(L, 2, "TERM", names);
	if (kill(pid, signals[which]) != 0 && errno != ESRCH)
		return luaL_error(L, "kill: process %d: %s", (int)pid, strerror(errno));
	return 0;
}

static int l_sleep(lua_State *L)
{
	double s = luaL_checknumber(L, 1);
	luaL_argcheck(L, s >= 0 && s <= 86400, 1, "seconds must be in 0..86400");
	pause_ms((long)(s * 1000));
	return 0;
}

void rf_lua_open_spawn(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "spawn", l_spawn }, { "wait", l_wait }, { "kill", l_kill }, { "sleep", l_sleep },
		{ NULL, NULL },
	};
	luaL_setfuncs(L, fns, 0);
}
