/*
 * check_send.c: hostile SMTP servers against send_session_*().
 * A scripted server runs on 127.0.0.1 in a thread; each test names a
 * behaviour. For every mail: the call returns 0 only if the server
 * replied 250 after that mail's final dot, no mail is taken twice, no
 * call takes much longer than the target's timeout, and no fd is left
 * open after the session closes.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/error.h"
#include "outbox/send.h"
#include "t/testutil.h"

#define MAILS 6
#define TIMEOUT 2

enum behaviour {
	MULTILINE,		/* every reply multi-line */
	MAIL_421_CLOSE,		/* MAIL of mail 2: 421 and close */
	MAIL_421_OPEN,		/* MAIL of mail 2: 421, stays open */
	CLOSE_AFTER_DOT,	/* mail 2: close after the dot, no reply */
	GARBAGE_RCPT,		/* RCPT of mail 2: garbage */
	GARBAGE_BINARY,		/* RCPT of mail 2: NUL bytes, no digits */
	LONG_LINE,		/* RCPT of mail 2: 10 kB without LF */
	MANY_LINES,		/* end of data of mail 2: 100 "250-" lines */
	STALL_AFTER_DOT,	/* mail 2: no reply after the dot */
	STALL_AT_MAIL,		/* reused connection, mail 2: MAIL stalls */
	STALL_GREETING,		/* second connection: no greeting */
	DATA_554,		/* mail 2: RCPT 250, DATA 554 */
	DOT_421,		/* mail 2: 421 after the dot, stays open */
	EARLY_250,		/* mail 2: "354" and "250" at once, then 554
				 * after the dot */
	EXTRA_250,		/* mail 1: two 250s after the dot */
	EHLO_5XX,		/* EHLO refused, HELO taken */
	CODE_250_NUL,		/* end of data of mail 2: "250\0" */
	MIXED_CODES,		/* end of data of mail 2: "550-no" "250 ok" */
	QUIT_STALL,		/* QUIT: no reply */
	ALL_421_MAIL,		/* every MAIL: 421 */
};

struct hsrv {
	int listen_fd, port;
	enum behaviour how;
	GThread *thread;
	GMutex lock;
	int taken[MAILS];	/* 250 after the dot, per mail */
	int connections;
	gboolean stop;
};

/* Lines with CR LF, or FALSE at EOF / after 30 s of nothing. */
static gboolean
srv_line(int fd, GString *input, GString *line)
{
	for (;;) {
		char *eol = strstr(input->str, "\r\n");
		char buf[4096];
		struct pollfd pfd = { fd, POLLIN, 0 };
		ssize_t n;

		if (eol != NULL) {
			gsize len = (gsize)(eol - input->str) + 2;

			g_string_assign(line, "");
			g_string_append_len(line, input->str, (gssize)len);
			g_string_erase(input, 0, (gssize)len);
			return TRUE;
		}
		if (poll(&pfd, 1, 30000) <= 0)
			return FALSE;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return FALSE;
		g_string_append_len(input, buf, n);
	}
}

static void
say(int fd, const char *text, size_t len)
{
	ssize_t ignored = send(fd, text, len, MSG_NOSIGNAL);

	(void)ignored;
}

#define SAY(fd, s) say((fd), (s), strlen(s))

/* Wait until the client closes (a stall), at most 30 s. */
static void
stall(int fd)
{
	char buf[256];
	struct pollfd pfd = { fd, POLLIN, 0 };

	while (poll(&pfd, 1, 30000) > 0 && recv(fd, buf, sizeof buf, 0) > 0)
		;
}

/* Mail number from "Subject: mN" in the data. */
static int
mail_number(const GString *data)
{
	const char *at = strstr(data->str, "Subject: m");

	return at != NULL ? atoi(at + strlen("Subject: m")) : -1;
}

