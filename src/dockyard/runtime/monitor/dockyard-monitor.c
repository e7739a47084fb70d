/*
 * dockyard-monitor: Dockyard's per-container monitor.
 *
 * A drop-in replacement for the part of conmon 2.1.6 that Dockyard uses (see
 * src/dockyard/runtime/conmon.py for the command lines and /work/shared/notes/conmon.md for
 * the protocol as conmon implements it). It is a single-threaded poll(2) loop without glib or
 * libsystemd, meant to be linked statically (gcc -static -Os) so that a monitor costs well
 * under 1 MiB of resident memory instead of conmon's ~2.4 MiB of mostly shared-library pages.
 *
 * Lifecycle (identical to conmon's):
 *
 *   launcher  parses and checks the command line (errors: stderr, exit 1), opens the log file,
 *             blocks on the _OCI_STARTPIPE until the engine writes one message (the engine
 *             moves us into a cgroup meanwhile), forks the monitor, writes the monitor's PID
 *             to -P (tmp + rename) and exits 0.
 *   monitor   setsid(), PR_SET_CHILD_SUBREAPER, stdio -> /dev/null; creates <bundle>/attach
 *             (SOCK_SEQPACKET), <bundle>/ctl and <bundle>/winsz (FIFOs); for --exec-attach
 *             writes {"data": 0} on _OCI_ATTACHPIPE; forks the runtime child which (for
 *             --exec-attach after a second start message) execs
 *               runc [--runtime-arg..] create --bundle B --pid-file P [--console-socket S] CID
 *               runc [--runtime-arg..] exec --pid-file P --process SPEC --detach [--console-socket S] CID
 *             When runc exits: failure -> {"data": -1, "message": "<runc stderr>"} on the
 *             sync pipe, exit 1; success -> read P, {"data": PID} on the sync pipe, then relay
 *             the container's stdio to the k8s-file log and to attach clients, stdin from the
 *             clients to the container, ctl messages (resize, log reopen), OOM events, and
 *             forward SIGTERM/SIGINT/SIGQUIT to the container.
 *   exit      when the container process has been reaped: drain its stdout/stderr, fsync the
 *             log, close attach clients and remove the attach socket, write
 *             <exit-dir>/<cid> (tmp + rename; decimal status, 128+N for signal N), and for
 *             exec send the status as a second sync message.
 *
 * Deliberate differences from conmon 2.1.6 (all are conmon bugs fixed in later releases or
 * behaviours nothing in Dockyard relies on):
 *   - every line of a ctl/winsz read is applied (2.1.6 applied only the first; fixed 2.2.0);
 *   - a closed sync pipe does not kill the monitor (fixed 2.1.8);
 *   - a runtime failure without stderr output still produces a sync message (fixed 2.2.0);
 *   - the --log-size-max counter starts at the current file size (fixed 2.1.10);
 *   - stdin sent by a client when the container has no stdin is discarded (conmon stopped
 *     reading that client instead);
 *   - the attach socket is removed on every exit, also after a failed create;
 *   - --exec-attach: if the engine closes the start pipe instead of sending the second start
 *     message, the exec is abandoned (conmon ran it anyway).
 * Added: --log-max-files N (Docker's json-file max-file): when --log-size-max is reached the
 * log is rotated to <log>.1 … <log>.N-1 (oldest dropped) instead of being emptied.
 * Not implemented: journald/passthrough logging, --exit-command, --sync, -T/--timeout,
 * --restore, --socket-dir-path symlinks (the attach socket is always <bundle>/attach, as
 * with --full-attach), seccomp notify, sd-notify. Unknown options are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>	/* rename() only: no stdio streams are used */
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define PROG "dockyard-monitor"
#define VERSION "1.0.0"

#define STDIO_BUF_SIZE 8192	/* container output per read() and per attach message */
#define STDIN_BUF_SIZE 32768	/* one attach-client message (conmon's CONN_SOCK_BUF_SIZE) */
#define SYNC_MESSAGE_MAX 8191	/* bytes of runtime stderr copied into a failure message */
#define CTL_BUF_SIZE 256	/* one ctl/winsz line is "<type> <h> <w>\n" */
#define LOG_IOV_MAX 64		/* iovecs gathered per writev() of log records */
#define EXIT_CACHE_SIZE 32	/* exits of not-yet-known PIDs remembered during runc create */
#define ATTACH_BACKLOG 10
#define TTY_HUP_BACKOFF_MS 100	/* pty master without any slave: poll it again after this */

enum stream { STREAM_STDOUT = 2, STREAM_STDERR = 3 };	/* also the attach header byte */

/* ---- options ---------------------------------------------------------------------------- */

static struct {
	const char *cid, *cuuid, *runtime, *bundle, *ctr_pidfile, *mon_pidfile;
	const char *exit_dir, *persist_dir, *exec_spec, *log_path;
	bool terminal, stdin_, leave_stdin_open, exec, exec_attach, no_pivot, no_new_keyring;
	bool log_driver_given;
	int api_version;
	int64_t log_size_max;
	int log_max_files;	/* files kept on rotation, the live one included (1: truncate) */
	const char **runtime_args, **runtime_opts;
	size_t n_runtime_args, n_runtime_opts;
} opt = { .log_size_max = -1, .log_max_files = 1 };

/* ---- state ------------------------------------------------------------------------------ */

struct client {
	int fd;
	bool readable;		/* still reading stdin from it */
	bool writable;		/* still sending output to it */
	size_t len, off;	/* pending stdin bytes are buf[off..len) */
	char buf[STDIN_BUF_SIZE];
};

static bool is_monitor;		/* past the launcher fork: stderr is /dev/null */
static pid_t monitor_pid;

static int sync_fd = -1, start_fd = -1, attach_pipe_fd = -1;
static int dev_null_r = -1, dev_null_w = -1;
static int sig_fd = -1;
static int bundle_fd = -1;	/* O_PATH of the bundle: attach/ctl/winsz live there */
static int attach_fd = -1;	/* listening SEQPACKET socket */
static bool attach_bound;
static int ctl_r = -1, ctl_w = -1, winsz_r = -1, winsz_w = -1;
static int console_listen_fd = -1;
static char console_dir[128], console_path[160];
static int out_fd = -1, err_fd = -1;	/* stdout pipe or pty master, stderr pipe */
static int in_fd = -1;			/* stdin pipe or a dup of the pty master */
static bool stdin_closed;		/* a client disconnect closed it for good */
static bool console_received;
static long long out_resume_at_ms = -1;	/* pty HUP back-off deadline */
static int log_fd = -1;
static int64_t log_bytes;		/* bytes written into the current log file */
static int oom_fd = -1;
static bool oom_v2;
static long oom_v2_last;
static char oom_file[PATH_MAX];		/* v1: cgroup.event_control, v2: memory.events */

static pid_t runtime_pid = -1, container_pid = -1;
static int runtime_status, container_status;
static bool runtime_done, container_done, no_children;
static struct { pid_t pid; int status; } exit_cache[EXIT_CACHE_SIZE];
static size_t n_exit_cache;
static int pending_rows = -1, pending_cols = -1;

static struct client **clients;
static size_t n_clients, cap_clients;

static char iobuf[STDIO_BUF_SIZE + 1];	/* [0] = attach header, then the payload */

/* ---- small helpers ---------------------------------------------------------------------- */

static size_t cat(char *dst, size_t cap, const char *const *parts, size_t n)
{
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = parts[i] ? parts[i] : "(null)";
		size_t l = strlen(p);
		if (len + l >= cap)
			l = cap - 1 - len;
		memcpy(dst + len, p, l);
		len += l;
	}
	dst[len] = '\0';
	return len;
}

