/*
 * load.c: a milter load generator. It plays the MTA side of the milter
 * protocol (version 6, as libmilter's mfdef.h and Postfix's milter8.c
 * speak it) against a milter socket, with no MTA in the loop, so the
 * milter's own cost is what is measured.
 *
 * Each of N threads drives one connection at a time; each message is a
 * milter session of its own (OPTNEG, the stages the milter asked for,
 * then QUIT), or -m K messages share one session (ABORT after a message
 * the milter ended early). Macros go with each stage as Postfix sends
 * them by default ({i} from MAIL on, {auth_authen} with -a), headers
 * one packet each, the body in CRLF lines and chunks of at most 65535
 * bytes. Stages the milter skipped are not sent, stages it made "no
 * reply" are not waited for, and SMFIR_SKIP ends the body early.
 *
 * Messages come from files, taken in turn; in each, {n} becomes the
 * message's number in this run, {run} the run tag (-T) and {case} a
 * random number from 1 to -k CASES, so every message is new to a store
 * that dedupes by Message-ID. The run stops after -n messages or -t
 * seconds, whichever comes first, and prints one "result" line: rate,
 * latency (connect to final reply) p50, p99 and max, the final replies
 * by kind and the failures. -r paces messages (open loop) and -i
 * prints the rate every interval, for soaks.
 *
 * Only unix sockets and loopback TCP are accepted as targets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>
#include <libmilter/mfdef.h>

#define CHUNK_MAX MILTER_CHUNK_SIZE
#define REPLY_MAX (1024 * 1024)
#define STAGES 7	/* SMFIM_CONNECT .. SMFIM_EOH, libmilter's order */

/* What one message ended with: the final reply, or a failure. */
enum outcome {
	OUT_ACCEPT,	/* 'a', or 'c' at end of message */
	OUT_TEMPFAIL,	/* 't', or 'y' with a 4xx code */
	OUT_REJECT,	/* 'r', 'y' with 5xx, 'd' discard */
	OUT_ERROR,	/* I/O, timeout or protocol error */
	OUT_KINDS
};

static const char *const outcome_names[OUT_KINDS] = {
	"accept", "tempfail", "reject", "errors"
};

struct template {
	char *text;
	size_t len;
};

static struct {
	const char *socket;
	int conns;
	long count;
	double seconds;
	double rate;
	double interval;
	const char *from;
	const char **rcpts;
	int nrcpts;
	const char *auth;
	long cases;
	const char *tag;
	int per_session;
	int timeout_ms;
	struct template *msgs;
	int nmsgs;
} opt = {
	.conns = 1, .count = 1000, .seconds = 10, .from = "sender{n}@example.com",
	.per_session = 1, .timeout_ms = 300 * 1000,
};

/* Shared between the threads. */
static struct {
	long next;		/* messages started */
	long done;		/* messages finished */
	double start, deadline;
	pthread_mutex_t lock;
	char first_error[256];
} run = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* One connection and what it negotiated. */
struct session {
	int fd;
	unsigned long proto;	/* SMFIP_* the milter asked for */
	char *symlist[STAGES];	/* macros the milter asked for, or NULL */
	char *out;		/* packets not yet written */
	size_t out_len, out_cap;
	char *in;		/* one reply packet */
	size_t in_cap;
	unsigned seed;
	int at_eom;		/* the message got as far as EOM */
};

struct worker {
	pthread_t thread;
	double *lat;		/* seconds per message */
	size_t nlat, lat_cap;
	long kinds[OUT_KINDS];
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die("out of memory");
	return p;
}

/* Keep the first failure's words for the report; count them all. */
static int __attribute__((format(printf, 1, 2)))
fail(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&run.lock);
	if (run.first_error[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(run.first_error, sizeof run.first_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&run.lock);
	return -1;
}

/*
 * Messages.
 */

static void
template_read(const char *path, struct template *t)
{
	FILE *f = fopen(path, "rb");
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0)
		die("%s: %s", path, strerror(errno));
	rewind(f);
	t->text = xrealloc(NULL, (size_t)len + 1);
	if (fread(t->text, 1, (size_t)len, f) != (size_t)len)
		die("%s: short read", path);
	t->text[len] = '\0';
	t->len = (size_t)len;
	fclose(f);
}

