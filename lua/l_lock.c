/*
** l_lock.c: the files through which processes sharing a folder (on one machine or on
** several machines that mount it) split work: lock files, folder listings, and small
** text files written whole. Lua layer (L6).
**
**   refract.lock(path [, timeout_s]) -> lock | nil, "held by pid P on host H (renewed T)"
**   lock:refresh() -> true while the lock is still ours (it also renews it)
**   lock:release()   (also on garbage collection and at exit)
**   refract.listdir(path) -> the folder's entry names, sorted (no "." and "..")
**   refract.mkdir(path): the folder and its missing parents (mkdir -p without a shell)
**   refract.write_text(path, string): written as every output is (file_out.h): to a new
**       temporary file, flushed, renamed, so readers see the old text or the new, whole
**
** A lock is a file holding one line, "pid=P host=H boot=B start=S token=T": the holder's
** process id, host name, the host's boot id, the process's start time (clock ticks after
** boot, from /proc) and a random token. It is made whole under a private name and then
** hard-linked to `path`: link() fails if `path` exists, atomically, on local file systems
** and on NFS, so at most one process holds it and nobody ever reads half a lock.
**
** A lock left by a process that died without releasing it (kill -9, a node crash) does
** not block forever. It is stale when
**   - it was made on this host in this boot and its process is gone (kill(pid, 0) says
**     there is no such process, or the pid now belongs to a process started at another
**     time), or on this host before the last reboot;
**   - it was made on another host and has not been renewed for `timeout_s` seconds
**     (default: $REFRACT_LOCK_TIMEOUT, else 600). Holders renew their locks with
**     lock:refresh() (the file's modification time) at least that often; the clocks of
**     the hosts must agree to well within the timeout (NTP does).
** Leftovers of killed lockers next to a lock (its private files) are swept by the next
** process that takes the lock, under the same rules.
** A stale lock is taken over by renaming it aside (only one process can rename a given
** file), checking that what was moved is the stale lock that was judged, and linking a
** new one. A process whose lock was taken over (a host cut off for longer than the
** timeout) learns it from lock:refresh() and must stop writing what the lock guards.
*/
#include "lhost.h"
#include "l_util.h"
#include "file_out.h"
#include "status.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LOCK_MT "refract.Lock"
#define DIR_MT "refract.DirHandle"
#define LINE_MAX_BYTES 1024
#define TAKEOVER_ATTEMPTS 16

struct holder {
	long pid;
	unsigned long long start;
	char host[256];
	char boot[64];
	char token[40];
};

typedef struct {
	char *path;        /* NULL once released */
	char token[40];
} llock;

/* {===== who we are */