/* Decimal of v into buf (>= 24 bytes); returns buf. */
static char *itoa_ll(char *buf, long long v)
{
	char tmp[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	size_t i = 0;
	if (v < 0)
		buf[i++] = '-';
	while (n)
		buf[i++] = tmp[--n];
	buf[i] = '\0';
	return buf;
}

static bool parse_ll(const char *s, long long *out)
{
	char *end;
	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	while (*end == ' ' || *end == '\n' || *end == '\t' || *end == '\r')
		end++;
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static ssize_t write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		left -= (size_t)w;
	}
	return (ssize_t)len;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- diagnostics -------------------------------------------------------------------------
 * Before the fork they go to stderr (the engine shows them); afterwards stderr is /dev/null,
 * so they go to syslog through /dev/log when something listens there (as conmon --syslog). */

static void say(char level, const char *first, ...)
{
	const char *parts[12];
	size_t n = 0;
	va_list ap;
	va_start(ap, first);
	for (const char *p = first; p != NULL && n < 12; p = va_arg(ap, const char *))
		parts[n++] = p;
	va_end(ap);
	char text[1024];
	cat(text, sizeof text, parts, n);
	char line[1200];
	if (!is_monitor) {
		const char *pre[] = { "[" PROG ":", (char[]){ level, 0 }, "]: ", text, "\n" };
		size_t len = cat(line, sizeof line, pre, 5);
		write_all(STDERR_FILENO, line, len);
		return;
	}
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, "/dev/log");
	char pidbuf[24];
	const char *prio = level == 'e' ? "<11>" : level == 'w' ? "<12>" : "<14>";
	const char *pre[] = { prio, PROG "[", itoa_ll(pidbuf, getpid()), "]: ",
			      opt.cid ? opt.cid : "", " <", (char[]){ level, 0 }, ">: ", text };
	size_t len = cat(line, sizeof line, pre, 9);
	sendto(s, line, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr, sizeof addr);
	close(s);
}

static void cleanup_console(void);
static void remove_attach_socket(void);
static void write_sync(int *fd, long long value, const char *message);
static bool pid_reported;	/* the sync pipe got the container PID */

/* Fatal error: report and exit 1. Before the container PID was reported the engine is still
 * waiting on the sync pipe, so it gets {"data": -1, "message": ...} there (conmon left it
 * with a bare EOF). */
static void __attribute__((noreturn)) die(const char *what, int err)
{
	char text[1024];
	const char *p[] = { what, err ? ": " : "", err ? strerror(err) : "" };
	cat(text, sizeof text, p, 3);
	say('e', text, NULL);
	if (is_monitor) {
		if (!pid_reported)
			write_sync(&sync_fd, -1, text);
		cleanup_console();
		remove_attach_socket();
	}
	_exit(1);
}

/* ---- the sync pipe ---------------------------------------------------------------------- */

/* {"data": N[, "message": "..."]}\n as one message; a vanished reader is not an error. */
static void write_sync(int *fd, long long value, const char *message)
{
	if (*fd < 0)
		return;
	const char *key = opt.api_version >= 1 ? "data" : opt.exec ? "exit_code" : "pid";
	size_t mlen = message ? strlen(message) : 0;
	size_t cap = 64 + 6 * mlen;
	char *json = malloc(cap);
	if (json == NULL)
		return;
	char num[24];
	size_t n = 0;
	const char *head[] = { "{\"", key, "\": ", itoa_ll(num, value) };
	n = cat(json, cap, head, 4);
	if (mlen > 0) {
		memcpy(json + n, ", \"message\": \"", 14);
		n += 14;
		static const char hex[] = "0123456789abcdef";
		for (size_t i = 0; i < mlen; i++) {
			unsigned char c = (unsigned char)message[i];
			if (c == '"' || c == '\\') {
				json[n++] = '\\';
				json[n++] = (char)c;
			} else if (c == '\n') {
				json[n++] = '\\';
				json[n++] = 'n';
			} else if (c == '\r') {
				json[n++] = '\\';
				json[n++] = 'r';
			} else if (c == '\t') {
				json[n++] = '\\';
				json[n++] = 't';
			} else if (c < 0x20 || c == 0x7f) {
				memcpy(json + n, "\\u00", 4);
				n += 4;
				json[n++] = hex[c >> 4];
				json[n++] = hex[c & 15];
			} else {
				json[n++] = (char)c;	/* UTF-8 passes through */
			}
		}
		json[n++] = '"';
	}
	json[n++] = '}';
	json[n++] = '\n';
	if (write_all(*fd, json, n) < 0) {
		if (errno != EPIPE)
			say('w', "cannot write to the sync pipe", NULL);
		close_fd(fd);
	}
	free(json);
}

static int fd_from_env(const char *name)
{
	const char *s = getenv(name);
	long long v;
	if (s == NULL)
		return -1;
	if (!parse_ll(s, &v) || v < 0 || v > INT_MAX)
		die("cannot parse the fd number in $_OCI_*PIPE", 0);
	if (fcntl((int)v, F_SETFD, FD_CLOEXEC) < 0)
		die("cannot make the _OCI_*PIPE fd close-on-exec", errno);
	return (int)v;
}

/* ---- files written atomically: -P, exit files ------------------------------------------- */

static int write_file_atomic(const char *path, const char *content)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 8);
	if (tmp == NULL)
		return -1;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		free(tmp);
		return -1;
	}
	int ok = fchmod(fd, 0644) == 0 && write_all(fd, content, strlen(content)) >= 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		int err = errno;
		unlink(tmp);
		free(tmp);
		errno = err;
		return -1;
	}
	free(tmp);
	return 0;
}

/* ---- the k8s-file log ------------------------------------------------------------------- */

/* "2006-01-02T15:04:05.999999999+07:00 stdout " in local time, as conmon writes it. */
static size_t k8s_timestamp(char *out, enum stream s)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
		ts.tv_sec = time(NULL);
		ts.tv_nsec = 0;
	}
	struct tm tm;
	if (localtime_r(&ts.tv_sec, &tm) == NULL)
		memset(&tm, 0, sizeof tm);
	long off = tm.tm_gmtoff;
	char sign = '+';
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	char *p = out;
	char y[24];
	itoa_ll(y, (long long)tm.tm_year + 1900);
	for (size_t i = strlen(y); i < 4; i++)
		*p++ = '0';
	p = stpcpy(p, y);
#define TWO(v) do { *p++ = (char)('0' + (v) / 10 % 10); *p++ = (char)('0' + (v) % 10); } while (0)
	*p++ = '-'; TWO(tm.tm_mon + 1);
	*p++ = '-'; TWO(tm.tm_mday);
	*p++ = 'T'; TWO(tm.tm_hour);
	*p++ = ':'; TWO(tm.tm_min);
	*p++ = ':'; TWO(tm.tm_sec);
	*p++ = '.';
	long ns = ts.tv_nsec;
	for (int i = 8; i >= 0; i--) {
		p[i] = (char)('0' + ns % 10);
		ns /= 10;
	}
	p += 9;
	*p++ = sign;
	TWO((int)(off / 3600));
	*p++ = ':';
	TWO((int)(off % 3600 / 60));
#undef TWO
	p = stpcpy(p, s == STREAM_STDERR ? " stderr " : " stdout ");
	return (size_t)(p - out);
}