/* Append LEN bytes to the growing buffer *BUF. */
static void
buf_add(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2 + 256;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
}

/* TEXT with {n}, {run} and {case} replaced; NUL-terminated. */
static char *
expand(const char *text, long n, unsigned *seed, size_t *len_r)
{
	size_t len = 0, cap = strlen(text) + 64;
	char *out = xrealloc(NULL, cap), num[32];
	const char *p = text, *brace;

	while ((brace = strchr(p, '{')) != NULL) {
		buf_add(&out, &len, &cap, p, (size_t)(brace - p));
		if (strncmp(brace, "{n}", 3) == 0) {
			snprintf(num, sizeof num, "%ld", n);
			p = brace + 3;
		} else if (strncmp(brace, "{run}", 5) == 0) {
			snprintf(num, sizeof num, "%s", opt.tag);
			p = brace + 5;
		} else if (strncmp(brace, "{case}", 6) == 0) {
			snprintf(num, sizeof num, "%06ld", opt.cases > 0 ?
			    1 + (long)(rand_r(seed) % opt.cases) : 1L);
			p = brace + 6;
		} else {
			snprintf(num, sizeof num, "{");
			p = brace + 1;
		}
		buf_add(&out, &len, &cap, num, strlen(num));
	}
	buf_add(&out, &len, &cap, p, strlen(p) + 1);
	*len_r = len - 1;
	return out;
}

/*
 * Packets. Writes are buffered until a reply is awaited, as Postfix's
 * stream does, so headers negotiated "no reply" go out together.
 */

static void
put_packet(struct session *s, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)len + 1);

	buf_add(&s->out, &s->out_len, &s->out_cap, &n, 4);
	buf_add(&s->out, &s->out_len, &s->out_cap, &cmd, 1);
	if (len > 0)
		buf_add(&s->out, &s->out_len, &s->out_cap, data, len);
}

static int
wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int rc;

	while ((rc = poll(&p, 1, opt.timeout_ms)) < 0 && errno == EINTR)
		;
	if (rc == 0)
		return fail("no answer from the milter in %d ms",
		    opt.timeout_ms);
	return rc < 0 ? fail("poll: %s", strerror(errno)) : 0;
}

static int
flush(struct session *s)
{
	size_t off = 0;

	while (off < s->out_len) {
		ssize_t n = write(s->fd, s->out + off, s->out_len - off);

		if (n < 0 && errno == EAGAIN && wait_fd(s->fd, POLLOUT) == 0)
			continue;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail("write: %s", strerror(errno));
		off += (size_t)n;
	}
	s->out_len = 0;
	return 0;
}

static int
read_full(struct session *s, void *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n;

		if (wait_fd(s->fd, POLLIN) < 0)
			return -1;
		n = read(s->fd, (char *)buf + off, len - off);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return fail("read: %s", n == 0 ? "milter closed the "
			    "connection" : strerror(errno));
		off += (size_t)n;
	}
	return 0;
}

/* Read one packet: its command byte, its data in s->in. */
static int
get_packet(struct session *s, char *cmd, size_t *len_r)
{
	uint32_t n;

	if (flush(s) < 0 || read_full(s, &n, 4) < 0)
		return -1;
	n = ntohl(n);
	if (n == 0 || n > REPLY_MAX)
		return fail("bad reply length %u", n);
	if (n > s->in_cap) {
		s->in_cap = n;
		s->in = xrealloc(s->in, n);
	}
	if (read_full(s, s->in, n) < 0)
		return -1;
	*cmd = s->in[0];
	*len_r = n - 1;
	return 0;
}

/*
 * Negotiation.
 */

static int
connect_socket(struct session *s)
{
	const char *spec = opt.socket;

	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0
	    || spec[0] == '/') {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		const char *path = strchr(spec, ':') && spec[0] != '/' ?
		    strchr(spec, ':') + 1 : spec;

		snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
		s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a,
		    sizeof a) < 0)
			return fail("connect %s: %s", path, strerror(errno));
	} else {
		struct sockaddr_in a = { .sin_family = AF_INET };

		a.sin_port = htons((uint16_t)atoi(spec + 5));
		inet_pton(AF_INET, strchr(spec, '@') + 1, &a.sin_addr);
		s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&a,
		    sizeof a) < 0)
			return fail("connect %s: %s", spec, strerror(errno));
	}
	return 0;
}