/* One connection. FALSE: close it now. */
static void
srv_session(struct hsrv *srv, int fd, int conn)
{
	GString *input = g_string_new(NULL), *line = g_string_new(NULL);
	GString *data = g_string_new(NULL);
	gboolean multi = srv->how == MULTILINE;
	int mail = -1;	/* number of the mail in progress, from RCPT */

	if (srv->how == STALL_GREETING && conn == 1) {
		stall(fd);
		goto out;
	}
	SAY(fd, multi ? "220-hello\r\n220-there\r\n220 ready\r\n" :
	    "220 ready\r\n");
	while (srv_line(fd, input, line)) {
		const char *l = line->str;

		if (g_str_has_prefix(l, "EHLO ")) {
			if (srv->how == EHLO_5XX)
				SAY(fd, "502 no EHLO here\r\n");
			else
				SAY(fd, "250-x\r\n250-y\r\n250 z\r\n");
		} else if (g_str_has_prefix(l, "HELO ")) {
			SAY(fd, "250 hi\r\n");
		} else if (g_str_has_prefix(l, "HHLO ")) {
			/* What send.c sends after a refused EHLO. */
			SAY(fd, "500 5.5.1 HHLO: command unrecognized\r\n");
		} else if (g_str_has_prefix(l, "MAIL FROM:")) {
			/* The mail number is in the sender: mN@... */
			mail = atoi(l + strlen("MAIL FROM:<m"));
			if (srv->how == ALL_421_MAIL) {
				SAY(fd, "421 go away\r\n");
				break;
			}
			if (mail == 2 && conn == 0 &&
			    (srv->how == MAIL_421_CLOSE ||
			    srv->how == STALL_GREETING ||
			    srv->how == MAIL_421_OPEN)) {
				SAY(fd, "421 4.3.2 shutting down\r\n");
				if (srv->how != MAIL_421_OPEN)
					break;
				continue;
			}
			if (mail == 2 && conn == 0 &&
			    srv->how == STALL_AT_MAIL) {
				stall(fd);
				break;
			}
			SAY(fd, multi ? "250-sender\r\n250 ok\r\n" :
			    "250 ok\r\n");
		} else if (g_str_has_prefix(l, "RCPT TO:")) {
			if (mail == 2 && srv->how == GARBAGE_RCPT)
				SAY(fd, "hello there\r\n");
			else if (mail == 2 && srv->how == GARBAGE_BINARY)
				say(fd, "\0\0\xff\xfe\r\n", 6);
			else if (mail == 2 && srv->how == LONG_LINE) {
				char *big = g_strnfill(10000, 'x');

				SAY(fd, big);
				g_free(big);
				stall(fd);
				break;
			} else
				SAY(fd, multi ? "250-rcpt\r\n250 ok\r\n" :
				    "250 ok\r\n");
		} else if (strcmp(l, "DATA\r\n") == 0) {
			if (mail == 2 && srv->how == DATA_554) {
				SAY(fd, "554 no data for you\r\n");
				continue;
			}
			if (mail == 2 && srv->how == EARLY_250)
				SAY(fd, "354 go\r\n250 taken early\r\n");
			else
				SAY(fd, multi ? "354-go\r\n354 on\r\n" :
				    "354 go\r\n");
			g_string_truncate(data, 0);
			while (srv_line(fd, input, line) &&
			    strcmp(line->str, ".\r\n") != 0)
				g_string_append(data, line->str);
			if (strcmp(line->str, ".\r\n") != 0)
				break;
			mail = mail_number(data);
			if (mail == 2 && srv->how == CLOSE_AFTER_DOT)
				break;
			if (mail == 2 && srv->how == STALL_AFTER_DOT) {
				stall(fd);
				break;
			}
			if (mail == 2 && srv->how == DOT_421) {
				SAY(fd, "421 4.3.0 not now\r\n");
				continue;
			}
			if (mail == 2 && srv->how == EARLY_250) {
				SAY(fd, "554 refused after all\r\n");
				continue;
			}
			if (mail == 2 && srv->how == MANY_LINES) {
				for (int i = 0; i < 100; i++)
					SAY(fd, "250-ok\r\n");
				SAY(fd, "250 ok\r\n");
				/* Not counted: the client gives up on the
				 * 64th line, so the reply is not whole. */
				continue;
			}
			if (mail == 2 && srv->how == CODE_250_NUL) {
				say(fd, "250\0 odd\r\n", 10);
				continue;
			}
			if (mail == 2 && srv->how == MIXED_CODES) {
				SAY(fd, "550-no\r\n250 ok\r\n");
				continue;
			}
			g_mutex_lock(&srv->lock);
			if (mail >= 0 && mail < MAILS)
				srv->taken[mail]++;
			g_mutex_unlock(&srv->lock);
			if (mail == 1 && srv->how == EXTRA_250)
				SAY(fd, "250 ok\r\n250 and again\r\n");
			else
				SAY(fd, multi ? "250-queued\r\n250 ok\r\n" :
				    "250 ok\r\n");
		} else if (strcmp(l, "RSET\r\n") == 0) {
			SAY(fd, "250 reset\r\n");
		} else if (strcmp(l, "QUIT\r\n") == 0) {
			if (srv->how == QUIT_STALL)
				stall(fd);
			else
				SAY(fd, "221 bye\r\n");
			break;
		} else {
			SAY(fd, "500 what\r\n");
		}
	}
out:
	g_string_free(input, TRUE);
	g_string_free(line, TRUE);
	g_string_free(data, TRUE);
}

