/*
 * send.c: hands a composed message to the MTA, by a sendmail(1) pipe
 * or by SMTP to a loopback listener.
 *
 * The pipe runs COMMAND without a shell, in its own process group, with
 * only stdin, stdout and stderr open; it writes the message while it
 * reads what the command says, so neither side can block the other,
 * and kills the group when the time is up. SMTP speaks the plain
 * client side of RFC 5321 (EHLO, falling back to HELO; one sender, one
 * recipient per mail; no TLS, no AUTH, no pipelining), only to loopback
 * hosts, since the mail crosses no network. A session (one outbox pass)
 * keeps its connection for up to SESSION_MAILS_MAX mails, since a
 * connection and greeting cost more than the mail itself; a mail the
 * MTA refused is followed by RSET, anything else by a new connection.
 * Both transports keep at most SEND_OUTPUT_CAP bytes of what the MTA
 * said and show a printable, capped part of it in the error. SIGPIPE
 * is held off while writing, so a command that exits early cannot kill
 * the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <glib-unix.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common/error.h"
#include "common/text.h"
#include "outbox/send.h"

/* What the MTA says: bytes kept, and bytes of that shown in an error. */
#define SEND_OUTPUT_CAP 4096
#define SEND_SHOWN_CAP 300
/* RFC 5321 4.5.3.1.5: a reply line is at most 512 bytes; allow more. */
#define SMTP_LINE_MAX 2048
#define SMTP_REPLY_LINES_MAX 64
#define SEND_ADDRESS_MAX 254

enum send_kind { SEND_SENDMAIL, SEND_SMTP };

struct send_target {
	enum send_kind kind;
	char **argv;		/* sendmail: COMMAND split on spaces */
	char *host;		/* smtp: loopback address or "localhost" */
	char *port;
	int timeout;		/* seconds for one message */
};

/* Mails over one SMTP connection before it is closed and reopened. */
#define SESSION_MAILS_MAX 100

/* An SMTP connection: the socket, unread input and the time limit. */
struct smtp {
	int fd;			/* -1: not connected */
	GString *input;
	gint64 deadline;
	const char *where;	/* "HOST:PORT" for errors */
	int last_code;		/* of the last reply; -1: none could be read */
};

/* Several mails in a row to one target (see send.h). */
struct send_session {
	const struct send_target *target;
	struct smtp smtp;
	char *where;
	int mails;		/* taken over this connection */
};

gboolean
send_address_valid(const char *address)
{
	size_t len;

	if (address == NULL)
		return FALSE;
	len = strlen(address);
	if (len == 0 || len > SEND_ADDRESS_MAX || address[0] == '-')
		return FALSE;
	for (const char *p = address; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || strchr("<>()[],;:\"\\", *p))
			return FALSE;
	return TRUE;
}

static gboolean
host_loopback(const char *host)
{
	struct in6_addr v6;
	struct in_addr v4;

	if (g_ascii_strcasecmp(host, "localhost") == 0)
		return TRUE;
	if (inet_pton(AF_INET, host, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &v6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&v6);
	return FALSE;
}

static gboolean
port_valid(const char *port)
{
	guint64 number;

	return g_ascii_string_to_unsigned(port, 10, 1, 65535, &number,
	    NULL);
}

/* "smtp:HOST:PORT", HOST maybe in brackets ("[::1]"). */
static struct send_target *
parse_smtp(const char *spec, GError **error)
{
	const char *rest = spec + strlen("smtp:");
	const char *colon = strrchr(rest, ':');
	struct send_target *target;
	char *host;

	if (colon == NULL || colon == rest || !port_valid(colon + 1)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "outbox target "
		    "\"%s\": want smtp:HOST:PORT with a port from 1 to 65535",
		    spec);
		return NULL;
	}
	host = g_strndup(rest, (gsize)(colon - rest));
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = '\0';
	}
	if (!host_loopback(host)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "outbox target "
		    "\"%s\": host \"%s\" is not a loopback address "
		    "(127.0.0.0/8, ::1 or localhost)", spec, host);
		g_free(host);
		return NULL;
	}

	target = g_new0(struct send_target, 1);
	target->kind = SEND_SMTP;
	target->host = host;
	target->port = g_strdup(colon + 1);
	target->timeout = SEND_TIMEOUT;
	return target;
}