/* The macro lists after the three words of the OPTNEG reply. */
static void
read_symlists(struct session *s, const char *p, const char *end)
{
	while (end - p > 4) {
		uint32_t stage;
		size_t len;

		memcpy(&stage, p, 4);
		stage = ntohl(stage);
		p += 4;
		len = strnlen(p, (size_t)(end - p));
		if (stage < STAGES) {
			free(s->symlist[stage]);
			s->symlist[stage] = strndup(p, len);
		}
		p += len + 1;
	}
}

/* Offer everything Postfix offers; keep what the milter asks for. */
static int
negotiate(struct session *s)
{
	uint32_t words[3] = { htonl(SMFI_PROT_VERSION),
		htonl(SMFI_CURR_ACTS), htonl(SMFI_CURR_PROT) };
	char cmd;
	size_t len;

	put_packet(s, SMFIC_OPTNEG, words, sizeof words);
	if (get_packet(s, &cmd, &len) < 0)
		return -1;
	if (cmd != SMFIC_OPTNEG || len < 12)
		return fail("bad OPTNEG reply '%c' (%zu bytes)", cmd, len);
	memcpy(words, s->in + 1, 12);
	s->proto = ntohl(words[2]);
	if ((s->proto & ~(unsigned long)SMFI_CURR_PROT) != 0)
		return fail("milter asked for unknown steps %#lx", s->proto);
	read_symlists(s, s->in + 13, s->in + 1 + len);
	return 0;
}

/*
 * Macros, as Postfix sends them by default (milter_*_macros), each
 * stage only if the milter did not ask for a list of its own.
 */

struct macro {
	const char *name;
	const char *value;
};

static int
macro_wanted(const struct session *s, int stage, const char *name)
{
	const char *list = s->symlist[stage], *p;
	size_t len = strlen(name);

	if (list == NULL)
		return 1;
	for (p = list; (p = strstr(p, name)) != NULL; p += len)
		if ((p == list || p[-1] == ' ') && (p[len] == ' ' ||
		    p[len] == '\0'))
			return 1;
	return 0;
}

static void
put_macros(struct session *s, int stage, char cmd, const struct macro *m)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	buf_add(&buf, &len, &cap, &cmd, 1);
	for (; m->name != NULL; m++) {
		if (m->value == NULL || !macro_wanted(s, stage, m->name))
			continue;
		buf_add(&buf, &len, &cap, m->name, strlen(m->name) + 1);
		buf_add(&buf, &len, &cap, m->value, strlen(m->value) + 1);
	}
	if (len > 1)
		put_packet(s, SMFIC_MACRO, buf, len);
	free(buf);
}

/*
 * One message.
 */

struct message {
	long n;
	char qid[24];
	char *text;		/* expanded template */
	size_t len;
	char *sender;
	char *rcpts[16];
	int nrcpts;
};

/* The stage's reply: 0 go on, 1 message ended with *OUT, -1 error. */
static int
reply(struct session *s, unsigned long nr_flag, int eom, int *skip,
    enum outcome *out)
{
	char cmd;
	size_t len;

	if (nr_flag != 0 && (s->proto & nr_flag) != 0)
		return 0;
	for (;;) {
		if (get_packet(s, &cmd, &len) < 0)
			return -1;
		switch (cmd) {
		case SMFIR_PROGRESS:
			continue;
		case SMFIR_CONTINUE:
			if (!eom)
				return 0;
			/* At the end of message, continue means accept. */
			*out = OUT_ACCEPT;
			return 1;
		case SMFIR_ACCEPT:
			*out = OUT_ACCEPT;
			return 1;
		case SMFIR_TEMPFAIL:
			*out = OUT_TEMPFAIL;
			return 1;
		case SMFIR_REJECT:
		case SMFIR_DISCARD:
			*out = OUT_REJECT;
			return 1;
		case SMFIR_REPLYCODE:
			*out = len > 0 && s->in[1] == '4' ? OUT_TEMPFAIL :
			    OUT_REJECT;
			return 1;
		case SMFIR_SKIP:
			if (skip == NULL || !(s->proto & SMFIP_SKIP))
				return fail("SMFIR_SKIP not allowed here");
			*skip = 1;
			return 0;
		case SMFIR_ADDHEADER:
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
		case SMFIR_ADDRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_DELRCPT:
		case SMFIR_CHGFROM:
		case SMFIR_REPLBODY:
		case SMFIR_QUARANTINE:
			if (!eom)
				return fail("modification '%c' before the "
				    "end of message", cmd);
			continue;
		default:
			return fail("unexpected reply '%c'", cmd);
		}
	}
}