/* The first line of a small file into buf (no newline); "" if unreadable. */
static void read_line(const char *path, char *buf, size_t cap)
{
	buf[0] = '\0';
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, buf, cap - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The start time of process `pid` in clock ticks after boot (field 22 of
** /proc/PID/stat), or 0 if unknown. The process name (field 2) may hold spaces and
** parentheses, so the fields are counted from the last ')'. */
static unsigned long long process_start(long pid)
{
	char path[64], buf[LINE_MAX_BYTES];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	read_line(path, buf, sizeof buf);
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++;
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

static void host_name(char *buf, size_t cap)
{
	if (gethostname(buf, cap) != 0)
		snprintf(buf, cap, "unknown");
	buf[cap - 1] = '\0';
	/* The line is split at spaces: keep the name one word. */
	for (char *c = buf; *c; c++)
		if (*c == ' ' || *c == '=')
			*c = '_';
}

static void new_token(char *out)
{
	unsigned char r[16];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long mix = ((unsigned long long)getpid() << 32) ^ (unsigned long long)ts.tv_nsec ^
					 (unsigned long long)ts.tv_sec;
		for (size_t i = 0; i < sizeof r; i++)
			r[i] = (unsigned char)(mix >> (8 * (i % 8))) ^ (unsigned char)(i * 31);
	}
	for (size_t i = 0; i < sizeof r; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

static void self_holder(struct holder *h, const char *token)
{
	h->pid = (long)getpid();
	h->start = process_start(h->pid);
	host_name(h->host, sizeof h->host);
	read_line("/proc/sys/kernel/random/boot_id", h->boot, sizeof h->boot);
	if (!h->boot[0])
		snprintf(h->boot, sizeof h->boot, "unknown");
	snprintf(h->token, sizeof h->token, "%s", token);
}

/* }===== */

/* {===== lock files */

static bool parse_holder(const char *line, struct holder *h)
{
	memset(h, 0, sizeof *h);
	int n = sscanf(line, "pid=%ld host=%255s boot=%63s start=%llu token=%39s", &h->pid, h->host,
		       h->boot, &h->start, h->token);
	return n == 5 && h->pid > 0;
}

/* Reads the lock at `path`: 1 read (into *h, *mtime), 0 no such file, -1 unreadable or
** not a lock (*mtime still set when the file exists). */
static int read_holder(const char *path, struct holder *h, time_t *mtime)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -1;
	*mtime = st.st_mtime;
	if (!S_ISREG(st.st_mode))
		return -1;
	char line[LINE_MAX_BYTES];
	read_line(path, line, sizeof line);
	return parse_holder(line, h) ? 1 : -1;
}

static bool holder_alive(const struct holder *h, time_t mtime, double timeout)
{
	struct holder me;
	self_holder(&me, "");
	if (strcmp(h->host, me.host) != 0)
		return difftime(time(NULL), mtime) <= timeout;
	if (strcmp(h->boot, me.boot) != 0)
		return false;
	if (kill((pid_t)h->pid, 0) != 0 && errno == ESRCH)
		return false;
	unsigned long long start = process_start(h->pid);
	return start == 0 || h->start == 0 || start == h->start;
}

static void describe(char *buf, size_t cap, const struct holder *h, time_t mtime)
{
	char when[64];
	struct tm tm;
	gmtime_r(&mtime, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
	snprintf(buf, cap, "held by pid %ld on host %s (renewed %s)", h->pid, h->host, when);
}

/* Makes the lock line under a private name and links it to `path`. 1: ours; 0: `path`
** exists; -1: error (errno set). */
static int try_create(const char *path, const struct holder *me)
{
	char line[LINE_MAX_BYTES];
	int len = snprintf(line, sizeof line, "pid=%ld host=%s boot=%s start=%llu token=%s\n",
			   me->pid, me->host, me->boot, me->start, me->token);
	size_t n = strlen(path) + 64;
	char *tmp = malloc(n);
	if (!tmp) {
		errno = ENOMEM;
		return -1;
	}
	snprintf(tmp, n, "%s.%s.new", path, me->token);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	bool written = write(fd, line, (size_t)len) == len && fsync(fd) == 0;
	int err = errno;
	close(fd);
	int result = -1;
	if (written) {
		if (link(tmp, path) == 0) {
			result = 1;
		} else {
			err = errno;
			/* NFS may report a retried link() that did succeed as failed: a second name
			** on our file says it did. */
			struct stat st;
			if (stat(tmp, &st) == 0 && st.st_nlink == 2)
				result = 1;
			else if (err == EEXIST)
				result = 0;
		}
	}
	unlink(tmp);
	free(tmp);
	errno = err;
	return result;
}

/* Moves the stale lock judged as `stale` out of the way. Returns true if `path` may
** now be free; false if another process got there first (then just try again). */
static bool break_stale(const char *path, const struct holder *stale, const struct holder *me)
{
	size_t n = strlen(path) + 64;
	char *aside = malloc(n);
	if (!aside)
		return false;
	snprintf(aside, n, "%s.%s.stale", path, me->token);
	bool moved = rename(path, aside) == 0;
	if (moved) {
		struct holder got;
		time_t mtime;
		int r = read_holder(aside, &got, &mtime);
		/* What was moved is not the stale lock (someone broke it and made a fresh one
		** between our read and our rename): put it back, if its place is still free. */
		if (r == 1 && strcmp(got.token, stale->token) != 0)
			(void)link(aside, path);
		unlink(aside);
	}
	free(aside);
	return moved;
}

/* Removes what killed processes left next to the lock at `path`: its private
** "PATH.<token>.new" files (killed between making and linking one) and "PATH.<token>.stale"
** files (killed while breaking a stale lock). Each holds a lock line, and goes only if
** that process is gone by the same rules as a lock; one with no line yet (killed before
** writing it) once it is a minute old, as a live process writes it at once. */
static void sweep_leftovers(const char *path, double timeout)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	size_t dir_len = slash ? (size_t)(slash - path) : 0, base_len = strlen(base);
	char *dir = slash ? strndup(path, dir_len ? dir_len : 1) : strdup(".");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		bool ours = n > base_len + 1 && !strncmp(e->d_name, base, base_len) &&
			    e->d_name[base_len] == '.' &&
			    ((n > 4 && !strcmp(e->d_name + n - 4, ".new")) ||
			     (n > 6 && !strcmp(e->d_name + n - 6, ".stale")));
		if (!ours)
			continue;
		char *full = malloc(strlen(dir) + n + 2);
		if (!full)
			break;
		sprintf(full, "%s/%s", dir, e->d_name);
		struct holder h;
		time_t mtime = 0;
		int r = read_holder(full, &h, &mtime);
		if ((r == 1 && !holder_alive(&h, mtime, timeout)) ||
		    (r < 0 && difftime(time(NULL), mtime) > 60))
			unlink(full);
		free(full);
	}
	if (d)
		closedir(d);
	free(dir);
}

static double default_timeout(void)
{
	const char *env = getenv("REFRACT_LOCK_TIMEOUT");
	double t = env && *env ? strtod(env, NULL) : 0;
	return t > 0 ? t : 600;
}

static llock *check_lock(lua_State *L)
{
	return luaL_checkudata(L, 1, LOCK_MT);
}

/* Whether the lock file at `path` still carries `token`. */
static bool still_ours(const char *path, const char *token)
{
	struct holder h;
	time_t mtime;
	return read_holder(path, &h, &mtime) == 1 && !strcmp(h.token, token);
}

static int l_lock(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);   /* a NUL byte would name another path */
	double timeout = luaL_optnumber(L, 2, default_timeout());
	luaL_argcheck(L, timeout > 0, 2, "the timeout must be positive (seconds)");
	llock *k = lua_newuserdatauv(L, sizeof *k, 0);
	k->path = NULL;
	rf_lua_set_handle_mt(L, LOCK_MT);
	struct holder me;
	char token[40];
	new_token(token);
	self_holder(&me, token);
	for (int attempt = 0; attempt < TAKEOVER_ATTEMPTS; attempt++) {
		int r = try_create(path, &me);
		if (r < 0 && errno == ENOENT && attempt + 1 < TAKEOVER_ATTEMPTS)
			continue;  /* the folder exists, so our private file was removed: again */
		if (r < 0)
			return luaL_error(L, "lock: %s: cannot create: %s", path, strerror(errno));
		if (r == 1) {
			k->path = strdup(path);
			if (!k->path) {
				unlink(path);
				return luaL_error(L, "lock: out of memory");
			}
			memcpy(k->token, token, sizeof k->token);
			sweep_leftovers(path, timeout);
			return 1;
		}
		struct holder h;
		time_t mtime = 0;
		int got = read_holder(path, &h, &mtime);
		if (got == 0)
			continue;  /* released meanwhile */
		if (got < 0) {
			/* Not a lock line: made by other software, or half-written by a
			** fallback; only its age can tell. */
			if (difftime(time(NULL), mtime) <= timeout)
				return luaL_error(L, "lock: %s exists but is not a refract lock file "
						  "(remove it if no run is using it)", path);
			memset(&h, 0, sizeof h);
		} else if (holder_alive(&h, mtime, timeout)) {
			char msg[512];
			describe(msg, sizeof msg, &h, mtime);
			lua_pushnil(L);
			lua_pushstring(L, msg);
			return 2;
		}
		break_stale(path, &h, &me);
	}
	return luaL_error(L, "lock: %s: could not take over a stale lock (other processes keep "
			  "racing for it)", path);
}