/* "/path/to/sendmail [OPTION...]", split on blanks, no shell. */
static struct send_target *
parse_sendmail(const char *spec, GError **error)
{
	char **words = g_strsplit_set(spec, " \t", -1);
	GPtrArray *argv = g_ptr_array_new();
	struct send_target *target;

	for (char **w = words; *w != NULL; w++)
		if (**w != '\0')
			g_ptr_array_add(argv, g_strdup(*w));
	g_ptr_array_add(argv, NULL);
	g_strfreev(words);

	if (argv->pdata[0] == NULL || *(char *)argv->pdata[0] != '/') {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "outbox target "
		    "\"%s\": want an absolute path to sendmail(1) or "
		    "smtp:HOST:PORT", spec);
		g_strfreev((char **)g_ptr_array_free(argv, FALSE));
		return NULL;
	}

	target = g_new0(struct send_target, 1);
	target->kind = SEND_SENDMAIL;
	target->argv = (char **)g_ptr_array_free(argv, FALSE);
	target->timeout = SEND_TIMEOUT;
	return target;
}

struct send_target *
send_target_parse(const char *spec, GError **error)
{
	if (spec == NULL || *spec == '\0') {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
		    "outbox target: empty");
		return NULL;
	}
	if (g_str_has_prefix(spec, "smtp:"))
		return parse_smtp(spec, error);
	return parse_sendmail(spec, error);
}

void
send_target_free(struct send_target **target)
{
	if (target == NULL || *target == NULL)
		return;
	g_strfreev((*target)->argv);
	g_free((*target)->host);
	g_free((*target)->port);
	g_free(*target);
	*target = NULL;
}

void
send_target_set_timeout(struct send_target *target, int seconds)
{
	target->timeout = seconds > 0 ? seconds : SEND_TIMEOUT;
}

int
send_target_check(const struct send_target *target, GError **error)
{
	if (target->kind != SEND_SENDMAIL)
		return 0;
	if (g_file_test(target->argv[0], G_FILE_TEST_IS_REGULAR) &&
	    access(target->argv[0], X_OK) == 0)
		return 0;
	g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "outbox target %s: "
	    "not an executable file", target->argv[0]);
	return -1;
}

int
send_target_timeout(const struct send_target *target)
{
	return target->timeout;
}

/* Milliseconds left until DEADLINE (monotonic microseconds), or 0. */
static int
ms_left(gint64 deadline)
{
	gint64 left = deadline - g_get_monotonic_time();

	if (left <= 0)
		return 0;
	return (int)MIN((left + 999) / 1000, G_MAXINT);
}