/* Send one stage unless skipped; see reply() for the result. */
static int
stage(struct session *s, unsigned long no_flag, unsigned long nr_flag,
    char cmd, const void *data, size_t len, enum outcome *out)
{
	if (no_flag != 0 && (s->proto & no_flag) != 0)
		return 0;
	put_packet(s, cmd, data, len);
	return reply(s, nr_flag, 0, NULL, out);
}

static int
send_envelope(struct session *s, struct message *m, enum outcome *out)
{
	char buf[1024];
	int len, rc;
	struct macro mail[] = { { "i", m->qid }, { "{auth_type}",
		opt.auth ? "PLAIN" : NULL }, { "{auth_authen}", opt.auth },
		{ "{mail_addr}", m->sender }, { NULL, NULL } };

	if (!(s->proto & SMFIP_NOMAIL))
		put_macros(s, SMFIM_ENVFROM, SMFIC_MAIL, mail);
	len = snprintf(buf, sizeof buf, "<%s>", m->sender);
	if ((rc = stage(s, SMFIP_NOMAIL, SMFIP_NR_MAIL, SMFIC_MAIL, buf,
	    (size_t)len + 1, out)) != 0)
		return rc;
	for (int i = 0; i < m->nrcpts; i++) {
		struct macro rcpt[] = { { "i", m->qid },
			{ "{rcpt_addr}", m->rcpts[i] },
			{ "{rcpt_mailer}", "mbox" }, { NULL, NULL } };

		if (!(s->proto & SMFIP_NORCPT))
			put_macros(s, SMFIM_ENVRCPT, SMFIC_RCPT, rcpt);
		len = snprintf(buf, sizeof buf, "<%s>", m->rcpts[i]);
		if ((rc = stage(s, SMFIP_NORCPT, SMFIP_NR_RCPT, SMFIC_RCPT,
		    buf, (size_t)len + 1, out)) != 0)
			return rc;
	}
	return 0;
}

/* One header: NAME \0 VALUE \0, the value's lines joined by LF. */
static void
put_header(struct session *s, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	char *buf = NULL;
	size_t blen = 0, cap = 0, i;
	char nul = '\0';

	if (colon == NULL)
		return;
	buf_add(&buf, &blen, &cap, line, (size_t)(colon - line));
	buf_add(&buf, &blen, &cap, &nul, 1);
	i = (size_t)(colon - line) + 1;
	/* Without HDR_LEADSPC the MTA drops the space after the colon. */
	if (!(s->proto & SMFIP_HDR_LEADSPC) && i < len && line[i] == ' ')
		i++;
	for (; i < len; i++)
		if (line[i] != '\r')
			buf_add(&buf, &blen, &cap, &line[i], 1);
	buf_add(&buf, &blen, &cap, &nul, 1);
	put_packet(s, SMFIC_HEADER, buf, blen);
	free(buf);
}

/* Send the header block; return where the body starts. */
static int
send_headers(struct session *s, struct message *m, const char **body,
    enum outcome *out)
{
	const char *p = m->text, *end = m->text + m->len;
	const char *start = p;
	int rc;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *next = nl ? nl + 1 : end;
		size_t len = (size_t)((nl ? nl : end) - p);