static int lock_refresh(lua_State *L)
{
	llock *k = check_lock(L);
	bool ours = k->path && still_ours(k->path, k->token);
	if (ours && utimensat(AT_FDCWD, k->path, NULL, AT_SYMLINK_NOFOLLOW) != 0)
		return luaL_error(L, "lock: %s: cannot renew: %s", k->path, strerror(errno));
	lua_pushboolean(L, ours);
	return 1;
}

static int lock_release(lua_State *L)
{
	llock *k = check_lock(L);
	if (k->path && still_ours(k->path, k->token))
		unlink(k->path);
	free(k->path);
	k->path = NULL;
	return 0;
}

/* }===== */

/* {===== folder listings */

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dir_gc(lua_State *L)
{
	DIR **d = luaL_checkudata(L, 1, DIR_MT);
	if (*d)
		closedir(*d);
	*d = NULL;
	return 0;
}

static int l_listdir(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);   /* a NUL byte would name another path */
	/* The handle goes in a box first, so a memory error while listing still closes it. */
	DIR **d = lua_newuserdatauv(L, sizeof *d, 0);
	*d = NULL;
	rf_lua_set_handle_mt(L, DIR_MT);
	if (!(*d = opendir(path)))
		return luaL_error(L, "listdir: %s: %s", path, strerror(errno));
	lua_newtable(L);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(*d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		lua_pushstring(L, e->d_name);
		lua_rawseti(L, -2, ++n);
	}
	closedir(*d);
	*d = NULL;
	/* Sorted in C for byte order (table.sort on strings follows the locale). */
	const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, -2, i + 1);
		names[i] = lua_tostring(L, -1);
		lua_pop(L, 1);  /* still anchored in the table */
	}
	qsort(names, (size_t)n, sizeof *names, by_name);
	lua_createtable(L, n, 0);
	for (int i = 0; i < n; i++) {
		lua_pushstring(L, names[i]);
		lua_rawseti(L, -2, i + 1);
	}
	return 1;
}