/* What the MTA said, on one line, printable and capped. */
static char *
output_shown(const GString *output)
{
	char *flat = g_strndup(output->str, output->len);
	char *shown;

	g_strstrip(flat);
	for (char *p = flat; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	shown = text_printable(*flat != '\0' ? flat : "(no output)",
	    SEND_SHOWN_CAP);
	g_free(flat);
	return shown;
}

static void
output_add(GString *output, const char *data, size_t len)
{
	size_t room = SEND_OUTPUT_CAP - MIN(output->len, SEND_OUTPUT_CAP);

	g_string_append_len(output, data, (gssize)MIN(len, room));
}

/*
 * The child's side: COMMAND with the message on stdin and stdout and
 * stderr to the parent. Only async-signal-safe calls from here on, so
 * the words for a failed exec were written before the fork.
 */
static void G_GNUC_NORETURN
sendmail_child(char **argv, int in_fd, int out_fd, const char *failed)
{
	sigset_t none;
	ssize_t ignored;

	/* Lift both ends above 2 first, in case we run without stdio. */
	setpgid(0, 0);
	in_fd = fcntl(in_fd, F_DUPFD, 3);
	out_fd = fcntl(out_fd, F_DUPFD, 3);
	if (in_fd < 0 || out_fd < 0 || dup2(in_fd, STDIN_FILENO) < 0 ||
	    dup2(out_fd, STDOUT_FILENO) < 0 || dup2(out_fd, STDERR_FILENO) < 0)
		_exit(127);
	close_range(3, ~0U, 0);
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	execv(argv[0], argv);
	ignored = write(STDERR_FILENO, failed, strlen(failed));
	(void)ignored;
	_exit(127);
}

/* Write some of the message to IN_FD; -1 if the command stopped it. */
static int
pipe_write_some(int *in_fd, const char *data, gsize len, gsize *sent)
{
	ssize_t n = write(*in_fd, data + *sent, MIN(len - *sent, 65536));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n < 0) {
		close(*in_fd);
		*in_fd = -1;
		return -1;
	}
	*sent += (gsize)n;
	if (*sent == len) {
		close(*in_fd);
		*in_fd = -1;
	}
	return 0;
}

static void
pipe_read_some(int *out_fd, GString *output)
{
	char buf[4096];
	ssize_t n = read(*out_fd, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close(*out_fd);
		*out_fd = -1;
		return;
	}
	output_add(output, buf, (size_t)n);
}

/*
 * Feed MESSAGE to IN_FD while reading OUT_FD into OUTPUT, until both
 * are done or DEADLINE passes. Closes both. Returns the bytes written,
 * or -1 on timeout.
 */
static gssize
pipe_talk(int in_fd, int out_fd, GBytes *message, GString *output,
    gint64 deadline)
{
	gsize len, sent = 0;
	const char *data = g_bytes_get_data(message, &len);

	if (len == 0) {
		close(in_fd);
		in_fd = -1;
	}
	g_unix_set_fd_nonblocking(out_fd, TRUE, NULL);
	if (in_fd >= 0)
		g_unix_set_fd_nonblocking(in_fd, TRUE, NULL);

	while (in_fd >= 0 || out_fd >= 0) {
		struct pollfd fds[2];
		nfds_t n = 0;
		int timeout = ms_left(deadline);

		if (in_fd >= 0)
			fds[n++] = (struct pollfd){ in_fd, POLLOUT, 0 };
		if (out_fd >= 0)
			fds[n++] = (struct pollfd){ out_fd, POLLIN, 0 };
		if (timeout == 0 || (poll(fds, n, timeout) < 0 &&
		    errno != EINTR))
			break;

		for (nfds_t i = 0; i < n; i++) {
			if (fds[i].revents == 0)
				continue;
			if (fds[i].fd == in_fd)
				pipe_write_some(&in_fd, data, len, &sent);
			else
				pipe_read_some(&out_fd, output);
		}
	}

	if (in_fd >= 0 || out_fd >= 0) {
		if (in_fd >= 0)
			close(in_fd);
		if (out_fd >= 0)
			close(out_fd);
		return -1;
	}
	return (gssize)sent;
}