static gpointer
srv_run(gpointer data)
{
	struct hsrv *srv = data;

	for (;;) {
		struct pollfd pfd = { srv->listen_fd, POLLIN, 0 };
		int fd, conn;

		if (poll(&pfd, 1, 100) <= 0) {
			gboolean stop;

			g_mutex_lock(&srv->lock);
			stop = srv->stop;
			g_mutex_unlock(&srv->lock);
			if (stop)
				break;
			continue;
		}
		fd = accept(srv->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		g_mutex_lock(&srv->lock);
		conn = srv->connections++;
		g_mutex_unlock(&srv->lock);
		srv_session(srv, fd, conn);
		close(fd);
	}
	return NULL;
}

static struct hsrv *
srv_start(enum behaviour how)
{
	struct hsrv *srv = g_new0(struct hsrv, 1);

	srv->listen_fd = test_listen_loopback(&srv->port);
	srv->how = how;
	g_mutex_init(&srv->lock);
	srv->thread = g_thread_new("hostile-smtp", srv_run, srv);
	return srv;
}

static void
srv_stop(struct hsrv *srv)
{
	g_mutex_lock(&srv->lock);
	srv->stop = TRUE;
	g_mutex_unlock(&srv->lock);
	g_thread_join(srv->thread);
	close(srv->listen_fd);
	g_mutex_clear(&srv->lock);
}

static int
fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own fd */
}

static const struct {
	enum behaviour how;
	const char *name;
	/* Per mail: the result wanted, 0 or -1; 1 in "sent_ok" means
	 * either is fine as long as it matches what the server took. */
	int want[MAILS];
} cases[] = {
	{ MULTILINE, "multi-line replies", { 0, 0, 0, 0, 0, 0 } },
	{ MAIL_421_CLOSE, "421 and close at MAIL", { 0, 0, 0, 0, 0, 0 } },
	{ MAIL_421_OPEN, "421 at MAIL, open", { 0, 0, 0, 0, 0, 0 } },
	{ CLOSE_AFTER_DOT, "close after the dot", { 0, 0, -1, 0, 0, 0 } },
	{ GARBAGE_RCPT, "garbage reply", { 0, 0, -1, 0, 0, 0 } },
	{ GARBAGE_BINARY, "binary reply", { 0, 0, -1, 0, 0, 0 } },
	{ LONG_LINE, "10 kB reply line", { 0, 0, -1, 0, 0, 0 } },
	{ MANY_LINES, "100-line reply", { 0, 0, -1, 0, 0, 0 } },
	{ STALL_AFTER_DOT, "stall after the dot", { 0, 0, -1, 0, 0, 0 } },
	{ STALL_AT_MAIL, "stall at MAIL", { 0, 0, -1, 0, 0, 0 } },
	{ STALL_GREETING, "stall in a greeting", { 0, 0, -1, 0, 0, 0 } },
	{ DATA_554, "RCPT 250, DATA 554", { 0, 0, -1, 0, 0, 0 } },
	{ DOT_421, "421 after the dot", { 0, 0, -1, 0, 0, 0 } },
	{ EARLY_250, "250 before the dot", { 0, 0, -1, 0, 0, 0 } },
	/* The extra line is not taken for the next mail's reply: that
	 * connection is closed, and mail 2 goes on a new one. */
	{ EXTRA_250, "two 250s after a dot", { 0, 0, 0, 0, 0, 0 } },
	{ EHLO_5XX, "EHLO refused", { 0, 0, 0, 0, 0, 0 } },
	{ CODE_250_NUL, "\"250\\0\" after the dot", { 0, 0, -1, 0, 0, 0 } },
	{ MIXED_CODES, "550- then 250 after the dot", { 0, 0, -1, 0, 0, 0 } },
	{ QUIT_STALL, "QUIT not answered", { 0, 0, 0, 0, 0, 0 } },
	{ ALL_421_MAIL, "421 to every MAIL", { -1, -1, -1, -1, -1, -1 } },
};