/* }===== */

/* {===== folders */

/* Makes `dir` (whose bytes the caller may change) unless a folder is there: an error
** message naming `path` when it cannot, or when something else is there. */
static const char *make_one(lua_State *L, const char *path, const char *dir)
{
	if (mkdir(dir, 0777) == 0)
		return NULL;
	int err = errno;
	struct stat st;
	if (err == EEXIST && stat(dir, &st) == 0)
		return S_ISDIR(st.st_mode) ? NULL
					   : lua_pushfstring(L, "mkdir: %s: %s is not a folder", path, dir);
	return lua_pushfstring(L, "mkdir: %s: cannot create the folder %s: %s", path, dir, strerror(err));
}

/* refract.mkdir(path): the folder and its missing parents, as `mkdir -p` makes them, but
** without a shell (a name starting with '-' is a name) and with an error naming the path
** and the reason (permission denied, a file in the way, a read-only or full file system). */
static int l_mkdir(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);   /* a NUL byte would name another path */
	size_t n = strlen(path);
	if (n == 0)
		return luaL_error(L, "mkdir: an empty path names no folder");
	/* A copy owned by Lua, cut at each '/' in turn. */
	char *dir = lua_newuserdatauv(L, n + 1, 0);
	memcpy(dir, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (i < n && (dir[i] != '/' || dir[i - 1] == '/'))
			continue;
		char saved = dir[i];
		dir[i] = '\0';
		const char *problem = make_one(L, path, dir);
		dir[i] = saved;
		if (problem)
			return lua_error(L);
	}
	return 0;
}

/* }===== */

static int l_write_text(lua_State *L)
{
	const char *path = rf_lua_check_cstring(L, 1);   /* a NUL byte would name another path */
	size_t n;
	const char *text = luaL_checklstring(L, 2, &n);
	struct rf_file_out f;
	enum rf_status s = rf_file_out_open(&f, path);
	if (s == RF_OK) {
		s = rf_file_out_write(&f, text, n);
		if (s == RF_OK)
			s = rf_file_out_commit(&f);
		else
			rf_file_out_abort(&f);
	}
	if (s != RF_OK)
		return rf_lua_fail(L, s, "write_text");
	return 0;
}

void rf_lua_open_lock(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "refresh", lock_refresh }, { "release", lock_release }, { NULL, NULL },
	};
	luaL_newmetatable(L, LOCK_MT);
	lua_pushcfunction(L, lock_release);
	lua_setfield(L, -2, "__gc");
	lua_pushcfunction(L, lock_release);
	lua_setfield(L, -2, "__close");
	luaL_newlib(L, methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, DIR_MT);
	lua_pushcfunction(L, dir_gc);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	lua_pushcfunction(L, l_lock);
	lua_setfield(L, -2, "lock");
	lua_pushcfunction(L, l_listdir);
	lua_setfield(L, -2, "listdir");
	lua_pushcfunction(L, l_write_text);
	lua_setfield(L, -2, "write_text");
	lua_pushcfunction(L, l_mkdir);
	lua_setfield(L, -2, "mkdir");
}