/* Wait for PID until DEADLINE; kill its group then. FALSE if killed. */
static gboolean
child_reap(pid_t pid, gint64 deadline, int *status)
{
	while (ms_left(deadline) > 0) {
		pid_t got = waitpid(pid, status, WNOHANG);

		if (got == pid || (got < 0 && errno != EINTR))
			return TRUE;
		g_usleep(10 * 1000);
	}
	if (kill(-pid, SIGKILL) < 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return FALSE;
}

/* argv for COMMAND -i -f SENDER -- RECIPIENT. */
static char **
sendmail_argv(const struct send_target *target, const char *sender,
    const char *recipient)
{
	guint n = g_strv_length(target->argv);
	char **argv = g_new0(char *, n + 6);

	memcpy(argv, target->argv, n * sizeof(char *));
	argv[n] = "-i";
	argv[n + 1] = "-f";
	argv[n + 2] = (char *)sender;
	argv[n + 3] = "--";
	argv[n + 4] = (char *)recipient;
	return argv;
}

/* sendmail(1) exit codes (sysexits) that a retry will not change. */
static gboolean
exit_is_permanent(int status)
{
	return status == EX_USAGE || status == EX_DATAERR ||
	    status == EX_NOUSER || status == EX_NOHOST || status == EX_NOPERM;
}

static int
sendmail_result(const struct send_target *target, int status,
    gboolean reaped, gssize written, gsize len, const GString *output,
    GError **error)
{
	const char *cmd = target->argv[0];
	char *shown = output_shown(output);
	int rc = -1;

	if (!reaped || written < 0)
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "%s: no end "
		    "within %d seconds, killed: %s", cmd, target->timeout,
		    shown);
	else if (WIFSIGNALED(status))
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "%s: killed by "
		    "signal %d: %s", cmd, WTERMSIG(status), shown);
	else if (WEXITSTATUS(status) != 0)
		g_set_error(error, ESC_ERROR, exit_is_permanent(
		    WEXITSTATUS(status)) ? ESC_ERROR_REJECTED : ESC_ERROR_SEND,
		    "%s: exited with status %d: %s", cmd, WEXITSTATUS(status),
		    shown);
	else if ((gsize)written != len)
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "%s: read only "
		    "%zd of %zu bytes of the message: %s", cmd, written, len,
		    shown);
	else
		rc = 0;
	g_free(shown);
	return rc;
}

/* Hold SIGPIPE off this thread while writing to a command or socket. */
static void
sigpipe_hold(sigset_t *old)
{
	sigset_t pipe_only;

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, old);
}

/* Drop a SIGPIPE our writes raised, then restore the mask. */
static void
sigpipe_release(const sigset_t *old)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipe_only, pending;

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	sigpending(&pending);
	if (sigismember(&pending, SIGPIPE) && !sigismember(old, SIGPIPE))
		while (sigtimedwait(&pipe_only, NULL, &zero) < 0 &&
		    errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int
pipes_open(int in[2], int out[2], GError **error)
{
	if (pipe2(in, O_CLOEXEC) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "pipe: %s",
		    g_strerror(errno));
		return -1;
	}
	if (pipe2(out, O_CLOEXEC) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "pipe: %s",
		    g_strerror(errno));
		close(in[0]);
		close(in[1]);
		return -1;
	}
	return 0;
}

static int
send_sendmail(const struct send_target *target, const char *sender,
    const char *recipient, GBytes *message, GError **error)
{
	gint64 deadline = g_get_monotonic_time() +
	    (gint64)target->timeout * G_USEC_PER_SEC;
	char **argv = sendmail_argv(target, sender, recipient);
	char *failed = g_strdup_printf("cannot execute %s\n", argv[0]);
	GString *output = g_string_new(NULL);
	int in[2], out[2], status = 0, fork_errno, rc;
	gboolean reaped;
	gssize written;
	sigset_t old;
	pid_t pid;

	if (pipes_open(in, out, error) < 0) {
		g_free(failed);
		g_free(argv);
		g_string_free(output, TRUE);
		return -1;
	}

	pid = fork();
	fork_errno = errno;
	if (pid == 0)
		sendmail_child(argv, in[0], out[1], failed);
	close(in[0]);
	close(out[1]);
	g_free(failed);
	g_free(argv);
	if (pid < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "fork: %s",
		    g_strerror(fork_errno));
		close(in[1]);
		close(out[0]);
		g_string_free(output, TRUE);
		return -1;
	}

	sigpipe_hold(&old);
	written = pipe_talk(in[1], out[0], message, output, deadline);
	sigpipe_release(&old);
	reaped = child_reap(pid, deadline, &status);

	rc = sendmail_result(target, status, reaped, written,
	    g_bytes_get_size(message), output, error);
	g_string_free(output, TRUE);
	return rc;
}