		if (len > 0 && p[len - 1] == '\r')
			len--;
		if (len == 0) {		/* the blank line */
			p = next;
			break;
		}
		/* A header ends where the next line does not fold. */
		if (next >= end || (*next != ' ' && *next != '\t')) {
			size_t hlen = (size_t)((nl ? nl : end) - start);

			if (!(s->proto & SMFIP_NOHDRS)) {
				put_header(s, start, hlen);
				if ((rc = reply(s, SMFIP_NR_HDR, 0, NULL,
				    out)) != 0)
					return rc;
			}
			start = next;
		}
		p = next;
	}
	*body = p;
	if (!(s->proto & SMFIP_NOEOH)) {
		struct macro eoh[] = { { "i", m->qid }, { NULL, NULL } };

		put_macros(s, SMFIM_EOH, SMFIC_EOH, eoh);
	}
	return stage(s, SMFIP_NOEOH, SMFIP_NR_EOH, SMFIC_EOH, NULL, 0, out);
}

/* The body in CRLF lines and chunks of at most CHUNK_MAX bytes. */
static int
send_body(struct session *s, const char *p, const char *end,
    enum outcome *out)
{
	char *chunk = xrealloc(NULL, CHUNK_MAX + 1);
	size_t len = 0;
	int skip = 0, rc = 0;

	if (s->proto & SMFIP_NOBODY)
		p = end;
	for (; p < end && !skip && rc == 0; p++) {
		if (*p == '\n' && (len == 0 || chunk[len - 1] != '\r'))
			chunk[len++] = '\r';
		chunk[len++] = *p;
		if (len >= CHUNK_MAX - 1 || p + 1 == end) {
			put_packet(s, SMFIC_BODY, chunk, len);
			len = 0;
			rc = reply(s, SMFIP_NR_BODY, 0, &skip, out);
		}
	}
	free(chunk);
	return rc;
}

static int
send_message(struct session *s, struct message *m, enum outcome *out)
{
	struct macro data[] = { { "i", m->qid }, { NULL, NULL } };
	const char *body;
	int rc;

	if ((rc = send_envelope(s, m, out)) != 0)
		return rc;
	if (!(s->proto & SMFIP_NODATA))
		put_macros(s, SMFIM_DATA, SMFIC_DATA, data);
	if ((rc = stage(s, SMFIP_NODATA, SMFIP_NR_DATA, SMFIC_DATA, NULL, 0,
	    out)) != 0)
		return rc;
	if ((rc = send_headers(s, m, &body, out)) != 0)
		return rc;
	if ((rc = send_body(s, body, m->text + m->len, out)) != 0)
		return rc;
	s->at_eom = 1;
	put_macros(s, SMFIM_EOM, SMFIC_BODYEOB, data);
	put_packet(s, SMFIC_BODYEOB, NULL, 0);
	rc = reply(s, 0, 1, NULL, out);
	return rc == 0 ? fail("no final reply") : rc;
}

/* Open a session: connect, negotiate, CONNECT and HELO if wanted. */
static int
session_open(struct session *s)
{
	static const char conn[] = "localhost\0" "4\x9c\x40" "127.0.0.1";
	struct macro cm[] = { { "j", "mail.bench.test" },
		{ "{daemon_name}", "smtpd" }, { "{daemon_addr}", "127.0.0.1" },
		{ "v", "Postfix 3.7" }, { "_", "localhost [127.0.0.1]" },
		{ NULL, NULL } };
	enum outcome out;
	int rc;

	for (int i = 0; i < STAGES; i++) {
		free(s->symlist[i]);
		s->symlist[i] = NULL;
	}
	if (connect_socket(s) < 0 || negotiate(s) < 0)
		return -1;
	if (!(s->proto & SMFIP_NOCONNECT))
		put_macros(s, SMFIM_CONNECT, SMFIC_CONNECT, cm);
	/* "4", port 40000, then the address. */
	rc = stage(s, SMFIP_NOCONNECT, SMFIP_NR_CONN, SMFIC_CONNECT, conn,
	    sizeof conn, &out);
	if (rc == 0)
		rc = stage(s, SMFIP_NOHELO, SMFIP_NR_HELO, SMFIC_HELO,
		    "localhost", 10, &out);
	return rc == 0 ? 0 : fail("milter ended the session at CONNECT");
}

static void
session_close(struct session *s)
{
	if (s->fd < 0)
		return;
	put_packet(s, SMFIC_QUIT, NULL, 0);
	flush(s);
	close(s->fd);
	s->fd = -1;
}

/*
 * Threads.
 */