static int writev_all(int fd, struct iovec *iov, int cnt)
{
	while (cnt > 0) {
		ssize_t w = writev(fd, iov, cnt);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		while (cnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* <log>.<n> into buf (size len); false when it does not fit. */
static bool rotated_name(char *buf, size_t len, int n)
{
	char digits[12];
	size_t nlen = 0;
	do {
		digits[nlen++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0);
	size_t plen = strlen(opt.log_path);
	if (plen + 1 + nlen + 1 > len)
		return false;
	memcpy(buf, opt.log_path, plen);
	buf[plen] = '.';
	for (size_t i = 0; i < nlen; i++)
		buf[plen + 1 + i] = digits[nlen - 1 - i];
	buf[plen + 1 + nlen] = '\0';
	return true;
}

/* --log-max-files: shift <log>.N-2 … <log>.1 up by one and the live log to <log>.1 (the
 * open descriptor follows the rename, so nothing written is lost), oldest dropped. */
static void rotate_logs(void)
{
	char from[PATH_MAX], to[PATH_MAX];
	for (int n = opt.log_max_files - 1; n >= 1; n--) {
		if (!rotated_name(to, sizeof(to), n))
			return;
		if (n == 1) {
			if (rename(opt.log_path, to) < 0)
				say('w', "cannot rotate ", opt.log_path, NULL);
		} else if (rotated_name(from, sizeof(from), n - 1)) {
			if (rename(from, to) < 0 && errno != ENOENT)
				say('w', "cannot rotate ", from, NULL);
		}
	}
}

/* Replace the log with a new empty file (tmp + rename), as conmon does for --log-size-max
 * and for ctl "2 0 0". The old file is kept open until the new one is in place. */
static void reopen_log(void)
{
	if (opt.log_path == NULL || log_fd < 0)
		return;
	size_t plen = strlen(opt.log_path);
	char *tmp = malloc(plen + 5);
	if (tmp == NULL)
		return;
	memcpy(tmp, opt.log_path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	fsync(log_fd);
	int fd = open(tmp, O_WRONLY | O_APPEND | O_TRUNC | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		say('w', "cannot create ", tmp, NULL);
	} else if (rename(tmp, opt.log_path) < 0) {
		say('w', "cannot rename ", tmp, NULL);
		close(fd);
		unlink(tmp);
	} else {
		close(log_fd);
		log_fd = fd;
	}
	free(tmp);
}

/* One record per line of buf: "<ts> <stream> F <line>\n", or "... P <rest>\n" for a chunk
 * that does not end a line. All records of one read share one timestamp. */
static void write_log(enum stream s, const char *buf, size_t len)
{
	if (log_fd < 0)
		return;
	char ts[64];
	size_t tslen = k8s_timestamp(ts, s);
	struct iovec iov[LOG_IOV_MAX];
	int n = 0;
	while (len > 0) {
		const char *nl = memchr(buf, '\n', len);
		bool partial = nl == NULL;
		size_t line = partial ? len : (size_t)(nl - buf) + 1;
		int64_t rec = (int64_t)(tslen + 2 + line + (partial ? 1 : 0));
		if (opt.log_size_max > 0 && log_bytes + rec > opt.log_size_max) {
			if (n > 0 && writev_all(log_fd, iov, n) < 0)
				say('w', "cannot write the log", NULL);
			n = 0;
			log_bytes = 0;
			if (opt.log_max_files > 1) {
				fsync(log_fd);
				rotate_logs();
			}
			reopen_log();
		}
		if (n + 4 > LOG_IOV_MAX) {
			if (writev_all(log_fd, iov, n) < 0)
				say('w', "cannot write the log", NULL);
			n = 0;
		}
		iov[n++] = (struct iovec){ ts, tslen };
		iov[n++] = (struct iovec){ (void *)(partial ? "P " : "F "), 2 };
		iov[n++] = (struct iovec){ (void *)buf, line };
		if (partial)
			iov[n++] = (struct iovec){ (void *)"\n", 1 };
		log_bytes += rec;
		buf += line;
		len -= line;
	}
	if (n > 0 && writev_all(log_fd, iov, n) < 0)
		say('w', "cannot write the log", NULL);
}

/* Opened before the fork, so that a bad path fails synchronously (conmon does the same).
 * --log-size-max counts from the current size (conmon >= 2.1.10; 2.1.6 started at 0). */
static void open_log(void)
{
	if (opt.log_path == NULL)
		return;
	log_fd = open(opt.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (log_fd < 0)
		die("Failed to open log file", errno);
	struct stat st;
	if (fstat(log_fd, &st) == 0)
		log_bytes = st.st_size;
}

/* ---- attach clients --------------------------------------------------------------------- */

static void drop_client(size_t i)
{
	close(clients[i]->fd);
	free(clients[i]);
	clients[i] = clients[--n_clients];
}

static void client_shutdown(size_t i, int how)
{
	struct client *c = clients[i];
	shutdown(c->fd, how);
	if (how == SHUT_RD || how == SHUT_RDWR)
		c->readable = false;
	if (how == SHUT_WR || how == SHUT_RDWR)
		c->writable = false;
	if (!c->readable && !c->writable)
		drop_client(i);
}

static void accept_clients(void)
{
	for (;;) {
		int fd = accept4(attach_fd, NULL, NULL, SOCK_CLOEXEC);	/* blocking, like conmon's */
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN)
				say('w', "cannot accept an attach client: ", strerror(errno), NULL);
			return;
		}
		if (n_clients == cap_clients) {
			size_t cap = cap_clients ? cap_clients * 2 : 4;
			struct client **grown = realloc(clients, cap * sizeof *grown);
			if (grown == NULL) {
				close(fd);
				continue;
			}
			clients = grown;
			cap_clients = cap;
		}
		/* Not calloc: the 32 KiB buffer is touched (made resident) only when used. */
		struct client *c = malloc(sizeof *c);
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->readable = c->writable = true;
		c->len = c->off = 0;
		clients[n_clients++] = c;
	}
}

/* Output to every attached client; one SEQPACKET message = header byte + payload. A client
 * that cannot take it stops receiving output (conmon: shutdown(SHUT_WR)). */
static void broadcast(const char *msg, size_t len)
{
	for (size_t i = n_clients; i > 0; i--) {
		struct client *c = clients[i - 1];
		if (!c->writable)
			continue;
		ssize_t w;
		do
			w = send(c->fd, msg, len, MSG_NOSIGNAL);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			client_shutdown(i - 1, SHUT_WR);
	}
}

static void close_stdin(void)
{
	close_fd(&in_fd);
	stdin_closed = true;
	for (size_t i = 0; i < n_clients; i++)
		clients[i]->len = clients[i]->off = 0;
}

/* Move pending client input into the container's stdin; returns true if some is left
 * (wait for POLLOUT on in_fd). */
static bool flush_stdin(void)
{
	bool left = false;
	for (size_t i = 0; i < n_clients; i++) {
		struct client *c = clients[i];
		while (c->off < c->len) {
			if (in_fd < 0) {
				if (stdin_closed)
					c->len = c->off = 0;	/* nowhere to go: dropped */
				else
					left = true;		/* the pty has not arrived yet */
				break;
			}
			ssize_t w = write(in_fd, c->buf + c->off, c->len - c->off);
			if (w > 0) {
				c->off += (size_t)w;
			} else if (w < 0 && errno == EINTR) {
				continue;
			} else if (w < 0 && errno == EAGAIN) {
				left = true;
				break;
			} else {
				close_stdin();	/* EPIPE: the container closed its stdin */
				return false;
			}
		}
		if (c->off >= c->len)
			c->len = c->off = 0;
	}
	return left;
}

static void read_client(size_t i)
{
	struct client *c = clients[i];
	ssize_t n;
	do
		n = recv(c->fd, c->buf, STDIN_BUF_SIZE, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n > 0) {
		bool has_stdin = opt.stdin_ || opt.terminal;
		if (has_stdin && !stdin_closed) {
			c->len = (size_t)n;
			c->off = 0;
			flush_stdin();
		}
		return;
	}
	/* EOF (close or shutdown(SHUT_WR) by the client) or a reset: with -i and without
	 * --leave-stdin-open the container's stdin is closed (Docker's StdinOnce). */
	if (opt.stdin_ && !opt.leave_stdin_open && in_fd >= 0)
		close_stdin();
	client_shutdown(i, SHUT_RD);
}

static void close_all_clients(void)
{
	while (n_clients > 0)
		drop_client(n_clients - 1);
	free(clients);
	clients = NULL;
	cap_clients = 0;
}

static void remove_attach_socket(void)
{
	close_fd(&attach_fd);
	if (attach_bound && bundle_fd >= 0)
		unlinkat(bundle_fd, "attach", 0);
	attach_bound = false;
}

/* ---- container output ------------------------------------------------------------------- */

/* Read once from *fd, log and broadcast it. Returns bytes read, 0 for "nothing now", -1 at
 * EOF (the fd is closed) and -2 for a pty without slave (EIO: retry later). */
static ssize_t pump_output(int *fd, enum stream s)
{
	ssize_t n;
	do
		n = read(*fd, iobuf + 1, STDIO_BUF_SIZE);
	while (n < 0 && errno == EINTR);
	if (n > 0) {
		write_log(s, iobuf + 1, (size_t)n);
		iobuf[0] = (char)s;
		broadcast(iobuf, (size_t)n + 1);
		return n;
	}
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n < 0 && errno == EIO && opt.terminal && *fd == out_fd)
		return -2;
	close_fd(fd);
	return -1;
}

/* Everything still buffered in the pipes/pty once the container process is gone. */
static void drain_output(void)
{
	if (out_fd >= 0) {
		set_nonblock(out_fd);
		while (out_fd >= 0 && pump_output(&out_fd, STREAM_STDOUT) > 0)
			;
	}
	if (err_fd >= 0) {
		set_nonblock(err_fd);
		while (err_fd >= 0 && pump_output(&err_fd, STREAM_STDERR) > 0)
			;
	}
}

/* ---- terminal: console socket, resize --------------------------------------------------- */

static void resize_pty(int rows, int cols)
{
	if (rows < 0 || cols < 0 || rows > 65535 || cols > 65535)
		return;
	pending_rows = rows;
	pending_cols = cols;
	if (!console_received || out_fd < 0)
		return;	/* applied when the pty arrives */
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (ioctl(out_fd, TIOCSWINSZ, &ws) < 0)
		say('w', "cannot resize the terminal: ", strerror(errno), NULL);
}

static void cleanup_console(void)
{
	close_fd(&console_listen_fd);
	if (console_path[0]) {
		unlink(console_path);
		console_path[0] = '\0';
	}
	if (console_dir[0]) {
		rmdir(console_dir);
		console_dir[0] = '\0';
	}
}

/* A private directory with one listening socket; runc connects to it and sends the pty
 * master over SCM_RIGHTS (--console-socket). */
static void setup_console_socket(void)
{
	const char *tmpdir = getenv("TMPDIR");
	if (tmpdir == NULL || tmpdir[0] != '/' || strlen(tmpdir) > 64)
		tmpdir = "/tmp";
	const char *d[] = { tmpdir, "/" PROG ".XXXXXX" };
	cat(console_dir, sizeof console_dir, d, 2);
	if (mkdtemp(console_dir) == NULL) {
		console_dir[0] = '\0';
		die("Failed to create a directory for the console socket", errno);
	}
	const char *p[] = { console_dir, "/console" };
	cat(console_path, sizeof console_path, p, 2);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(console_path) >= sizeof addr.sun_path)
		die("console socket path too long", 0);
	strcpy(addr.sun_path, console_path);
	console_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (console_listen_fd < 0)
		die("Failed to create the console socket", errno);
	if (bind(console_listen_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("Failed to bind the console socket", errno);
	if (listen(console_listen_fd, 4) < 0)
		die("Failed to listen on the console socket", errno);
}

/* Accept runc's connection and take the pty master; true once we have it. */
static bool receive_console(void)
{
	int c = accept4(console_listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return false;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char name[PATH_MAX];
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = { name, sizeof name };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf, .msg_controllen = sizeof control.buf };
	ssize_t n;
	do
		n = recvmsg(c, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	close(c);
	int fd = -1;
	for (struct cmsghdr *cm = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		int fds[4];
		memcpy(fds, CMSG_DATA(cm), sizeof(int) * (size_t)(nfds < 4 ? nfds : 4));
		for (int k = 0; k < nfds && k < 4; k++) {
			if (fd < 0)
				fd = fds[k];
			else
				close(fds[k]);
		}
	}
	if (fd < 0) {
		say('w', "runc connected to the console socket without sending a terminal", NULL);
		return false;
	}
	cleanup_console();	/* nothing else may connect */

	struct termios t;	/* as conmon: translate \n to \r\n on output */
	if (tcgetattr(fd, &t) == 0) {
		t.c_oflag |= ONLCR;
		tcsetattr(fd, TCSANOW, &t);
	}
	set_nonblock(fd);
	out_fd = fd;
	in_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);	/* stdin: closing it keeps output flowing */
	if (in_fd < 0)
		stdin_closed = true;
	console_received = true;
	if (pending_rows >= 0)
		resize_pty(pending_rows, pending_cols);
	flush_stdin();	/* input that arrived before the pty */
	return true;
}

/* ---- ctl and winsz FIFOs ---------------------------------------------------------------- */

struct linebuf {
	char buf[CTL_BUF_SIZE];
	size_t len;
};
static struct linebuf ctl_lines, winsz_lines;

static void ctl_line(char *line)
{
	int v[3], n = 0;
	char *p = line, *end;
	while (n < 3) {
		errno = 0;
		long x = strtol(p, &end, 10);
		if (end == p || errno || x < INT_MIN || x > INT_MAX)
			break;
		v[n++] = (int)x;
		p = end;
	}
	if (n != 3) {
		say('w', "invalid ctl message: ", line, NULL);
		return;
	}
	if (v[0] == 1)
		resize_pty(v[1], v[2]);
	else if (v[0] == 2)
		reopen_log();
	else
		say('w', "unknown ctl message type: ", line, NULL);
}

static void winsz_line(char *line)
{
	int rows, cols;
	char *end;
	rows = (int)strtol(line, &end, 10);
	if (end == line)
		return;
	char *p = end;
	cols = (int)strtol(p, &end, 10);
	if (end == p)
		return;
	resize_pty(rows, cols);
}

/* Read what is there and apply every complete line (conmon 2.1.6 applied only the first). */
static void read_lines(int fd, struct linebuf *lb, void (*handle)(char *))
{
	for (;;) {
		if (lb->len >= sizeof lb->buf - 1)
			lb->len = 0;	/* a line longer than any valid message: discard */
		ssize_t n = read(fd, lb->buf + lb->len, sizeof lb->buf - 1 - lb->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		lb->len += (size_t)n;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(lb->buf + start, '\n', lb->len - start)) != NULL) {
			*nl = '\0';
			handle(lb->buf + start);
			start = (size_t)(nl - lb->buf) + 1;
		}
		memmove(lb->buf, lb->buf + start, lb->len - start);
		lb->len -= start;
	}
}

/* A FIFO in the bundle with our own reader (non-blocking) and a dummy writer, so that the
 * last external writer closing does not flood us with POLLHUP. */
static void setup_fifo(const char *name, int *r, int *w)
{
	if (mkfifoat(bundle_fd, name, 0660) < 0) {
		if (errno != EEXIST)
			die("Failed to create a fifo in the bundle", errno);
		unlinkat(bundle_fd, name, 0);
		if (mkfifoat(bundle_fd, name, 0660) < 0)
			die("Failed to create a fifo in the bundle", errno);
	}
	*r = openat(bundle_fd, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*r < 0)
		die("Failed to open a fifo for reading", errno);
	*w = openat(bundle_fd, name, O_WRONLY | O_CLOEXEC);
	if (*w < 0)
		die("Failed to open a fifo for writing", errno);
}

static void setup_attach_socket(void)
{
	char procpath[64], num[24];
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *p[] = { "/proc/self/fd/", itoa_ll(num, bundle_fd), "/attach" };
	cat(procpath, sizeof procpath, p, 3);
	strcpy(addr.sun_path, procpath);	/* long bundle paths are fine this way */
	attach_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (attach_fd < 0)
		die("Failed to create the attach socket", errno);
	if (fchmod(attach_fd, 0700) < 0)
		die("Failed to change the attach socket permissions", errno);
	if (unlinkat(bundle_fd, "attach", 0) < 0 && errno != ENOENT)
		die("Failed to remove an existing attach socket", errno);
	if (bind(attach_fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		die("Failed to bind the attach socket", errno);
	attach_bound = true;
	if (fchmodat(bundle_fd, "attach", 0700, 0) < 0)
		die("Failed to change the attach socket permissions", errno);
	if (listen(attach_fd, ATTACH_BACKLOG) < 0)
		die("Failed to listen on the attach socket", errno);
}

/* ---- OOM -------------------------------------------------------------------------------- */

/* The cgroup directory of pid: v1 "memory" controller, or the v2 unified path. */
static bool cgroup_dir(pid_t pid, bool v2, char *out, size_t cap)
{
	char path[64], num[24];
	const char *p[] = { "/proc/", itoa_ll(num, pid), "/cgroup" };
	cat(path, sizeof path, p, 3);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *c1 = strchr(line, ':');
		char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (c2 == NULL)
			continue;
		*c2 = '\0';
		const char *ctrls = c1 + 1, *cg = c2 + 1;
		bool match = false;
		if (v2) {
			match = strcmp(line, "0") == 0 && *ctrls == '\0';
		} else {
			for (const char *s = ctrls; *s;) {
				size_t l = strcspn(s, ",");
				if (l == 6 && strncmp(s, "memory", 6) == 0)
					match = true;
				s += l + (s[l] == ',');
			}
		}
		if (!match)
			continue;
		const char *parts[] = { "/sys/fs/cgroup", v2 ? "" : "/memory", cg };
		cat(out, cap, parts, 3);
		return true;
	}
	return false;
}

/* "oom" in our working directory (the bundle; conmon 2.1.6 does the same) and in
 * --persist-dir. The engine reports OOMKilled from <bundle>/oom. */
static void write_oom_files(void)
{
	int fd = open("oom", O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
	if (fd >= 0)
		close(fd);
	if (opt.persist_dir && bundle_fd >= 0) {
		char path[PATH_MAX];
		const char *p[] = { opt.persist_dir, "/oom" };
		cat(path, sizeof path, p, 2);
		fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (fd >= 0)
			close(fd);
	}
}

static void setup_oom(pid_t pid)
{
	struct statfs sfs;
	char dir[PATH_MAX - 32];
	oom_v2 = statfs("/sys/fs/cgroup", &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
	if (!cgroup_dir(pid, oom_v2, dir, sizeof dir))
		return;
	if (oom_v2) {
		const char *p[] = { dir, "/memory.events" };
		cat(oom_file, sizeof oom_file, p, 2);
		oom_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (oom_fd >= 0 && inotify_add_watch(oom_fd, oom_file, IN_MODIFY) < 0)
			close_fd(&oom_fd);
		return;
	}
	/* v1: an eventfd registered for memory.oom_control through cgroup.event_control. */
	const char *pe[] = { dir, "/cgroup.event_control" };
	cat(oom_file, sizeof oom_file, pe, 2);
	char ctl_path[PATH_MAX];
	const char *po[] = { dir, "/memory.oom_control" };
	cat(ctl_path, sizeof ctl_path, po, 2);
	int ec = open(oom_file, O_WRONLY | O_CLOEXEC);
	if (ec < 0)
		return;
	int oc = open(ctl_path, O_RDONLY | O_CLOEXEC);
	oom_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (oc < 0 || oom_fd < 0) {
		close(ec);
		if (oc >= 0)
			close(oc);
		close_fd(&oom_fd);
		return;
	}
	char line[64], a[24], b[24];
	const char *pl[] = { itoa_ll(a, oom_fd), " ", itoa_ll(b, oc) };
	size_t len = cat(line, sizeof line, pl, 3);
	if (write_all(ec, line, len) < 0) {
		say('w', "cannot register for OOM events: ", strerror(errno), NULL);
		close_fd(&oom_fd);
	}
	close(ec);
	close(oc);	/* the registration holds its own reference */
}

static void check_oom(void)
{
	if (oom_fd < 0)
		return;
	if (oom_v2) {
		char drain[4096];
		while (read(oom_fd, drain, sizeof drain) > 0)
			;
		int fd = open(oom_file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return;
		char buf[1024];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n <= 0)
			return;
		buf[n] = '\0';
		/* memory.events: "low N\nhigh N\nmax N\noom N\noom_kill N\n..." */
		for (char *l = buf; l != NULL && *l != '\0';) {
			if (strncmp(l, "oom ", 4) == 0) {
				long c = strtol(l + 4, NULL, 10);
				if (c != oom_v2_last) {
					oom_v2_last = c;
					write_oom_files();
				}
				break;
			}
			l = strchr(l, '\n');
			if (l != NULL)
				l++;
		}
		return;
	}
	uint64_t count;
	if (read(oom_fd, &count, sizeof count) != sizeof count || count == 0)
		return;
	/* The eventfd also fires when the cgroup is removed: one event without the cgroup is
	 * that, not an OOM. */
	bool removed = access(oom_file, F_OK) < 0;
	if (count == 1 && removed)
		return;
	write_oom_files();
}

/* ---- children --------------------------------------------------------------------------- */

static int exit_code_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

static void record_container_exit(int status)
{
	container_status = status;
	container_done = true;
}

static void reap(void)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid < 0) {
			if (errno == ECHILD)
				no_children = true;
			return;
		}
		if (pid == 0)
			return;
		if (pid == runtime_pid) {
			runtime_status = status;
			runtime_done = true;
		} else if (container_pid > 0 && pid == container_pid) {
			record_container_exit(status);
		} else if (container_pid <= 0 && n_exit_cache < EXIT_CACHE_SIZE) {
			/* A fast exec process can exit before `runc exec` does: keep its status
			 * until we know its PID. */
			exit_cache[n_exit_cache].pid = pid;
			exit_cache[n_exit_cache].status = status;
			n_exit_cache++;
		}
		/* Anything else is an orphan reparented to us (we are a subreaper): reaped. */
	}
}

static void handle_signals(void)
{
	struct signalfd_siginfo si;
	bool chld = false;
	for (;;) {
		ssize_t n = read(sig_fd, &si, sizeof si);
		if (n != sizeof si)
			break;
		if (si.ssi_signo == SIGCHLD) {
			chld = true;
			continue;
		}
		/* SIGTERM/SIGINT/SIGQUIT go to the container (conmon forwards them too). */
		if (container_pid > 0 && !container_done)
			kill(container_pid, (int)si.ssi_signo);
		else if (runtime_pid > 0 && !runtime_done)
			kill(runtime_pid, (int)si.ssi_signo);
	}
	if (chld)
		reap();
}

/* ---- the main loop ---------------------------------------------------------------------- */

enum tag { T_SIG, T_ATTACH, T_CONSOLE, T_CTL, T_WINSZ, T_OUT, T_ERR, T_OOM, T_STDIN, T_CLIENT };

/* Serve every fd until done() says so. `output` enables reading the container's stdio
 * (not while runc create runs: its stderr is read whole when it fails). */
static void run_loop(bool (*done)(void), bool output)
{
	struct pollfd *pfd = NULL;
	int *tags = NULL;
	struct client **who = NULL;
	size_t cap = 0;
	while (!done()) {
		size_t need = 10 + n_clients;
		if (need > cap) {
			cap = need * 2;
			struct pollfd *np = realloc(pfd, cap * sizeof *pfd);
			if (np)
				pfd = np;
			int *nt = realloc(tags, cap * sizeof *tags);
			if (nt)
				tags = nt;
			struct client **nw = realloc(who, cap * sizeof *who);
			if (nw)
				who = nw;
			if (!np || !nt || !nw)
				die("out of memory", 0);
		}
		size_t n = 0;
		int timeout = -1;
#define ADD(fd_, ev_, tag_, c_) do { pfd[n] = (struct pollfd){ (fd_), (ev_), 0 }; tags[n] = (tag_); who[n] = (c_); n++; } while (0)
		ADD(sig_fd, POLLIN, T_SIG, NULL);
		if (attach_fd >= 0)
			ADD(attach_fd, POLLIN, T_ATTACH, NULL);
		if (console_listen_fd >= 0 && !console_received)
			ADD(console_listen_fd, POLLIN, T_CONSOLE, NULL);
		if (ctl_r >= 0)
			ADD(ctl_r, POLLIN, T_CTL, NULL);
		if (winsz_r >= 0)
			ADD(winsz_r, POLLIN, T_WINSZ, NULL);
		if (output && out_fd >= 0) {
			long long now = now_ms();
			if (out_resume_at_ms < 0 || now >= out_resume_at_ms) {
				out_resume_at_ms = -1;
				ADD(out_fd, POLLIN, T_OUT, NULL);
			} else {
				timeout = (int)(out_resume_at_ms - now);
			}
		}
		if (output && err_fd >= 0)
			ADD(err_fd, POLLIN, T_ERR, NULL);
		if (oom_fd >= 0)
			ADD(oom_fd, POLLIN, T_OOM, NULL);
		bool pending = false;
		for (size_t i = 0; i < n_clients; i++) {
			struct client *c = clients[i];
			if (c->len > c->off) {
				pending = true;	/* not read again until its input is delivered */
				continue;
			}
			/* events 0 still reports POLLHUP: a half-closed client that went away. */
			ADD(c->fd, c->readable ? POLLIN : 0, T_CLIENT, c);
		}
		if (pending && in_fd >= 0)
			ADD(in_fd, POLLOUT, T_STDIN, NULL);
#undef ADD
		int r = poll(pfd, n, timeout);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("poll failed", errno);
		}
		for (size_t k = 0; k < n; k++) {
			short re = pfd[k].revents;
			if (re == 0)
				continue;
			switch (tags[k]) {
			case T_SIG:
				handle_signals();
				break;
			case T_ATTACH:
				accept_clients();
				break;
			case T_CONSOLE:
				receive_console();
				break;
			case T_CTL:
				read_lines(ctl_r, &ctl_lines, ctl_line);
				break;
			case T_WINSZ:
				read_lines(winsz_r, &winsz_lines, winsz_line);
				break;
			case T_OUT:
				if (out_fd >= 0 && pump_output(&out_fd, STREAM_STDOUT) == -2)
					out_resume_at_ms = now_ms() + TTY_HUP_BACKOFF_MS;
				break;
			case T_ERR:
				if (err_fd >= 0)
					pump_output(&err_fd, STREAM_STDERR);
				break;
			case T_OOM:
				check_oom();
				break;
			case T_STDIN:
				/* POLLERR: the reader is gone (pipe); POLLHUP: no pty slave left. */
				if (flush_stdin() && (re & (POLLERR | POLLHUP)))
					close_stdin();
				break;
			case T_CLIENT: {
				/* Earlier handlers may have dropped clients: find it again. */
				size_t i;
				for (i = 0; i < n_clients && clients[i] != who[k]; i++)
					;
				if (i == n_clients || clients[i]->fd != pfd[k].fd)
					break;
				if (clients[i]->readable && (re & (POLLIN | POLLHUP | POLLERR)))
					read_client(i);
				else if (!clients[i]->readable && (re & (POLLHUP | POLLERR)))
					drop_client(i);
				break;
			}
			}
		}
	}
	free(pfd);
	free(tags);
	free(who);
}

static bool runtime_finished(void)
{
	return runtime_done;
}

static bool container_finished(void)
{
	return container_done || no_children;
}

/* ---- command line ----------------------------------------------------------------------- */

enum {
	O_API = 256, O_LOG_SIZE_MAX, O_EXIT_DIR, O_PERSIST_DIR, O_FULL_ATTACH, O_LEAVE_STDIN_OPEN,
	O_EXEC_ATTACH, O_EXEC_SPEC, O_RUNTIME_ARG, O_RUNTIME_OPT, O_NO_PIVOT, O_NO_NEW_KEYRING,
	O_LOG_LEVEL, O_SYSLOG, O_VERSION, O_LOG_MAX_FILES,
};

static const struct option longopts[] = {
	{ "api-version", required_argument, NULL, O_API },
	{ "cid", required_argument, NULL, 'c' },
	{ "cuuid", required_argument, NULL, 'u' },
	{ "name", required_argument, NULL, 'n' },
	{ "runtime", required_argument, NULL, 'r' },
	{ "bundle", required_argument, NULL, 'b' },
	{ "container-pidfile", required_argument, NULL, 'p' },
	{ "conmon-pidfile", required_argument, NULL, 'P' },
	{ "log-path", required_argument, NULL, 'l' },
	{ "log-size-max", required_argument, NULL, O_LOG_SIZE_MAX },
	{ "log-max-files", required_argument, NULL, O_LOG_MAX_FILES },
	{ "exit-dir", required_argument, NULL, O_EXIT_DIR },
	{ "persist-dir", required_argument, NULL, O_PERSIST_DIR },
	{ "full-attach", no_argument, NULL, O_FULL_ATTACH },
	{ "terminal", no_argument, NULL, 't' },
	{ "stdin", no_argument, NULL, 'i' },
	{ "leave-stdin-open", no_argument, NULL, O_LEAVE_STDIN_OPEN },
	{ "exec", no_argument, NULL, 'e' },
	{ "exec-attach", no_argument, NULL, O_EXEC_ATTACH },
	{ "exec-process-spec", required_argument, NULL, O_EXEC_SPEC },
	{ "runtime-arg", required_argument, NULL, O_RUNTIME_ARG },
	{ "runtime-opt", required_argument, NULL, O_RUNTIME_OPT },
	{ "no-pivot", no_argument, NULL, O_NO_PIVOT },
	{ "no-new-keyring", no_argument, NULL, O_NO_NEW_KEYRING },
	{ "log-level", required_argument, NULL, O_LOG_LEVEL },
	{ "syslog", no_argument, NULL, O_SYSLOG },
	{ "version", no_argument, NULL, O_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void __attribute__((noreturn)) usage_error(const char *what, const char *arg)
{
	say('e', "option parsing failed: ", what, arg ? arg : "", NULL);
	_exit(1);
}

/* -l DRIVER:PATH | PATH | none/off/null. Only k8s-file and none are supported. */
static void parse_log_path(const char *v)
{
	opt.log_driver_given = true;
	const char *colon = strchr(v, ':');
	if (colon == NULL) {
		if (!strcmp(v, "none") || !strcmp(v, "off") || !strcmp(v, "null"))
			return;
		if (!strcmp(v, "journald") || !strcmp(v, "passthrough") || !strcmp(v, "k8s-file"))
			die("log driver not supported (or missing its path)", 0);
		if (*v == '\0')
			die("log-path must not be empty", 0);
		opt.log_path = v;
		return;
	}
	size_t dl = (size_t)(colon - v);
	if ((dl == 4 && !strncmp(v, "none", 4)) || (dl == 3 && !strncmp(v, "off", 3)) ||
	    (dl == 4 && !strncmp(v, "null", 4)))
		return;
	if (dl == 8 && !strncmp(v, "k8s-file", 8)) {
		if (colon[1] == '\0')
			die("k8s-file requires a filename", 0);
		opt.log_path = colon + 1;
		return;
	}
	die("No such log driver (supported: k8s-file, none)", 0);
}

static void parse_args(int argc, char **argv)
{
	opt.runtime_args = calloc((size_t)argc + 1, sizeof(char *));
	opt.runtime_opts = calloc((size_t)argc + 1, sizeof(char *));
	if (!opt.runtime_args || !opt.runtime_opts)
		die("out of memory", 0);
	opterr = 0;
	int c;
	long long v;
	while ((c = getopt_long(argc, argv, "+c:u:n:r:b:p:P:l:tie", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt.cid = optarg; break;
		case 'u': opt.cuuid = optarg; break;
		case 'n': break;	/* only used by conmon's journald driver */
		case 'r': opt.runtime = optarg; break;
		case 'b': opt.bundle = optarg; break;
		case 'p': opt.ctr_pidfile = optarg; break;
		case 'P': opt.mon_pidfile = optarg; break;
		case 'l': parse_log_path(optarg); break;
		case 't': opt.terminal = true; break;
		case 'i': opt.stdin_ = true; break;
		case 'e': opt.exec = true; break;
		case O_API:
			if (!parse_ll(optarg, &v) || v < 0 || v > 100)
				usage_error("Cannot parse integer value for --api-version: ", optarg);
			opt.api_version = (int)v;
			break;
		case O_LOG_SIZE_MAX:
			if (!parse_ll(optarg, &v))
				usage_error("Cannot parse integer value for --log-size-max: ", optarg);
			opt.log_size_max = v;
			break;
		case O_LOG_MAX_FILES:
			if (!parse_ll(optarg, &v) || v < 1 || v > 1000)
				usage_error("Cannot parse integer value for --log-max-files: ", optarg);
			opt.log_max_files = (int)v;
			break;
		case O_EXIT_DIR: opt.exit_dir = optarg; break;
		case O_PERSIST_DIR: opt.persist_dir = optarg; break;
		case O_FULL_ATTACH: break;	/* always: the socket is <bundle>/attach */
		case O_LEAVE_STDIN_OPEN: opt.leave_stdin_open = true; break;
		case O_EXEC_ATTACH: opt.exec_attach = true; break;
		case O_EXEC_SPEC: opt.exec_spec = optarg; break;
		case O_RUNTIME_ARG: opt.runtime_args[opt.n_runtime_args++] = optarg; break;
		case O_RUNTIME_OPT: opt.runtime_opts[opt.n_runtime_opts++] = optarg; break;
		case O_NO_PIVOT: opt.no_pivot = true; break;
		case O_NO_NEW_KEYRING: opt.no_new_keyring = true; break;
		case O_LOG_LEVEL:
			if (strcmp(optarg, "error") && strcmp(optarg, "fatal") && strcmp(optarg, "panic") &&
			    strcmp(optarg, "warn") && strcmp(optarg, "warning") && strcmp(optarg, "info") &&
			    strcmp(optarg, "debug") && strcmp(optarg, "trace"))
				die("No such log level", 0);
			break;
		case O_SYSLOG: break;
		case O_VERSION: {
			static const char text[] = PROG " version " VERSION "\n";
			write_all(STDOUT_FILENO, text, sizeof text - 1);
			exit(0);
		}
		case ':':
			usage_error("Missing argument for ", argv[optind - 1]);
		default:
			usage_error("Unknown option ", argv[optind - 1]);
		}
	}
	if (optind < argc)
		usage_error("Unexpected argument ", argv[optind]);
}

static void check_args(void)
{
	if (opt.cid == NULL)
		die("Container ID not provided. Use --cid", 0);
	if (opt.exec_attach && !opt.exec)
		die("Attach can only be specified with exec", 0);
	if (opt.exec_attach && opt.api_version < 1)
		die("Attach can only be specified for a non-legacy exec session", 0);
	if (opt.cuuid == NULL && (!opt.exec || opt.api_version >= 1))
		die("Container UUID not provided. Use --cuuid", 0);
	if (opt.runtime == NULL)
		die("Runtime path not provided. Use --runtime", 0);
	if (access(opt.runtime, X_OK) < 0) {
		int err = errno;
		const char *p[] = { "Runtime path ", opt.runtime, " is not valid" };
		char m[PATH_MAX + 64];
		cat(m, sizeof m, p, 3);
		die(m, err);
	}
	static char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof cwd) == NULL)
		die("Failed to get working directory", errno);
	if (opt.bundle == NULL && !opt.exec)
		opt.bundle = cwd;
	if (opt.exec && opt.exec_spec == NULL)
		die("Exec process spec path not provided. Use --exec-process-spec", 0);
	if (opt.ctr_pidfile == NULL) {
		size_t l = strlen(cwd) + strlen(opt.cid) + 16;
		char *p = malloc(l);
		if (p == NULL)
			die("out of memory", 0);
		const char *parts[] = { cwd, "/pidfile-", opt.cid };
		cat(p, l, parts, 3);
		opt.ctr_pidfile = p;
	}
	if (!opt.log_driver_given)
		die("Log driver not provided. Use --log-path", 0);
}

/* ---- the runtime child ------------------------------------------------------------------ */

static char **runtime_argv(void)
{
	size_t n = 0, cap = opt.n_runtime_args + opt.n_runtime_opts + 16;
	const char **a = calloc(cap, sizeof *a);
	if (a == NULL)
		die("out of memory", 0);
	a[n++] = opt.runtime;
	for (size_t i = 0; i < opt.n_runtime_args; i++)
		a[n++] = opt.runtime_args[i];
	if (opt.exec) {
		a[n++] = "exec";
		a[n++] = "--pid-file";
		a[n++] = opt.ctr_pidfile;
		a[n++] = "--process";
		a[n++] = opt.exec_spec;
		a[n++] = "--detach";
	} else {
		a[n++] = "create";
		a[n++] = "--bundle";
		a[n++] = opt.bundle;
		a[n++] = "--pid-file";
		a[n++] = opt.ctr_pidfile;
		if (opt.no_pivot)
			a[n++] = "--no-pivot";
		if (opt.no_new_keyring)
			a[n++] = "--no-new-keyring";
	}
	for (size_t i = 0; i < opt.n_runtime_opts; i++)
		a[n++] = opt.runtime_opts[i];
	if (opt.terminal) {
		a[n++] = "--console-socket";
		a[n++] = console_path;
	}
	a[n++] = opt.cid;
	a[n] = NULL;
	return (char **)a;
}

static void oom_adjust(const char *value)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, value, strlen(value)) < 0) {
			/* needs CAP_SYS_RESOURCE for negative values: best effort */
		}
		close(fd);
	}
}