static int
smtp_fail(struct smtp *s, GError **error, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static int
smtp_fail(struct smtp *s, GError **error, const char *fmt, ...)
{
	va_list ap;
	char *problem;

	va_start(ap, fmt);
	problem = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, ESC_ERROR, ESC_ERROR_SEND, "smtp %s: %s",
	    s->where, problem);
	g_free(problem);
	return -1;
}

/* Connect to one numeric ADDRESS, waiting until the deadline. */
static int
smtp_connect_one(struct smtp *s, const char *address, const char *port,
    GError **error)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	struct addrinfo *ai;
	int fd, rc, soerr = 0;
	socklen_t len = sizeof(soerr);

	rc = getaddrinfo(address, port, &hints, &ai);
	if (rc != 0)
		return smtp_fail(s, error, "getaddrinfo: %s", gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return smtp_fail(s, error, "socket: %s", g_strerror(errno));
	}

	rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc < 0 && errno == EINPROGRESS) {
		struct pollfd pfd = { fd, POLLOUT, 0 };

		rc = poll(&pfd, 1, ms_left(s->deadline));
		if (rc == 0)
			soerr = ETIMEDOUT;
		else if (rc > 0)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
		else
			soerr = errno;
	} else if (rc < 0) {
		soerr = errno;
	}
	if (soerr != 0) {
		close(fd);
		return smtp_fail(s, error, "connect: %s", g_strerror(soerr));
	}
	s->fd = fd;
	return 0;
}

/* "localhost" is tried as 127.0.0.1 then ::1, never looked up. */
static int
smtp_connect(struct smtp *s, const struct send_target *target,
    GError **error)
{
	if (g_ascii_strcasecmp(target->host, "localhost") != 0)
		return smtp_connect_one(s, target->host, target->port, error);
	if (smtp_connect_one(s, "127.0.0.1", target->port, NULL) == 0)
		return 0;
	return smtp_connect_one(s, "::1", target->port, error);
}

static int
smtp_write(struct smtp *s, const char *data, size_t len, GError **error)
{
	while (len > 0) {
		struct pollfd pfd = { s->fd, POLLOUT, 0 };
		ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);

		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return smtp_fail(s, error, "send: %s",
			    g_strerror(errno));
		if (poll(&pfd, 1, ms_left(s->deadline)) == 0)
			return smtp_fail(s, error, "no progress sending "
			    "within the time limit");
	}
	return 0;
}

/* One line of a reply into LINE, without its CR LF. */
static int
smtp_read_line(struct smtp *s, GString *line, GError **error)
{
	for (;;) {
		char *eol = memchr(s->input->str, '\n', s->input->len);
		struct pollfd pfd = { s->fd, POLLIN, 0 };
		char buf[1024];
		ssize_t n;

		if (eol != NULL) {
			size_t len = (size_t)(eol - s->input->str);

			g_string_assign(line, "");
			g_string_append_len(line, s->input->str,
			    (gssize)(len > 0 && eol[-1] == '\r' ? len - 1 :
			    len));
			g_string_erase(s->input, 0, (gssize)len + 1);
			return 0;
		}
		if (s->input->len > SMTP_LINE_MAX)
			return smtp_fail(s, error, "reply line longer than "
			    "%d bytes", SMTP_LINE_MAX);

		if (poll(&pfd, 1, ms_left(s->deadline)) == 0)
			return smtp_fail(s, error, "no reply within the time "
			    "limit");
		n = recv(s->fd, buf, sizeof(buf), 0);
		if (n == 0)
			return smtp_fail(s, error, "connection closed");
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return smtp_fail(s, error, "recv: %s",
			    g_strerror(errno));
		if (n > 0)
			g_string_append_len(s->input, buf, n);
	}
}