START_TEST(hostile_server)
{
	struct hsrv *srv;
	struct send_target *target;
	struct send_session *session;
	GString *report = g_string_new(NULL);
	int before = fd_count(), after, rc[MAILS];
	gint64 t0, t1, worst = 0;

	srv = srv_start(cases[_i].how);
	{
		char *spec = g_strdup_printf("smtp:127.0.0.1:%d", srv->port);
		GError *error = NULL;

		target = send_target_parse(spec, &error);
		ck_assert_ptr_nonnull(target);
		g_free(spec);
	}
	send_target_set_timeout(target, TIMEOUT);
	session = send_session_open(target);
	for (int i = 0; i < MAILS; i++) {
		char *from = g_strdup_printf("m%d@esc.example", i);
		char *text = g_strdup_printf("Subject: m%d\n\n.dot line\n"
		    "body %d\n", i, i);
		GBytes *message = g_bytes_new_take(text, strlen(text));
		GError *error = NULL;

		t0 = g_get_monotonic_time();
		rc[i] = send_session_message(session, from,
		    "rcpt@example.com", message, &error);
		t1 = g_get_monotonic_time();
		worst = MAX(worst, t1 - t0);
		g_string_append_printf(report, "\n  mail %d: rc %d in %.2f s%s%s",
		    i, rc[i], (t1 - t0) / 1e6, error ? ": " : "",
		    error ? error->message : "");
		g_clear_error(&error);
		g_bytes_unref(message);
		g_free(from);
	}
	t0 = g_get_monotonic_time();
	send_session_close(&session);
	t1 = g_get_monotonic_time();
	g_string_append_printf(report, "\n  close in %.2f s", (t1 - t0) / 1e6);
	/* QUIT is a courtesy: an unanswered one must not hold a stop. */
	ck_assert_msg(t1 - t0 <= 3 * G_USEC_PER_SEC / 2, "%s: close took "
	    "%.2f s%s", cases[_i].name, (t1 - t0) / 1e6, report->str);
	srv_stop(srv);
	after = fd_count();
	send_target_free(&target);

	for (int i = 0; i < MAILS; i++) {
		ck_assert_msg(srv->taken[i] <= 1, "%s: mail %d taken %d "
		    "times%s", cases[_i].name, i, srv->taken[i],
		    report->str);
	}
	for (int i = 0; i < MAILS; i++) {
		ck_assert_msg((rc[i] == 0) == (srv->taken[i] == 1), "%s: mail "
		    "%d: rc %d but the server took it %d times%s",
		    cases[_i].name, i, rc[i], srv->taken[i], report->str);
		ck_assert_msg(rc[i] == cases[_i].want[i], "%s: mail %d: rc "
		    "%d, want %d%s", cases[_i].name, i, rc[i],
		    cases[_i].want[i], report->str);
	}
	ck_assert_msg(worst <= (TIMEOUT + 1) * G_USEC_PER_SEC, "%s: a mail "
	    "took %.2f s, timeout %d s%s", cases[_i].name, worst / 1e6,
	    TIMEOUT, report->str);
	ck_assert_msg(t1 - t0 <= (TIMEOUT + 1) * G_USEC_PER_SEC, "%s: close "
	    "took %.2f s%s", cases[_i].name, (t1 - t0) / 1e6, report->str);
	ck_assert_msg(after == before, "%s: %d fds before, %d after%s",
	    cases[_i].name, before, after, report->str);
	g_string_free(report, TRUE);
	g_free(srv);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("send sessions");
	TCase *tc = tcase_create("hostile servers");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, hostile_server, 0, G_N_ELEMENTS(cases));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