static pid_t spawn_runtime(char **argv, int in, int out, int err, const sigset_t *oldmask)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* child */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != monitor_pid)
		_exit(1);	/* the monitor died before PDEATHSIG was armed */
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	if (opt.exec_attach && start_fd >= 0) {
		/* The engine connects to the attach socket, then releases us (start #2); EOF
		 * means it gave up on this exec. */
		char b[256];
		ssize_t n;
		do
			n = read(start_fd, b, sizeof b);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			_exit(1);
	}
	if (dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0)
		_exit(127);
	oom_adjust("0");
	execv(argv[0], argv);
	_exit(127);
}

/* ---- main ------------------------------------------------------------------------------- */

static long long read_pidfile(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char buf[32];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	long long v;
	return parse_ll(buf, &v) && v > 0 && v <= INT_MAX ? v : -1;
}

static void report_runtime_failure(void)
{
	/* runc's own words are on its stderr (our pipe); it has exited, so read what is there
	 * without blocking (anything still holding the pipe must not hang us). */
	char msg[SYNC_MESSAGE_MAX + 1];
	size_t len = 0;
	if (err_fd >= 0) {
		set_nonblock(err_fd);
		while (len < SYNC_MESSAGE_MAX) {
			ssize_t n = read(err_fd, msg + len, SYNC_MESSAGE_MAX - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	msg[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (msg[i] == '\0')
			msg[i] = ' ';
	if (len == 0) {
		char code[24];
		const char *p[] = { "runtime failed with exit status ",
				    itoa_ll(code, exit_code_of(runtime_status)) };
		cat(msg, sizeof msg, p, 2);
	}
	say('e', "runtime failed: ", msg, NULL);
	write_sync(&sync_fd, -1, msg);
}

int main(int argc, char **argv)
{
	parse_args(argc, argv);
	check_args();
	open_log();
	oom_adjust("-1000");
	signal(SIGPIPE, SIG_IGN);

	/* Wait for the engine's go (it places us in a cgroup meanwhile). */
	start_fd = fd_from_env("_OCI_STARTPIPE");
	if (start_fd >= 0) {
		char b[256];
		ssize_t n;
		do
			n = read(start_fd, b, sizeof b);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			die("start-pipe read failed", errno);
		if (!opt.exec_attach)
			close_fd(&start_fd);
	}
	dev_null_r = open("/dev/null", O_RDONLY | O_CLOEXEC);
	dev_null_w = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (dev_null_r < 0 || dev_null_w < 0)
		die("Failed to open /dev/null", errno);

	/* Launcher: fork the monitor, publish its PID, exit. */
	pid_t child = fork();
	if (child < 0)
		die("Failed to fork the monitor", errno);
	if (child > 0) {
		if (opt.mon_pidfile) {
			char num[24];
			if (write_file_atomic(opt.mon_pidfile, itoa_ll(num, child)) < 0) {
				int err = errno;
				kill(child, SIGKILL);
				die("Failed to write the monitor pid file", err);
			}
		}
		_exit(0);
	}

	/* Monitor. */
	is_monitor = true;
	monitor_pid = getpid();
	sync_fd = fd_from_env("_OCI_SYNCPIPE");
	if (opt.exec_attach) {
		attach_pipe_fd = fd_from_env("_OCI_ATTACHPIPE");
		if (attach_pipe_fd < 0)
			die("--exec-attach specified but _OCI_ATTACHPIPE was not", 0);
	}
	if (dup2(dev_null_r, STDIN_FILENO) < 0 || dup2(dev_null_w, STDOUT_FILENO) < 0 ||
	    dup2(dev_null_w, STDERR_FILENO) < 0)
		die("Failed to redirect stdio to /dev/null", errno);
	setsid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("Failed to become a subreaper", errno);

	/* The container's stdio: a pty from runc, or pipes. stderr is always a pipe: it also
	 * carries runc's own error message. */
	int w_in = -1, w_out = -1, w_err = -1, fds[2];
	if (opt.terminal) {
		setup_console_socket();
	} else {
		if (opt.stdin_) {
			if (pipe2(fds, O_CLOEXEC) < 0)
				die("Failed to create the stdin pipe", errno);
			in_fd = fds[1];
			w_in = fds[0];
			set_nonblock(in_fd);
		}
		if (pipe2(fds, O_CLOEXEC) < 0)
			die("Failed to create the stdout pipe", errno);
		out_fd = fds[0];
		w_out = fds[1];
	}
	if (pipe2(fds, O_CLOEXEC) < 0)
		die("Failed to create the stderr pipe", errno);
	err_fd = fds[0];
	w_err = fds[1];

	if (opt.bundle) {
		bundle_fd = open(opt.bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (bundle_fd < 0)
			die("Failed to open the bundle directory", errno);
		setup_attach_socket();
		setup_fifo("ctl", &ctl_r, &ctl_w);
		setup_fifo("winsz", &winsz_r, &winsz_w);
		if (opt.exec_attach) {
			write_sync(&attach_pipe_fd, 0, NULL);	/* {"data": 0}: connect now */
			close_fd(&attach_pipe_fd);
		}
	}

	sigset_t mask, oldmask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGQUIT);
	if (sigprocmask(SIG_BLOCK, &mask, &oldmask) < 0)
		die("Failed to block signals", errno);
	sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		die("Failed to create a signalfd", errno);

	char **rargv = runtime_argv();
	runtime_pid = spawn_runtime(rargv, w_in >= 0 ? w_in : dev_null_r,
				    w_out >= 0 ? w_out : dev_null_w, w_err, &oldmask);
	if (runtime_pid < 0)
		die("Failed to fork the runtime", errno);
	free(rargv);
	close_fd(&start_fd);
	close_fd(&w_in);
	close_fd(&w_out);
	close_fd(&w_err);

	/* Phase 1: runc create/exec runs; attach clients, ctl and the console are served. */
	run_loop(runtime_finished, false);
	if (!WIFEXITED(runtime_status) || WEXITSTATUS(runtime_status) != 0) {
		report_runtime_failure();
		pid_reported = true;
		cleanup_console();
		remove_attach_socket();
		return 1;
	}
	if (opt.terminal && !console_received) {
		/* runc sent the pty before exiting; it may still sit in the listen queue. */
		struct pollfd p = { console_listen_fd, POLLIN, 0 };
		if (console_listen_fd >= 0 && poll(&p, 1, 2000) > 0)
			receive_console();
		if (!console_received) {
			die("Runtime did not set up terminal", 0);
		}
	}
	long long pid = read_pidfile(opt.ctr_pidfile);
	if (pid <= 0) {
		die("Failed to read the container pid file", 0);
	}
	container_pid = (pid_t)pid;
	if (opt.api_version >= 1 || !opt.exec)
		write_sync(&sync_fd, container_pid, NULL);
	pid_reported = true;
	setup_oom(container_pid);
	for (size_t i = 0; i < n_exit_cache; i++)
		if (exit_cache[i].pid == container_pid)
			record_container_exit(exit_cache[i].status);

	/* Phase 2: the container runs. */
	run_loop(container_finished, true);

	/* Exit: OOM, output, log, clients, then the exit file (so the log is complete once the
	 * exit file exists), then the exec status. */
	check_oom();
	drain_output();
	if (log_fd >= 0)
		fsync(log_fd);
	close_all_clients();
	remove_attach_socket();
	int code = container_done ? exit_code_of(container_status) : -1;
	char status[24];
	itoa_ll(status, code);
	if (opt.persist_dir) {
		char path[PATH_MAX];
		const char *p[] = { opt.persist_dir, "/exit" };
		cat(path, sizeof path, p, 2);
		if (write_file_atomic(path, status) < 0)
			say('w', "cannot write ", path, NULL);
	}
	if (opt.exit_dir) {
		char path[PATH_MAX];
		const char *p[] = { opt.exit_dir, "/", opt.cid };
		cat(path, sizeof path, p, 3);
		if (write_file_atomic(path, status) < 0)
			say('w', "cannot write the exit file ", path, NULL);
	}
	if (opt.exec)
		write_sync(&sync_fd, code, NULL);
	close_fd(&sync_fd);
	close_fd(&log_fd);
	reap();
	return 0;
}