/* A whole reply: its code, and its text in TEXT; -1 if unreadable. */
static int
smtp_reply(struct smtp *s, GString *text, GError **error)
{
	GString *line = g_string_new(NULL);
	char first[3];
	int code = -1;

	g_string_assign(text, "");
	for (int n = 0; n < SMTP_REPLY_LINES_MAX; n++) {
		if (smtp_read_line(s, line, error) < 0)
			break;
		if (line->len < 3 || !g_ascii_isdigit(line->str[0]) ||
		    !g_ascii_isdigit(line->str[1]) ||
		    !g_ascii_isdigit(line->str[2]) ||
		    (line->len > 3 && strchr(" -", line->str[3]) == NULL)) {
			char *shown = text_printable(line->str, 80);

			smtp_fail(s, error, "malformed reply \"%s\"", shown);
			g_free(shown);
			break;
		}
		if (n > 0 && strncmp(line->str, first, 3) != 0) {
			char *shown = text_printable(line->str, 80);

			smtp_fail(s, error, "reply lines with different "
			    "codes: \"%s\" after %.3s", shown, first);
			g_free(shown);
			break;
		}
		memcpy(first, line->str, 3);
		output_add(text, line->str, line->len);
		output_add(text, " ", 1);
		if (line->len == 3 || line->str[3] == ' ') {
			code = atoi(line->str);
			break;
		}
	}
	if (code < 0 && error != NULL && *error == NULL)
		smtp_fail(s, error, "reply of more than %d lines",
		    SMTP_REPLY_LINES_MAX);
	g_string_free(line, TRUE);
	return code;
}

/*
 * Send COMMAND (unless NULL) and read the reply; a reply whose first
 * digit is not WANT is an error naming the step and the reply.
 */
static int
smtp_step(struct smtp *s, const char *step, const char *command,
    int want, GError **error)
{
	GString *text = g_string_new(NULL);
	int code;

	s->last_code = -1;
	if (command != NULL && smtp_write(s, command, strlen(command),
	    error) < 0) {
		g_string_free(text, TRUE);
		return -1;
	}
	code = smtp_reply(s, text, error);
	s->last_code = code;
	if (code >= 0 && code / 100 != want) {
		char *shown = output_shown(text);

		smtp_fail(s, error, "%s: %s", step, shown);
		/* A 5xx reply to the mail itself will not change on a
		 * retry; one to the greeting or EHLO is more likely a
		 * listener set up wrong, which an admin can mend. */
		if (code / 100 == 5 && error != NULL && *error != NULL &&
		    strcmp(step, "greeting") != 0 && strcmp(step, "HELO") != 0)
			(*error)->code = ESC_ERROR_REJECTED;
		g_free(shown);
		code = -1;
	}
	g_string_free(text, TRUE);
	return code < 0 ? -1 : code;
}

/* The message with CR LF line ends, dot-stuffed, ending "." CR LF. */
static GString *
smtp_payload(GBytes *message)
{
	gsize len;
	const char *data = g_bytes_get_data(message, &len);
	GString *out = g_string_sized_new(len + len / 32 + 8);
	gboolean line_start = TRUE;

	for (gsize i = 0; i < len; i++) {
		char c = data[i];

		if (c == '\r' && i + 1 < len && data[i + 1] == '\n')
			continue;
		if (c == '\r' || c == '\n') {
			g_string_append(out, "\r\n");
			line_start = TRUE;
			continue;
		}
		if (line_start && c == '.')
			g_string_append_c(out, '.');
		g_string_append_c(out, c);
		line_start = FALSE;
	}
	if (!line_start)
		g_string_append(out, "\r\n");
	g_string_append(out, ".\r\n");
	return out;
}

/* The name we greet with: this host's, if it is a plain host name. */
static const char *
smtp_helo_name(void)
{
	const char *name = g_get_host_name();

	for (const char *p = name; *p != '\0'; p++)
		if (!g_ascii_isalnum(*p) && *p != '-' && *p != '.')
			return "localhost";
	return *name != '\0' ? name : "localhost";
}