static void
message_make(struct message *m, long n, unsigned *seed)
{
	const struct template *t = &opt.msgs[n % opt.nmsgs];
	size_t len;

	m->n = n;
	/* A Postfix-like long queue id, unique in the run. */
	snprintf(m->qid, sizeof m->qid, "4B%010lX", (unsigned long)n);
	m->text = expand(t->text, n, seed, &m->len);
	m->sender = expand(opt.from, n, seed, &len);
	m->nrcpts = opt.nrcpts;
	for (int i = 0; i < opt.nrcpts; i++)
		m->rcpts[i] = expand(opt.rcpts[i], n, seed, &len);
}

static void
message_clear(struct message *m)
{
	free(m->text);
	free(m->sender);
	for (int i = 0; i < m->nrcpts; i++)
		free(m->rcpts[i]);
}

/* Claim the next message number, waiting for its turn with -r. */
static long
next_message(void)
{
	long n = __atomic_fetch_add(&run.next, 1, __ATOMIC_RELAXED);
	double t;

	if (n >= opt.count || now() >= run.deadline)
		return -1;
	if (opt.rate > 0) {
		t = run.start + n / opt.rate - now();
		if (t > 0)
			usleep((useconds_t)(t * 1e6));
		if (now() >= run.deadline)
			return -1;
	}
	return n;
}

static void
record(struct worker *w, double seconds, enum outcome out)
{
	if (w->nlat == w->lat_cap) {
		w->lat_cap = w->lat_cap * 2 + 1024;
		w->lat = xrealloc(w->lat, w->lat_cap * sizeof *w->lat);
	}
	w->lat[w->nlat++] = seconds;
	w->kinds[out]++;
	__atomic_fetch_add(&run.done, 1, __ATOMIC_RELAXED);
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct session s = { .fd = -1, .seed = (unsigned)(uintptr_t)arg };
	int in_session = 0;
	long n;

	while ((n = next_message()) >= 0) {
		struct message m;
		enum outcome out = OUT_ERROR;
		double t0 = now();
		int rc = 0;

		message_make(&m, n, &s.seed);
		s.at_eom = 0;
		if (s.fd < 0)
			rc = session_open(&s);
		if (rc == 0)
			rc = send_message(&s, &m, &out);
		if (rc < 0)
			out = OUT_ERROR;
		record(w, now() - t0, out);
		message_clear(&m);
		/* A message ended before EOM leaves the milter mid-message:
		 * ABORT resets it for the next MAIL, as Postfix does. */
		if (rc > 0 && ++in_session < opt.per_session) {
			if (!s.at_eom)
				put_packet(&s, SMFIC_ABORT, NULL, 0);
			continue;
		}
		in_session = 0;
		if (rc < 0 && s.fd >= 0) {
			close(s.fd);
			s.fd = -1;
		}
		session_close(&s);
	}
	session_close(&s);
	free(s.out);
	free(s.in);
	for (int i = 0; i < STAGES; i++)
		free(s.symlist[i]);
	return NULL;
}

/*
 * Report.
 */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double
percentile(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);

	return n == 0 ? 0 : v[i < n ? i : n - 1];
}

static void
report(struct worker *w, double elapsed)
{
	size_t n = 0, k = 0;
	long kinds[OUT_KINDS] = { 0 };
	double *all;

	for (int i = 0; i < opt.conns; i++)
		n += w[i].nlat;
	all = xrealloc(NULL, (n + 1) * sizeof *all);
	for (int i = 0; i < opt.conns; i++) {
		memcpy(all + k, w[i].lat, w[i].nlat * sizeof *all);
		k += w[i].nlat;
		for (int j = 0; j < OUT_KINDS; j++)
			kinds[j] += w[i].kinds[j];
	}
	qsort(all, n, sizeof *all, cmp_double);
	printf("result conns=%d msgs=%zu secs=%.3f rate=%.1f p50_ms=%.3f "
	    "p99_ms=%.3f max_ms=%.3f", opt.conns, n, elapsed,
	    elapsed > 0 ? (double)n / elapsed : 0,
	    percentile(all, n, 0.50) * 1e3, percentile(all, n, 0.99) * 1e3,
	    n ? all[n - 1] * 1e3 : 0);
	for (int j = 0; j < OUT_KINDS; j++)
		printf(" %s=%ld", outcome_names[j], kinds[j]);
	printf("\n");
	if (run.first_error[0] != '\0')
		printf("first-error %s\n", run.first_error);
	fflush(stdout);
	free(all);
}

