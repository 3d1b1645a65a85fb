/*
** main.c: the `refract` executable: a Lua 5.4 host in the manner of lua.c. It runs a
** script file, `-e CODE`, a bundled subcommand (`refract NAME` runs scripts/NAME.lua),
** or an interactive prompt; every run is a protected call with a traceback handler.
** Lua layer (L6).
*/
#include "lhost.h"
#include "l_util.h"
#include "file_in.h"
#include "paths.h"
#include "status.h"

#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gemm.h"

static const char *progname = "refract";
static lua_State *running_state;   /* for the SIGINT handler */

/* {===== interruption, as lua.c does it: the first SIGINT makes the script raise
** "interrupted!" at its next Lua instruction (so it unwinds and cleans up); a second one,
** with the default action restored, ends the process at once. */

static void stop_hook(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	luaL_error(L, "interrupted!");
}

static void on_sigint(int sig)
{
	signal(sig, SIG_DFL);
	lua_sethook(running_state, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

/* }===== */

static void print_error(const char *msg)
{
	fprintf(stderr, "%s: %s\n", progname, msg);
	fflush(stderr);
}

/* Whether a bundled command runs: its users typed a command line, not a script, so its
** errors (nearly all about their input) are shown as the message alone. */
static bool running_command;

/* Message handler: adds a traceback to string errors (as lua.c's msghandler), except to a
** bundled command's (REFRACT_TRACEBACK=1 adds it there too). */
static int msghandler(lua_State *L)
{
	const char *msg = lua_tostring(L, 1);
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
			return 1;
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	}
	const char *wanted = getenv("REFRACT_TRACEBACK");
	if (running_command && !(wanted && !strcmp(wanted, "1")))
		return 1;
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static int docall(lua_State *L, int narg, int nres)
{
	int base = lua_gettop(L) - narg;
	lua_pushcfunction(L, msghandler);
	lua_insert(L, base);
	running_state = L;
	signal(SIGINT, on_sigint);
	int status = lua_pcall(L, narg, nres, base);
	signal(SIGINT, SIG_DFL);
	lua_remove(L, base);
	return status;
}

static int report(lua_State *L, int status)
{
	if (status != LUA_OK) {
		print_error(lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	return status;
}

/* Sets the global `arg` as lua.c does: arg[0] = script, arg[1..] = its arguments,
** negative indices for what came before. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script)
{
	lua_createtable(L, argc - script - 1, script + 1);
	for (int i = 0; i < argc; i++) {
		lua_pushstring(L, argv[i]);
		lua_rawseti(L, -2, i - script);
	}
	lua_setglobal(L, "arg");
}

static int push_script_args(lua_State *L)
{
	lua_getglobal(L, "arg");
	int n = (int)luaL_len(L, -1);
	luaL_checkstack(L, n + 3, "too many arguments to script");
	for (int i = 1; i <= n; i++)
		lua_rawgeti(L, -i, i);
	lua_remove(L, -n - 1);
	return n;
}

/* package.path: the script's own folder first, then the bundled library. */
static void set_package_path(lua_State *L, const char *script)
{
	/* The script's folder, however long (a cut one would load modules from elsewhere). */
	const char *slash = script ? strrchr(script, '/') : NULL;
	if (slash)
		lua_pushlstring(L, script, (size_t)(slash - script));
	else
		lua_pushliteral(L, ".");
	const char *dir = lua_tostring(L, -1);
	lua_getglobal(L, "package");
	lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s/?.lua;%s/?/init.lua;", dir, dir,
			rf_paths_lualib(), rf_paths_lualib());
	lua_getfield(L, -2, "path");
	lua_concat(L, 2);
	lua_setfield(L, -2, "path");
	lua_pop(L, 2);
}

static int run_file(lua_State *L, const char *path)
{
	set_package_path(L, path);
	/* A script that is a FIFO would block the load, a device never end it (a missing
	** file is left to Lua's own message). */
	struct stat st;
	int status = LUA_ERRFILE;
	if (stat(path, &st) == 0 && rf_file_check_regular(path) != RF_OK)
		lua_pushstring(L, rf_error_message());
	else
		status = luaL_loadfile(L, path);
	if (status == LUA_OK) {
		int n = push_script_args(L);
		status = docall(L, n, 0);
	}
	return report(L, status);
}

static int run_string(lua_State *L, const char *code)
{
	set_package_path(L, NULL);
	int status = luaL_loadbuffer(L, code, strlen(code), "=(command line)");
	if (status == LUA_OK)
		status = docall(L, 0, 0);
	return report(L, status);
}

/* {===== interactive prompt */

static int repl(lua_State *L)
{
	set_package_path(L, NULL);
	bool tty = isatty(0);
	if (tty)
		printf("refract %s (Lua 5.4): the `refract` module is loaded; Ctrl-D quits\n", RF_VERSION);
	char line[8192];
	luaL_Buffer chunk;
	for (;;) {
		if (tty) {
			fputs("> ", stdout);
			fflush(stdout);
		}
		if (!fgets(line, sizeof line, stdin))
			break;
		/* Try "return <line>" first so expressions print, as lua.c does. */
		lua_pushfstring(L, "return %s", line);
		int status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
		lua_remove(L, -2);
		if (status != LUA_OK) {
			lua_pop(L, 1);
			luaL_buffinit(L, &chunk);
			luaL_addstring(&chunk, line);
			luaL_pushresult(&chunk);
			/* Read continuation lines while the chunk is incomplete. */
			for (;;) {
				status = luaL_loadbuffer(L, lua_tostring(L, -1), lua_rawlen(L, -1), "=stdin");
				if (status != LUA_ERRSYNTAX || !strstr(lua_tostring(L, -1), "<eof>"))
					break;
				lua_pop(L, 1);
				if (tty) {
					fputs(">> ", stdout);
					fflush(stdout);
				}
				if (!fgets(line, sizeof line, stdin))
					break;
				lua_pushstring(L, line);
				lua_concat(L, 2);
			}
			lua_remove(L, -2);
		}
		if (status == LUA_OK) {
			int base = lua_gettop(L);
			status = docall(L, 0, LUA_MULTRET);
			int n = lua_gettop(L) - base + 1;
			if (status == LUA_OK && n > 0) {
				lua_getglobal(L, "print");
				lua_insert(L, -n - 1);
				status = lua_pcall(L, n, 0, 0);
			}
		}
		if (status != LUA_OK) {
			fprintf(stderr, "%s\n", lua_tostring(L, -1));
			lua_pop(L, 1);
		}
	}
	if (tty)
		fputc('\n', stdout);
	return LUA_OK;
}

/* }===== */

static void usage(void)
{
	fprintf(stderr,
		"usage: refract SCRIPT.lua [ARGS...]   run a Lua script with the refract module\n"
		"       refract -e CODE                run a string of Lua\n"
		"       refract NAME [ARGS...]         run a bundled subcommand (refract help lists them)\n"
		"       refract                        interactive prompt\n");
}

static bool is_lua_file(const char *s)
{
	size_t n = strlen(s);
	return (n > 4 && !strcmp(s + n - 4, ".lua")) || strchr(s, '/') != NULL;
}

/* The protected main, as in lua.c: everything that can raise runs in here. */
/* os.exit(code, true) closes the state itself: mark it closing first (rf_lua_mark_closing),
** then call Lua's own os.exit (the upvalue). */
static int os_exit_closing(lua_State *L)
{
	if (lua_toboolean(L, 2))
		rf_lua_mark_closing(L);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 0);
	return 0;
}

static int mark_closing(lua_State *L)
{
	rf_lua_mark_closing(L);
	return 0;
}

static void wrap_os_exit(lua_State *L)
{
	lua_getglobal(L, "os");
	lua_getfield(L, -1, "exit");
	lua_pushcclosure(L, os_exit_closing, 1);
	lua_setfield(L, -2, "exit");
	lua_pop(L, 1);
}

static int pmain(lua_State *L)
{
	int argc = (int)lua_tointeger(L, 1);
	char **argv = (char **)lua_touserdata(L, 2);
	luaL_openlibs(L);
	wrap_os_exit(L);
	luaL_requiref(L, "refract", luaopen_refract, 1);
	lua_pop(L, 1);
	int status;
	if (argc < 2) {
		create_arg_table(L, argv, argc, 0);
		status = repl(L);
	} else if (!strcmp(argv[1], "-e")) {
		if (argc < 3) {
			usage();
			lua_pushboolean(L, 0);
			return 1;
		}
		create_arg_table(L, argv, argc, 2);
		status = run_string(L, argv[2]);
	} else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage();
		create_arg_table(L, argv, argc, 1);
		status = LUA_OK;
	} else if (is_lua_file(argv[1])) {
		create_arg_table(L, argv, argc, 1);
		status = run_file(L, argv[1]);
	} else {
		char *path = rf_paths_subcommand(argv[1]);
		if (!path) {
			fprintf(stderr, "%s: unknown command '%s' (refract help lists the commands)\n",
				progname, argv[1]);
			lua_pushboolean(L, 0);
			return 1;
		}
		/* In Lua memory, so an error raised below cannot leak it. */
		lua_pushstring(L, path);
		free(path);
		create_arg_table(L, argv, argc, 1);
		running_command = true;
		status = run_file(L, lua_tostring(L, -1));
	}
	lua_pushboolean(L, status == LUA_OK);
	return 1;
}

/* OpenBLAS picks its kernels when it loads, from OPENBLAS_CORETYPE or its own table of
** CPUs; where its choice is weaker than this CPU allows (see gemm.h) and the variable is
** unset, run again with it set. If exec fails, OpenBLAS's own choice stands. */
static void choose_blas_kernels(char **argv)
{
	const char *core = rf_host_blas_better_core();
	const char *set = getenv("OPENBLAS_CORETYPE");
	if (!core || (set && *set))
		return;
	if (setenv("OPENBLAS_CORETYPE", core, 1) == 0)
		execv("/proc/self/exe", argv);
}

int main(int argc, char **argv)
{
	choose_blas_kernels(argv);
	rf_paths_init(argv[0]);
	lua_State *L = luaL_newstate();
	if (!L) {
		print_error("cannot create the Lua state: not enough memory");
		return EXIT_FAILURE;
	}
	lua_pushcfunction(L, pmain);
	lua_pushinteger(L, argc);
	lua_pushlightuserdata(L, argv);
	int status = lua_pcall(L, 2, 1, 0);
	int ok = lua_toboolean(L, -1);
	report(L, status);
	/* Closing runs every finalizer, the context's last: it waits for the device. */
	lua_pushcfunction(L, mark_closing);   /* protected: out of memory here is no panic */
	lua_pcall(L, 0, 0, 0);
	lua_close(L);
	int validation = rf_lua_validation_failures();
	if (validation) {
		fprintf(stderr, "%s: the Vulkan validation layer reported %d message(s)\n", progname,
			validation);
		return EXIT_FAILURE;
	}
	return (ok && status == LUA_OK) ? EXIT_SUCCESS : EXIT_FAILURE;
}