/* Connect, read the greeting and introduce ourselves. */
static int
smtp_open(struct smtp *s, const struct send_target *target,
    GError **error)
{
	char *ehlo = g_strdup_printf("EHLO %s\r\n", smtp_helo_name());
	char *helo = g_strdup_printf("HELO %s\r\n", smtp_helo_name());
	int rc = -1;

	g_string_truncate(s->input, 0);
	if (smtp_connect(s, target, error) < 0 ||
	    smtp_step(s, "greeting", NULL, 2, error) < 0)
		goto out;
	/* An old server refuses EHLO: greet it the old way. */
	if (smtp_step(s, "EHLO", ehlo, 2, NULL) < 0 &&
	    smtp_step(s, "HELO", helo, 2, error) < 0)
		goto out;
	rc = 0;
out:
	g_free(ehlo);
	g_free(helo);
	return rc;
}

/* QUIT is a courtesy: wait this long for its answer, no longer. */
#define QUIT_WAIT_MS 1000

static void
smtp_close(struct smtp *s, gboolean polite)
{
	if (s->fd < 0)
		return;
	/* The mails are in; how QUIT goes does not matter. */
	s->deadline = MIN(s->deadline, g_get_monotonic_time() +
	    QUIT_WAIT_MS * 1000);
	if (polite)
		smtp_step(s, "QUIT", "QUIT\r\n", 2, NULL);
	close(s->fd);
	s->fd = -1;
}

/*
 * Nothing may wait unread when we are about to speak: a server that
 * replied early or twice would have its words taken as the answer to
 * our next command, and a refusal given to one mail charged to another.
 * Such a connection is not trusted again.
 */
static int
smtp_quiet(struct smtp *s, const char *before, GError **error)
{
	struct pollfd pfd = { s->fd, POLLIN, 0 };

	if (s->input->len == 0 && poll(&pfd, 1, 0) == 0)
		return 0;
	s->last_code = -1;
	return smtp_fail(s, error, "the server spoke out of turn before %s",
	    before);
}

/* Where one mail's transaction failed: a reused connection that fails
 * at MAIL FROM with no reply or a 421 was closed by the server while
 * idle, and nothing of this mail was taken, so it is tried again on a
 * new connection. */
enum smtp_stage { STAGE_MAIL, STAGE_LATER };

static int
smtp_transaction(struct smtp *s, const char *sender, const char *recipient,
    GBytes *message, enum smtp_stage *failed_at, GError **error)
{
	char *mail = g_strdup_printf("MAIL FROM:<%s>\r\n", sender);
	char *rcpt = g_strdup_printf("RCPT TO:<%s>\r\n", recipient);
	GString *payload = NULL;
	int rc = -1;

	*failed_at = STAGE_MAIL;
	if (smtp_quiet(s, "MAIL FROM", error) < 0 ||
	    smtp_step(s, "MAIL FROM", mail, 2, error) < 0)
		goto out;
	*failed_at = STAGE_LATER;
	if (smtp_step(s, "RCPT TO", rcpt, 2, error) < 0 ||
	    smtp_step(s, "DATA", "DATA\r\n", 3, error) < 0 ||
	    smtp_quiet(s, "the message", error) < 0)
		goto out;
	payload = smtp_payload(message);
	if (smtp_write(s, payload->str, payload->len, error) < 0 ||
	    smtp_step(s, "end of data", NULL, 2, error) < 0)
		goto out;
	rc = 0;
out:
	if (payload != NULL)
		g_string_free(payload, TRUE);
	g_free(mail);
	g_free(rcpt);
	return rc;
}

/* After a failed mail: keep the connection if the server answered and
 * is still willing (RSET), otherwise close it. */
static void
smtp_after_failure(struct smtp *s)
{
	if (s->last_code >= 400 && s->last_code != 421 &&
	    smtp_step(s, "RSET", "RSET\r\n", 2, NULL) >= 0)
		return;
	smtp_close(s, FALSE);
}