/* With -i: the rate of each interval, until the run's end. */
static void
watch(void)
{
	double last_t = run.start;
	long last_n = 0;

	while (now() + opt.interval <= run.deadline + 0.01 &&
	    __atomic_load_n(&run.done, __ATOMIC_RELAXED) < opt.count) {
		double t;
		long d;

		usleep((useconds_t)(opt.interval * 1e6));
		t = now();
		d = __atomic_load_n(&run.done, __ATOMIC_RELAXED);
		printf("interval t=%.1f msgs=%ld rate=%.1f\n", t - run.start,
		    d - last_n, (double)(d - last_n) / (t - last_t));
		fflush(stdout);
		last_t = t;
		last_n = d;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: load -s SOCKET [-c CONNS] [-n COUNT] "
	    "[-t SECONDS] [-r RATE]\n"
	    "            [-f FROM] -R RCPT... [-a AUTHUSER] [-k CASES] "
	    "[-T TAG]\n"
	    "            [-m PER_SESSION] [-i INTERVAL] [-w TIMEOUT] "
	    "FILE...\n"
	    "SOCKET is unix:PATH or inet:PORT@127.0.0.1\n");
	exit(2);
}

/* Targets are our own: a unix socket or a loopback TCP port. */
static void
check_socket(const char *spec)
{
	const char *at;

	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0
	    || spec[0] == '/')
		return;
	at = strchr(spec, '@');
	if (strncmp(spec, "inet:", 5) != 0 || at == NULL ||
	    strncmp(at + 1, "127.", 4) != 0)
		die("socket %s: want unix:PATH or inet:PORT@127.x.y.z", spec);
}

static void
parse_options(int argc, char **argv)
{
	int c;

	opt.rcpts = xrealloc(NULL, (size_t)argc * sizeof *opt.rcpts);
	while ((c = getopt(argc, argv, "s:c:n:t:r:f:R:a:k:T:m:i:w:")) != -1) {
		switch (c) {
		case 's': opt.socket = optarg; break;
		case 'c': opt.conns = atoi(optarg); break;
		case 'n': opt.count = atol(optarg); break;
		case 't': opt.seconds = atof(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'f': opt.from = optarg; break;
		case 'R': opt.rcpts[opt.nrcpts++] = optarg; break;
		case 'a': opt.auth = optarg; break;
		case 'k': opt.cases = atol(optarg); break;
		case 'T': opt.tag = optarg; break;
		case 'm': opt.per_session = atoi(optarg); break;
		case 'i': opt.interval = atof(optarg); break;
		case 'w': opt.timeout_ms = (int)(atof(optarg) * 1000); break;
		default: usage();
		}
	}
	if (opt.socket == NULL || opt.nrcpts == 0 || opt.nrcpts > 16 ||
	    optind == argc || opt.conns < 1 || opt.per_session < 1)
		usage();
	check_socket(opt.socket);
	opt.nmsgs = argc - optind;
	opt.msgs = xrealloc(NULL, (size_t)opt.nmsgs * sizeof *opt.msgs);
	for (int i = 0; i < opt.nmsgs; i++)
		template_read(argv[optind + i], &opt.msgs[i]);
}

int
main(int argc, char **argv)
{
	struct worker *w;
	char tag[32];

	parse_options(argc, argv);
	if (opt.tag == NULL) {
		snprintf(tag, sizeof tag, "%ld.%d", (long)time(NULL),
		    (int)getpid());
		opt.tag = tag;
	}
	signal(SIGPIPE, SIG_IGN);
	w = calloc((size_t)opt.conns, sizeof *w);
	run.start = now();
	run.deadline = run.start + opt.seconds;
	for (int i = 0; i < opt.conns; i++)
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]))
			die("pthread_create failed");
	if (opt.interval > 0)
		watch();
	for (int i = 0; i < opt.conns; i++)
		pthread_join(w[i].thread, NULL);
	report(w, now() - run.start);
	return 0;
}