/* One try of a mail; *RETRY_R if it should go again on a new
 * connection. */
static int
session_smtp_try(struct send_session *session, const char *sender,
    const char *recipient, GBytes *message, gboolean *retry_r,
    GError **error)
{
	struct smtp *s = &session->smtp;
	gboolean reused = s->fd >= 0;
	enum smtp_stage failed_at;
	GError *mine = NULL;

	*retry_r = FALSE;
	if (!reused) {
		session->mails = 0;
		if (smtp_open(s, session->target, error) < 0) {
			smtp_close(s, FALSE);
			return -1;
		}
	}
	if (smtp_transaction(s, sender, recipient, message, &failed_at,
	    &mine) < 0) {
		if (reused && failed_at == STAGE_MAIL &&
		    (s->last_code < 0 || s->last_code == 421)) {
			*retry_r = TRUE;
			g_clear_error(&mine);
			smtp_close(s, FALSE);
			return -1;
		}
		smtp_after_failure(s);
		g_propagate_error(error, mine);
		return -1;
	}
	/* Anything the server said beyond its reply is caught before the
	 * next MAIL FROM, which then goes on a new connection. */
	if (++session->mails >= SESSION_MAILS_MAX)
		smtp_close(s, TRUE);
	return 0;
}

static int
session_smtp(struct send_session *session, const char *sender,
    const char *recipient, GBytes *message, GError **error)
{
	gboolean retry;
	int rc;

	/* The time limit covers both tries. */
	session->smtp.deadline = g_get_monotonic_time() +
	    (gint64)session->target->timeout * G_USEC_PER_SEC;
	rc = session_smtp_try(session, sender, recipient, message, &retry,
	    error);
	/* A server that let the time run out was not idle-closed: no
	 * second try, and none could be made in no time. */
	if (rc < 0 && retry && ms_left(session->smtp.deadline) == 0)
		return smtp_fail(&session->smtp, error, "MAIL FROM: no reply "
		    "within the time limit");
	if (rc < 0 && retry)
		rc = session_smtp_try(session, sender, recipient, message,
		    &retry, error);
	return rc;
}

static int
address_refused(const char *which, const char *address, GError **error)
{
	char *shown = text_printable(address, 80);

	g_set_error(error, ESC_ERROR, ESC_ERROR_REJECTED, "%s address refused: "
	    "\"%s\"", which, shown);
	g_free(shown);
	return -1;
}

struct send_session *
send_session_open(const struct send_target *target)
{
	struct send_session *session = g_new0(struct send_session, 1);

	session->target = target;
	if (target->kind == SEND_SMTP) {
		session->where = g_strdup_printf("%s:%s", target->host,
		    target->port);
		session->smtp.where = session->where;
	}
	session->smtp.fd = -1;
	session->smtp.input = g_string_new(NULL);
	return session;
}

int
send_session_message(struct send_session *session, const char *sender,
    const char *recipient, GBytes *message, GError **error)
{
	if (!send_address_valid(sender))
		return address_refused("sender", sender, error);
	if (!send_address_valid(recipient))
		return address_refused("recipient", recipient, error);

	if (session->target->kind == SEND_SMTP)
		return session_smtp(session, sender, recipient, message,
		    error);
	return send_sendmail(session->target, sender, recipient, message,
	    error);
}

void
send_session_close(struct send_session **session)
{
	if (*session == NULL)
		return;
	smtp_close(&(*session)->smtp, TRUE);
	g_string_free((*session)->smtp.input, TRUE);
	g_free((*session)->where);
	g_free(*session);
	*session = NULL;
}

int
send_message(const struct send_target *target, const char *sender,
    const char *recipient, GBytes *message, GError **error)
{
	struct send_session *session = send_session_open(target);
	int rc = send_session_message(session, sender, recipient, message,
	    error);

	send_session_close(&session);
	return rc;
}
