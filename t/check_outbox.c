/*
 * check_outbox.c: the outbox by behaviour. Compose: the headers, header
 * injection attempts, RFC 2047 subjects read back through GMime, body
 * encodings. Send: a fake sendmail(1) script in a temporary directory,
 * and a tiny SMTP server this test runs on 127.0.0.1 in a thread; only
 * loopback SMTP targets are accepted. Run: a temporary store, with rows
 * sent, deferred and given up.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <gmime/gmime.h>

#include "common/error.h"
#include "common/log.h"
#include "outbox/compose.h"
#include "outbox/outbox.h"
#include "outbox/send.h"
#include "store/store.h"
#include "t/testutil.h"

#define NOW ((time_t)1767225600)	/* 2026-01-01 00:00:00 UTC */
#define CASE_ID "ESC-2026-000042"

/* A row with every field set; tests change the ones they look at. */
static struct outgoing
sample_mail(void)
{
	struct outgoing mail = {
		.id = 1,
		.case_id = CASE_ID,
		.kind = "ack",
		.sender = "escalation@esc.example",
		.sender_name = "Escalation Désk",
		.recipient = "ann@example.com",
		.subject = "[" CASE_ID "] Complaint received: Transfer stuck",
		.body = "Hello,\n\nWe have received your complaint.\n",
		.message_id = "ack.42@esc.example",
		.in_reply_to = "orig@example.com",
		.references = "<root@example.com> <orig@example.com>",
		.auto_submitted = "auto-replied",
		.created = NOW,
	};

	return mail;
}

static GMimeMessage *
parse_message(GBytes *bytes)
{
	gsize len;
	const char *data = g_bytes_get_data(bytes, &len);
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *message = g_mime_parser_construct_message(parser, NULL);

	ck_assert_msg(message != NULL, "got no message parsing \"%.*s\"",
	    (int)len, data);
	g_object_unref(parser);
	g_object_unref(stream);
	return message;
}

/* The header block of BYTES, as text. */
static char *
header_block(GBytes *bytes)
{
	gsize len;
	const char *data = g_bytes_get_data(bytes, &len);
	const char *end = g_strstr_len(data, (gssize)len, "\n\n");

	ck_assert_ptr_nonnull(end);
	return g_strndup(data, (gsize)(end - data + 1));
}

/* Header NAME's raw lines (first line and folded ones) from BYTES. */
static char **
raw_header_lines(GBytes *bytes, const char *name)
{
	char *block = header_block(bytes);
	char **lines = g_strsplit(block, "\n", -1);
	GPtrArray *found = g_ptr_array_new();
	gboolean in = FALSE;
	size_t name_len = strlen(name);

	for (char **l = lines; *l != NULL; l++) {
		if (**l == ' ' || **l == '\t') {
			if (in)
				g_ptr_array_add(found, g_strdup(*l));
			continue;
		}
		in = g_ascii_strncasecmp(*l, name, name_len) == 0 &&
		    (*l)[name_len] == ':';
		if (in)
			g_ptr_array_add(found, g_strdup(*l));
	}
	g_ptr_array_add(found, NULL);
	g_strfreev(lines);
	g_free(block);
	return (char **)g_ptr_array_free(found, FALSE);
}

static const char *
header_of(GMimeMessage *message, const char *name)
{
	return g_mime_object_get_header(GMIME_OBJECT(message), name);
}

START_TEST(test_compose_headers)
{
	struct outgoing mail = sample_mail();
	GBytes *bytes = compose_message(&mail, NOW);
	GMimeMessage *message = parse_message(bytes);
	InternetAddressList *from = g_mime_message_get_from(message);
	InternetAddressList *to = g_mime_message_get_to(message);
	InternetAddress *sender;
	GDateTime *date = g_mime_message_get_date(message);
	gsize len;
	const char *raw = g_bytes_get_data(bytes, &len);

	ck_assert_int_eq(internet_address_list_length(from), 1);
	sender = internet_address_list_get_address(from, 0);
	ck_assert_str_eq(internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(sender)), "escalation@esc.example");
	ck_assert_str_eq(internet_address_get_name(sender),
	    "Escalation Désk");
	ck_assert_int_eq(internet_address_list_length(to), 1);
	ck_assert_str_eq(internet_address_mailbox_get_addr(
	    INTERNET_ADDRESS_MAILBOX(internet_address_list_get_address(to,
	    0))), "ann@example.com");

	ck_assert_str_eq(g_mime_message_get_subject(message), mail.subject);
	ck_assert_str_eq(g_mime_message_get_message_id(message),
	    "ack.42@esc.example");
	ck_assert_str_eq(header_of(message, "In-Reply-To"),
	    "<orig@example.com>");
	ck_assert_str_eq(header_of(message, "References"),
	    "<root@example.com> <orig@example.com>");
	ck_assert_str_eq(header_of(message, "Auto-Submitted"),
	    "auto-replied");
	ck_assert_str_eq(header_of(message, "X-Auto-Response-Suppress"),
	    "All");
	ck_assert_str_eq(header_of(message, "X-Escalator-Case"), CASE_ID);
	ck_assert_str_eq(header_of(message, "MIME-Version"), "1.0");
	ck_assert_ptr_null(header_of(message, "Precedence"));
	ck_assert_ptr_nonnull(date);
	ck_assert_int_eq(g_date_time_to_unix(date), NOW);

	/* LF line ends, as sendmail(1) expects, and 7-bit throughout. */
	ck_assert_ptr_null(memchr(raw, '\r', len));
	for (gsize i = 0; i < len; i++)
		ck_assert_msg((guchar)raw[i] < 0x80, "got 8-bit byte at %zu",
		    i);

	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

START_TEST(test_compose_no_optional_headers)
{
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;

	mail.in_reply_to = NULL;
	mail.references = NULL;
	mail.sender_name = NULL;
	mail.auto_submitted = "no";
	bytes = compose_message(&mail, NOW);
	message = parse_message(bytes);

	ck_assert_ptr_null(header_of(message, "In-Reply-To"));
	ck_assert_ptr_null(header_of(message, "References"));
	ck_assert_str_eq(header_of(message, "From"),
	    "escalation@esc.example");
	ck_assert_str_eq(header_of(message, "Auto-Submitted"),
	    "auto-generated");

	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

enum field { F_SUBJECT, F_SENDER_NAME, F_RECIPIENT, F_SENDER,
	F_IN_REPLY_TO, F_REFERENCES, F_CASE_ID, F_AUTO_SUBMITTED,
	F_MESSAGE_ID };

struct injection_case {
	const char *what;
	enum field field;
	const char *value;
};

static const struct injection_case injection_cases[] = {
	{ "subject CR LF", F_SUBJECT, "x\r\nBcc: victim@example.com" },
	{ "subject LF", F_SUBJECT, "x\nBcc: victim@example.com" },
	{ "subject CR", F_SUBJECT, "x\rBcc: victim@example.com" },
	{ "subject U+2028", F_SUBJECT, "x\xe2\x80\xa8" "Bcc: v@example.com" },
	{ "display name", F_SENDER_NAME, "Desk\r\nBcc: victim@example.com" },
	{ "recipient", F_RECIPIENT, "a@example.com\r\nBcc: v@example.com" },
	{ "sender", F_SENDER, "a@example.com\nBcc: victim@example.com" },
	{ "in-reply-to", F_IN_REPLY_TO, "o@x>\r\nBcc: victim@example.com" },
	{ "references", F_REFERENCES, "<a@x>\r\nBcc: victim@example.com" },
	{ "case id", F_CASE_ID, "ESC-1\r\nBcc: victim@example.com" },
	{ "auto-submitted", F_AUTO_SUBMITTED, "no\r\nBcc: v@example.com" },
	{ "message id", F_MESSAGE_ID, "m@x>\nBcc: victim@example.com" },
};

static void
mail_set(struct outgoing *mail, enum field field, const char *value)
{
	char **slots[] = {
		[F_SUBJECT] = &mail->subject,
		[F_SENDER_NAME] = &mail->sender_name,
		[F_RECIPIENT] = &mail->recipient,
		[F_SENDER] = &mail->sender,
		[F_IN_REPLY_TO] = &mail->in_reply_to,
		[F_REFERENCES] = &mail->references,
		[F_CASE_ID] = &mail->case_id,
		[F_AUTO_SUBMITTED] = &mail->auto_submitted,
		[F_MESSAGE_ID] = &mail->message_id,
	};

	*slots[field] = (char *)value;
}

START_TEST(test_compose_injection)
{
	const struct injection_case *ic = &injection_cases[_i];
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;
	char *block;

	mail_set(&mail, ic->field, ic->value);
	bytes = compose_message(&mail, NOW);
	message = parse_message(bytes);
	block = header_block(bytes);

	ck_assert_msg(header_of(message, "Bcc") == NULL, "%s: got a Bcc "
	    "header in \"%s\"", ic->what, block);
	ck_assert_msg(strstr(block, "\nBcc:") == NULL, "%s: got a Bcc line "
	    "in \"%s\"", ic->what, block);
	if (ic->field == F_SUBJECT)
		ck_assert_str_contains(g_mime_message_get_subject(message),
		    "x Bcc: v");

	g_free(block);
	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

START_TEST(test_compose_bad_address_left_out)
{
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;

	mail.recipient = "ann@example.com, victim@example.com";
	bytes = compose_message(&mail, NOW);
	message = parse_message(bytes);
	ck_assert_ptr_null(header_of(message, "To"));
	ck_assert_int_eq(internet_address_list_length(
	    g_mime_message_get_to(message)), 0);
	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

static const char *const subject_cases[] = {
	"Complaint received: ticket RZ-1234",
	"[" CASE_ID "] Complaint received: Re: Ärger mit der Übertragung",
	"Überprüfung der Beschwerde über die verspätete Übertragung der "
	    "Domain beispiel.de, Tickets RZ-1234 und PP-5678, bitte "
	    "dringend prüfen, es eilt sehr",
	"日本語の件名はとても長くなることがありますので、正しく分割されなけ"
	    "ればなりません。文字の境界で切ることが大切です。",
	"😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗😚😙😋😛😜🤪😝🤑🤗🤭🤫🤔"
	    "🤐🤨😐😑😶",
	"a😀b😃c😄d😁e😆f😅g🤣h😂i🙂j🙃k😉l😊m😇n🥰o😍p🤩q😘r😗s😚t",
	"looks =?UTF-8?B?ZXZpbA==?= encoded but is not",
	"é é é ü x ü",
	"token xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx end",
	"Ωmega at the start, and (paren) \"quotes\" and Ωmega at the end",
	"x",
};

/* Every encoded-word in LINES: at most 75 long, not empty, not glued. */
static void
check_encoded_words(char **lines, const char *subject)
{
	GRegex *re = g_regex_new("=\\?([^?]*)\\?([BbQq])\\?([^?]*)\\?=", 0,
	    0, NULL);

	for (char **l = lines; *l != NULL; l++) {
		GMatchInfo *match;
		const char *line = *l;

		ck_assert_msg(strlen(line) <= 76, "got a %zu-char line \"%s\" "
		    "for \"%s\"", strlen(line), line, subject);
		ck_assert_msg(strstr(line, "?==?") == NULL, "got glued words "
		    "in \"%s\"", line);
		ck_assert_msg(strstr(line, "=?" "?=") == NULL, "got an empty "
		    "word in \"%s\"", line);

		g_regex_match(re, line, 0, &match);
		while (g_match_info_matches(match)) {
			int start, end;
			char *text = g_match_info_fetch(match, 3);

			g_match_info_fetch_pos(match, 0, &start, &end);
			ck_assert_msg(end - start <= 75, "got a %d-char word "
			    "in \"%s\"", end - start, line);
			ck_assert_msg(*text != '\0', "got an empty word in "
			    "\"%s\"", line);
			ck_assert_msg(start > 0 && line[start - 1] == ' ',
			    "got a word glued before in \"%s\"", line);
			ck_assert_msg(line[end] == '\0' || line[end] == ' ',
			    "got a word glued after in \"%s\"", line);
			g_free(text);
			g_match_info_next(match, NULL);
		}
		g_match_info_free(match);
	}
	g_regex_unref(re);
}

START_TEST(test_compose_subject_words)
{
	const char *subject = subject_cases[_i];
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;
	char **lines;
	char *unfolded;

	mail.subject = (char *)subject;
	bytes = compose_message(&mail, NOW);
	lines = raw_header_lines(bytes, "Subject");
	ck_assert_msg(lines[0] != NULL, "got no Subject line");
	check_encoded_words(lines, subject);

	/* Both GMime's decoder and its parser give the text back. */
	message = parse_message(bytes);
	ck_assert_msg(strcmp(g_mime_message_get_subject(message),
	    subject) == 0, "got \"%s\", want \"%s\"",
	    g_mime_message_get_subject(message), subject);
	unfolded = g_strjoinv("", lines);
	{
		char *decoded = g_mime_utils_header_decode_text(NULL,
		    unfolded + strlen("Subject:"));

		g_strstrip(decoded);
		ck_assert_str_eq(decoded, subject);
		g_free(decoded);
	}

	g_free(unfolded);
	g_strfreev(lines);
	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

START_TEST(test_compose_subject_cleaned)
{
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;

	mail.subject = "  tab\there,\x01" "bell  and   spaces\x7f ";
	bytes = compose_message(&mail, NOW);
	message = parse_message(bytes);
	ck_assert_str_eq(g_mime_message_get_subject(message),
	    "tab here, bell and spaces");
	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

struct body_case {
	const char *what;
	const char *body;
	GMimeContentEncoding want_encoding;
	const char *want_text;
};

static const struct body_case body_cases[] = {
	{ "ASCII", "Hello,\nshort lines.\n", GMIME_CONTENT_ENCODING_7BIT,
	    "Hello,\nshort lines.\n" },
	{ "non-ASCII", "Grüße,\nÄrger über €.\n",
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE,
	    "Grüße,\nÄrger über €.\n" },
	{ "long line", "x 123456789 123456789 123456789 123456789 123456789 "
	    "123456789 123456789 123456789\n",
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE,
	    "x 123456789 123456789 123456789 123456789 123456789 "
	    "123456789 123456789 123456789\n" },
	{ "CR LF and no final newline", "a\r\nb",
	    GMIME_CONTENT_ENCODING_7BIT, "a\nb\n" },
};

START_TEST(test_compose_body)
{
	const struct body_case *bc = &body_cases[_i];
	struct outgoing mail = sample_mail();
	GBytes *bytes;
	GMimeMessage *message;
	GMimeObject *part;
	char *text;

	mail.body = (char *)bc->body;
	bytes = compose_message(&mail, NOW);
	message = parse_message(bytes);
	part = g_mime_message_get_mime_part(message);

	ck_assert_msg(GMIME_IS_TEXT_PART(part), "%s: not a text part",
	    bc->what);
	ck_assert_str_eq(g_mime_object_get_content_type_parameter(part,
	    "charset"), "utf-8");
	ck_assert_msg(g_mime_part_get_content_encoding(GMIME_PART(part)) ==
	    bc->want_encoding, "%s: got encoding %d, want %d", bc->what,
	    g_mime_part_get_content_encoding(GMIME_PART(part)),
	    bc->want_encoding);
	text = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
	ck_assert_msg(strcmp(text, bc->want_text) == 0, "%s: got \"%s\", "
	    "want \"%s\"", bc->what, text, bc->want_text);

	g_free(text);
	g_object_unref(message);
	g_bytes_unref(bytes);
}
END_TEST

/*
 * Send.
 */

/* An executable script NAME in DIR with BODY after the #! line. */
static char *
fake_script(const char *dir, const char *name, const char *body)
{
	char *path = g_build_filename(dir, name, NULL);
	char *text = g_strdup_printf("#!/bin/sh\n%s\n", body);

	ck_assert(g_file_set_contents(path, text, -1, NULL));
	ck_assert_int_eq(chmod(path, 0755), 0);
	g_free(text);
	return path;
}

/* A fake sendmail that records its argv and stdin in DIR. */
static char *
fake_recording(const char *dir)
{
	char *body = g_strdup_printf(": > '%s/argv'\n"
	    "for a in \"$@\"; do printf '%%s\\n' \"$a\" >> '%s/argv'; done\n"
	    "cat > '%s/stdin'\n", dir, dir, dir);
	char *path = fake_script(dir, "sendmail", body);

	g_free(body);
	return path;
}

static char *
read_in(const char *dir, const char *name)
{
	char *path = g_build_filename(dir, name, NULL);
	char *data = NULL;

	if (!g_file_get_contents(path, &data, NULL, NULL))
		data = NULL;
	g_free(path);
	return data;
}

static struct send_target *
target_for(const char *spec)
{
	GError *error = NULL;
	struct send_target *target = send_target_parse(spec, &error);

	ck_assert_msg(target != NULL, "parse \"%s\": %s", spec,
	    error != NULL ? error->message : "?");
	return target;
}

START_TEST(test_sendmail_argv_and_stdin)
{
	char *dir = test_tmpdir();
	char *fake = fake_recording(dir);
	char *spec = g_strdup_printf("%s -C /etc/postfix-esc", fake);
	struct send_target *target = target_for(spec);
	GBytes *message = g_bytes_new_static("Subject: t\n\n.body\n", 18);
	GError *error = NULL;
	char *argv, *input;

	ck_assert_msg(send_message(target, "escalation@esc.example",
	    "ann@example.com", message, &error) == 0, "got error \"%s\"",
	    error != NULL ? error->message : "?");
	argv = read_in(dir, "argv");
	input = read_in(dir, "stdin");
	ck_assert_str_eq(argv, "-C\n/etc/postfix-esc\n-i\n-f\n"
	    "escalation@esc.example\n--\nann@example.com\n");
	ck_assert_str_eq(input, "Subject: t\n\n.body\n");

	g_free(argv);
	g_free(input);
	g_bytes_unref(message);
	send_target_free(&target);
	ck_assert_ptr_null(target);
	g_free(spec);
	g_free(fake);
	test_tmpdir_remove(dir);
}
END_TEST

struct failing_case {
	const char *what;
	const char *script;
	int timeout;
	const char *want;
};

static const struct failing_case failing_cases[] = {
	{ "exit 75 after reading",
	    "cat >/dev/null; echo 'fatal: queue file write error' >&2; "
	    "exit 75", 0,
	    "exited with status 75: fatal: queue file write error" },
	{ "exit 75 without reading",
	    "echo 'temporary failure' >&2; exit 75", 0,
	    "exited with status 75: temporary failure" },
	{ "killed by a signal", "kill -TERM $$", 0,
	    "killed by signal 15: (no output)" },
	{ "exit 0 without reading", "exit 0", 0,
	    "of the message: (no output)" },
	{ "too slow", "echo 'still thinking' >&2; sleep 20", 1,
	    "no end within 1 seconds, killed: still thinking" },
};

START_TEST(test_sendmail_failure)
{
	const struct failing_case *fc = &failing_cases[_i];
	char *dir = test_tmpdir();
	char *fake = fake_script(dir, "sendmail", fc->script);
	struct send_target *target = target_for(fake);
	/* Large enough that a command not reading it blocks the writer. */
	GString *big = g_string_new("Subject: big\n\n");
	GBytes *message;
	GError *error = NULL;
	gint64 started = g_get_monotonic_time();

	while (big->len < 1024 * 1024)
		g_string_append(big, "0123456789abcdef0123456789abcdef\n");
	message = g_bytes_new(big->str, big->len);
	if (fc->timeout > 0)
		send_target_set_timeout(target, fc->timeout);

	ck_assert_int_eq(send_message(target, "escalation@esc.example",
	    "ann@example.com", message, &error), -1);
	ck_assert_msg(error != NULL && error->domain == ESC_ERROR &&
	    error->code == ESC_ERROR_SEND, "%s: want ESC_ERROR_SEND",
	    fc->what);
	ck_assert_msg(strstr(error->message, fc->want) != NULL,
	    "%s: got \"%s\", want it to contain \"%s\"", fc->what,
	    error->message, fc->want);
	ck_assert_msg(g_get_monotonic_time() - started < 10 * G_USEC_PER_SEC,
	    "%s: took too long", fc->what);

	g_error_free(error);
	g_bytes_unref(message);
	g_string_free(big, TRUE);
	send_target_free(&target);
	g_free(fake);
	test_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_sendmail_missing_command)
{
	struct send_target *target = target_for("/nonexistent/sendmail");
	GBytes *message = g_bytes_new_static("x\n", 2);
	GError *error = NULL;

	ck_assert_int_eq(send_message(target, "a@example.com",
	    "b@example.com", message, &error), -1);
	/* 127, unless valgrind in the child changes the status. */
	ck_assert_str_contains(error->message, "exited with status ");
	ck_assert_str_contains(error->message,
	    "cannot execute /nonexistent/sendmail");
	g_error_free(error);
	g_bytes_unref(message);
	send_target_free(&target);
}
END_TEST

START_TEST(test_send_refuses_bad_address)
{
	char *dir = test_tmpdir();
	char *fake = fake_recording(dir);
	struct send_target *target = target_for(fake);
	GBytes *message = g_bytes_new_static("x\n", 2);
	GError *error = NULL;
	char *argv;

	ck_assert_int_eq(send_message(target, "a@example.com",
	    "b@example.com\r\nRCPT TO:<v@example.com>", message, &error),
	    -1);
	ck_assert_int_eq(error->code, ESC_ERROR_REJECTED);
	ck_assert_str_eq(error->message, "recipient address refused: "
	    "\"b@example.com??RCPT TO:<v@example.com>\"");
	argv = read_in(dir, "argv");
	ck_assert_msg(argv == NULL, "got the command run with \"%s\"", argv);

	g_error_free(error);
	g_bytes_unref(message);
	send_target_free(&target);
	g_free(fake);
	test_tmpdir_remove(dir);
}
END_TEST

struct address_case {
	const char *address;
	gboolean want;
};

static const struct address_case address_cases[] = {
	{ "ann@example.com", TRUE },
	{ "ann+tag@sub.example.com", TRUE },
	{ "postmaster", TRUE },
	{ "", FALSE },
	{ "-oQ/tmp@example.com", FALSE },
	{ "a b@example.com", FALSE },
	{ "a@example.com\n", FALSE },
	{ "a@example.com, b@example.com", FALSE },
	{ "<a@example.com>", FALSE },
	{ "a\"b\"@example.com", FALSE },
	{ "ann@exämple.com", FALSE },
	{ "a\\b@example.com", FALSE },
};

START_TEST(test_address_valid)
{
	const struct address_case *ac = &address_cases[_i];

	ck_assert_msg(send_address_valid(ac->address) == ac->want,
	    "\"%s\": got %d, want %d", ac->address, !ac->want, ac->want);
}
END_TEST

struct target_case {
	const char *spec;
	const char *want_error;	/* NULL if accepted */
};

static const struct target_case target_cases[] = {
	{ "smtp:127.0.0.1:10026", NULL },
	{ "smtp:127.1.2.3:25", NULL },
	{ "smtp:[::1]:25", NULL },
	{ "smtp:::1:25", NULL },
	{ "smtp:localhost:25", NULL },
	{ "smtp:LOCALHOST:25", NULL },
	{ "/usr/sbin/sendmail -C /etc/postfix-esc", NULL },
	{ "smtp:192.0.2.1:25", "outbox target \"smtp:192.0.2.1:25\": host "
	    "\"192.0.2.1\" is not a loopback address (127.0.0.0/8, ::1 or "
	    "localhost)" },
	{ "smtp:128.0.0.1:25", "is not a loopback address" },
	{ "smtp:10.0.0.1:25", "is not a loopback address" },
	{ "smtp:mail.example.com:25", "is not a loopback address" },
	{ "smtp:localhost.example.com:25", "is not a loopback address" },
	{ "smtp:[2001:db8::1]:25", "is not a loopback address" },
	{ "smtp:::ffff:127.0.0.1:25", "is not a loopback address" },
	{ "smtp:127.0.0.1", "want smtp:HOST:PORT" },
	{ "smtp:127.0.0.1:0", "want smtp:HOST:PORT" },
	{ "smtp:127.0.0.1:65536", "want smtp:HOST:PORT" },
	{ "smtp::25", "want smtp:HOST:PORT" },
	{ "sendmail -t", "want an absolute path" },
	{ "", "outbox target: empty" },
	{ "   ", "want an absolute path" },
};

START_TEST(test_target_parse)
{
	const struct target_case *tc = &target_cases[_i];
	GError *error = NULL;
	struct send_target *target = send_target_parse(tc->spec, &error);

	if (tc->want_error == NULL) {
		ck_assert_msg(target != NULL, "\"%s\": got error \"%s\"",
		    tc->spec, error != NULL ? error->message : "?");
		send_target_free(&target);
		return;
	}
	ck_assert_msg(target == NULL, "\"%s\": accepted, want \"%s\"",
	    tc->spec, tc->want_error);
	ck_assert_int_eq(error->code, ESC_ERROR_CONFIG);
	ck_assert_msg(strstr(error->message, tc->want_error) != NULL,
	    "\"%s\": got \"%s\", want \"%s\"", tc->spec, error->message,
	    tc->want_error);
	g_error_free(error);
}
END_TEST

/* An SMTP server on 127.0.0.1, run in a thread, for SESSIONS
 * connections one after the other (1 unless set before the first). */
struct smtp_server {
	int listen_fd;
	int port;
	const char *rcpt_reply;
	const char *refused;	/* RCPT of this address gets a 550 */
	int hang_up_after;	/* mails, then close with no word; 0: never */
	int sessions;
	int connections;	/* accepted so far */
	GString *commands;	/* each command line, LF-ended */
	GString *data;		/* DATA as received, without the dot line */
	GString *input;
	GThread *thread;
};

static gboolean
server_line(struct smtp_server *srv, int fd, GString *line)
{
	for (;;) {
		char *eol = strstr(srv->input->str, "\r\n");
		char buf[4096];
		ssize_t n;

		if (eol != NULL) {
			gsize len = (gsize)(eol - srv->input->str) + 2;

			g_string_assign(line, "");
			g_string_append_len(line, srv->input->str,
			    (gssize)len);
			g_string_erase(srv->input, 0, (gssize)len);
			return TRUE;
		}
		n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			return FALSE;
		g_string_append_len(srv->input, buf, n);
	}
}

static void
server_say(int fd, const char *text)
{
	ck_assert_int_eq(send(fd, text, strlen(text), MSG_NOSIGNAL),
	    (ssize_t)strlen(text));
}

static void
server_data(struct smtp_server *srv, int fd, GString *line)
{
	server_say(fd, "354 go ahead\r\n");
	while (server_line(srv, fd, line) && strcmp(line->str, ".\r\n"))
		g_string_append_len(srv->data, line->str,
		    (gssize)line->len);
	server_say(fd, "250 2.0.0 queued as T1\r\n");
}

static void
server_rcpt(struct smtp_server *srv, int fd, const GString *line)
{
	if (srv->refused != NULL && strstr(line->str, srv->refused) != NULL)
		server_say(fd, "550 5.1.1 no such user\r\n");
	else
		server_say(fd, srv->rcpt_reply);
}

/* One connection, until QUIT, a hang-up, or HANG_UP_AFTER mails. */
static void
server_session(struct smtp_server *srv, int fd, GString *line)
{
	int mails = 0;

	server_say(fd, "220 test.example ESMTP\r\n");
	while (server_line(srv, fd, line)) {
		g_string_append_len(srv->commands, line->str,
		    (gssize)line->len - 2);
		g_string_append_c(srv->commands, '\n');
		if (g_str_has_prefix(line->str, "EHLO "))
			server_say(fd, "250-test.example\r\n"
			    "250-SIZE 1000000\r\n250 8BITMIME\r\n");
		else if (g_str_has_prefix(line->str, "MAIL FROM:"))
			server_say(fd, "250 2.1.0 ok\r\n");
		else if (g_str_has_prefix(line->str, "RCPT TO:"))
			server_rcpt(srv, fd, line);
		else if (strcmp(line->str, "DATA\r\n") == 0) {
			server_data(srv, fd, line);
			if (++mails == srv->hang_up_after)
				break;
		} else if (strcmp(line->str, "RSET\r\n") == 0)
			server_say(fd, "250 2.0.0 ok\r\n");
		else if (strcmp(line->str, "QUIT\r\n") == 0) {
			server_say(fd, "221 2.0.0 bye\r\n");
			break;
		} else
			server_say(fd, "500 5.5.2 what?\r\n");
	}
}

static gpointer
server_run(gpointer data)
{
	struct smtp_server *srv = data;
	struct timeval limit = { 5, 0 };
	GString *line = g_string_new(NULL);

	for (int n = 0; n < MAX(srv->sessions, 1); n++) {
		int fd = accept(srv->listen_fd, NULL, NULL);

		if (fd < 0)
			break;
		srv->connections++;
		g_string_truncate(srv->input, 0);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit,
		    sizeof(limit));
		server_session(srv, fd, line);
		close(fd);
	}
	g_string_free(line, TRUE);
	return NULL;
}

static struct smtp_server *
server_start_n(const char *rcpt_reply, int sessions, int hang_up_after,
    const char *refused)
{
	struct smtp_server *srv = g_new0(struct smtp_server, 1);

	srv->listen_fd = test_listen_loopback(&srv->port);
	srv->rcpt_reply = rcpt_reply;
	srv->sessions = sessions;
	srv->hang_up_after = hang_up_after;
	srv->refused = refused;
	srv->commands = g_string_new(NULL);
	srv->data = g_string_new(NULL);
	srv->input = g_string_new(NULL);
	srv->thread = g_thread_new("smtp", server_run, srv);
	return srv;
}

static struct smtp_server *
server_start(const char *rcpt_reply)
{
	return server_start_n(rcpt_reply, 1, 0, NULL);
}

/* Wait for the server's sessions to end; then its record is whole. */
static void
server_join(struct smtp_server *srv)
{
	g_thread_join(srv->thread);
	srv->thread = NULL;
}

static void
server_free(struct smtp_server *srv)
{
	if (srv->thread != NULL)
		server_join(srv);
	close(srv->listen_fd);
	g_string_free(srv->commands, TRUE);
	g_string_free(srv->data, TRUE);
	g_string_free(srv->input, TRUE);
	g_free(srv);
}

static struct send_target *
smtp_target(const struct smtp_server *srv)
{
	char *spec = g_strdup_printf("smtp:127.0.0.1:%d", srv->port);
	struct send_target *target = target_for(spec);

	g_free(spec);
	send_target_set_timeout(target, 10);
	return target;
}

START_TEST(test_smtp_envelope_and_dots)
{
	struct smtp_server *srv = server_start("250 2.1.5 ok\r\n");
	struct send_target *target = smtp_target(srv);
	static const char text[] = "Subject: dots\n\n.hidden\nplain\n..two\n"
	    ".\nend";
	GBytes *message = g_bytes_new_static(text, sizeof(text) - 1);
	GError *error = NULL;
	const char *commands;

	ck_assert_msg(send_message(target, "escalation@esc.example",
	    "ann@example.com", message, &error) == 0, "got error \"%s\"",
	    error != NULL ? error->message : "?");
	server_join(srv);

	commands = srv->commands->str;
	ck_assert_msg(g_str_has_prefix(commands, "EHLO "), "got \"%s\"",
	    commands);
	ck_assert_str_eq(strchr(commands, '\n') + 1,
	    "MAIL FROM:<escalation@esc.example>\n"
	    "RCPT TO:<ann@example.com>\nDATA\nQUIT\n");
	ck_assert_str_eq(srv->data->str, "Subject: dots\r\n\r\n..hidden\r\n"
	    "plain\r\n...two\r\n..\r\nend\r\n");

	g_bytes_unref(message);
	send_target_free(&target);
	server_free(srv);
}
END_TEST

START_TEST(test_smtp_451)
{
	struct smtp_server *srv = server_start("451 4.3.0 try again later\r\n");
	struct send_target *target = smtp_target(srv);
	GBytes *message = g_bytes_new_static("Subject: t\n\nx\n", 14);
	GError *error = NULL;
	char *want = g_strdup_printf("smtp 127.0.0.1:%d: RCPT TO: 451 4.3.0 "
	    "try again later", srv->port);

	ck_assert_int_eq(send_message(target, "escalation@esc.example",
	    "ann@example.com", message, &error), -1);
	ck_assert_int_eq(error->code, ESC_ERROR_SEND);
	ck_assert_str_eq(error->message, want);

	/* The client hung up after the refusal; no mail was sent. */
	server_join(srv);
	ck_assert_ptr_null(strstr(srv->commands->str, "DATA"));

	g_free(want);
	g_error_free(error);
	g_bytes_unref(message);
	send_target_free(&target);
	server_free(srv);
}
END_TEST

START_TEST(test_smtp_550_is_permanent)
{
	struct smtp_server *srv = server_start("550 5.1.1 no such user\r\n");
	struct send_target *target = smtp_target(srv);
	GBytes *message = g_bytes_new_static("Subject: t\n\nx\n", 14);
	GError *error = NULL;

	ck_assert_int_eq(send_message(target, "escalation@esc.example",
	    "ann@example.com", message, &error), -1);
	ck_assert_msg(error->code == ESC_ERROR_REJECTED, "got code %d, want "
	    "ESC_ERROR_REJECTED: %s", error->code, error->message);
	server_join(srv);
	g_error_free(error);
	g_bytes_unref(message);
	send_target_free(&target);
	server_free(srv);
}
END_TEST

START_TEST(test_smtp_nobody_listening)
{
	struct smtp_server *srv = server_start("250 ok\r\n");
	struct send_target *target;
	GBytes *message = g_bytes_new_static("x\n", 2);
	GError *error = NULL;
	int port = srv->port;
	char *spec;

	/* Take the port, then close it, so nothing answers there. */
	shutdown(srv->listen_fd, SHUT_RDWR);
	server_free(srv);
	spec = g_strdup_printf("smtp:127.0.0.1:%d", port);
	target = target_for(spec);

	ck_assert_int_eq(send_message(target, "a@example.com",
	    "b@example.com", message, &error), -1);
	ck_assert_str_contains(error->message, "connect: Connection refused");

	g_error_free(error);
	g_free(spec);
	g_bytes_unref(message);
	send_target_free(&target);
}
END_TEST

/* Send to ann, MIDDLE and cy in one session through SRV, then wait for
 * SRV's sessions to end; the results in RESULTS and ERRORS. */
static void
session_send(struct smtp_server *srv, const char *middle, int *results,
    GError **errors)
{
	struct send_target *target = smtp_target(srv);
	struct send_session *session = send_session_open(target);
	GBytes *message = g_bytes_new_static("Subject: t\n\nx\n", 14);
	const char *to[] = { "ann@example.com", middle, "cy@example.com" };

	for (int i = 0; i < 3; i++)
		results[i] = send_session_message(session,
		    "escalation@esc.example", to[i], message, &errors[i]);
	send_session_close(&session);
	server_join(srv);
	g_bytes_unref(message);
	send_target_free(&target);
}

static void
assert_all_sent(const int *results, GError *const *errors)
{
	for (int i = 0; i < 3; i++)
		ck_assert_msg(results[i] == 0, "mail %d: %s", i,
		    errors[i]->message);
}

/* Count the lines of the server's record that start with PREFIX. */
static int
commands_count(const struct smtp_server *srv, const char *prefix)
{
	char **lines = g_strsplit(srv->commands->str, "\n", -1);
	int n = 0;

	for (int i = 0; lines[i] != NULL; i++)
		n += g_str_has_prefix(lines[i], prefix);
	g_strfreev(lines);
	return n;
}

START_TEST(test_session_one_connection_for_many)
{
	struct smtp_server *srv = server_start("250 2.1.5 ok\r\n");
	int results[3];
	GError *errors[3] = { NULL };

	session_send(srv, "bob@example.com", results, errors);

	assert_all_sent(results, errors);
	ck_assert_int_eq(srv->connections, 1);
	ck_assert_int_eq(commands_count(srv, "EHLO "), 1);
	ck_assert_int_eq(commands_count(srv, "DATA"), 3);
	ck_assert_int_eq(commands_count(srv, "QUIT"), 1);
	server_free(srv);
}
END_TEST

START_TEST(test_session_refusal_then_rset)
{
	struct smtp_server *srv = server_start_n("250 2.1.5 ok\r\n", 1, 0,
	    "nobody@");
	int results[3];
	GError *errors[3] = { NULL };

	session_send(srv, "nobody@example.com", results, errors);

	/* The refused mail fails for good; the next one still goes, on
	 * the same connection. */
	ck_assert_int_eq(results[0], 0);
	ck_assert_int_eq(results[1], -1);
	ck_assert_int_eq(errors[1]->code, ESC_ERROR_REJECTED);
	ck_assert_msg(results[2] == 0, "mail 2: %s", errors[2]->message);
	ck_assert_int_eq(srv->connections, 1);
	ck_assert_int_eq(commands_count(srv, "RSET"), 1);
	ck_assert_int_eq(commands_count(srv, "DATA"), 2);
	g_error_free(errors[1]);
	server_free(srv);
}
END_TEST

START_TEST(test_session_server_hangs_up)
{
	/* A server that closes each connection after one mail, as one
	 * with a short idle timeout would. */
	struct smtp_server *srv = server_start_n("250 2.1.5 ok\r\n", 3, 1,
	    NULL);
	int results[3];
	GError *errors[3] = { NULL };

	session_send(srv, "bob@example.com", results, errors);

	assert_all_sent(results, errors);
	ck_assert_int_eq(srv->connections, 3);
	ck_assert_int_eq(commands_count(srv, "DATA"), 3);
	server_free(srv);
}
END_TEST

/*
 * Run.
 */

struct run_fixture {
	char *dir;
	struct store *store;
};

static struct run_fixture
run_setup(void)
{
	struct run_fixture fx = { test_tmpdir(), NULL };
	char *path = g_build_filename(fx.dir, "escalator.db", NULL);
	GError *error = NULL;

	fx.store = store_open(path, STORE_READWRITE, &error);
	ck_assert_msg(fx.store != NULL, "store_open: %s",
	    error != NULL ? error->message : "?");
	ck_assert_int_eq(store_set_synchronous(fx.store, STORE_SYNC_OFF,
	    NULL), 0);
	g_free(path);
	return fx;
}

static void
run_teardown(struct run_fixture *fx)
{
	store_close(&fx->store);
	test_tmpdir_remove(fx->dir);
}

/* Queue a row for CASE_ID, created at CREATED; gives its id. */
static gint64
run_queue(struct store *store, const char *message_id, time_t created)
{
	struct case_record rec = { .id = CASE_ID, .procedure = "complaint",
		.state = "open", .complainant = "ann@example.com",
		.subject = "Transfer stuck", .opened = created,
		.updated = created };
	struct outgoing mail = sample_mail();
	struct case_record found;
	GError *error = NULL;

	mail.message_id = (char *)message_id;
	mail.created = created;
	mail.next_attempt = 0;
	ck_assert_int_eq(store_begin(store, &error), 0);
	if (store_case_get(store, CASE_ID, &found, &error) == 0)
		ck_assert_int_eq(store_case_create(store, &rec, &error), 0);
	case_record_clear(&found);
	ck_assert_msg(store_outbox_queue(store, &mail, &error) == 0,
	    "queue: %s", error != NULL ? error->message : "?");
	ck_assert_int_eq(store_commit(store, &error), 0);
	return mail.id;
}

/* Queue N rows, created a second apart from FIRST; their ids in IDS. */
static void
run_queue_many(struct store *store, gint64 *ids, int n, time_t first)
{
	for (int i = 0; i < n; i++) {
		char *message_id = g_strdup_printf("ack.%d@esc.example", i);

		ids[i] = run_queue(store, message_id, first + i);
		g_free(message_id);
	}
}

/* What a row looks like after a pass. */
struct row_state {
	gint64 id;
	enum outgoing_state state;
	int attempts;
	time_t next_attempt;
	char *last_error;
};

static gboolean
row_copy(const struct outgoing *mail, void *data)
{
	struct row_state *row = data;

	if (mail->id != row->id)
		return TRUE;
	row->state = mail->state;
	row->attempts = mail->attempts;
	row->next_attempt = mail->next_attempt;
	row->last_error = g_strdup(mail->last_error);
	return FALSE;
}

static struct row_state
run_row(struct store *store, gint64 id)
{
	struct row_state row = { .id = id, .state = -1 };

	ck_assert_int_eq(store_case_outbox_each(store, CASE_ID, row_copy,
	    &row, NULL), 0);
	ck_assert_msg((int)row.state != -1, "row %" G_GINT64_FORMAT
	    " not found", id);
	return row;
}

/* One pass at NOW through TARGET; gives the rows tried, log in LOG_R. */
static int
run_pass(struct store *store, const struct send_target *target,
    time_t now, char **log_r)
{
	GError *error = NULL;
	int tried;

	log_capture_start();
	tried = outbox_run(store, target, now, NULL, &error);
	*log_r = log_capture_stop();
	ck_assert_msg(tried >= 0, "outbox_run: %s",
	    error != NULL ? error->message : "?");
	return tried;
}

START_TEST(test_run_sends_and_marks_sent)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_recording(fx.dir);
	struct send_target *target = target_for(fake);
	gint64 first = run_queue(fx.store, "ack.1@esc.example", NOW - 10);
	gint64 second = run_queue(fx.store, "ack.2@esc.example", NOW - 5);
	struct row_state row;
	char *log, *input, *want;

	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 2);
	row = run_row(fx.store, first);
	ck_assert_int_eq(row.state, OUTGOING_SENT);
	ck_assert_int_eq(row.attempts, 1);
	g_free(row.last_error);
	ck_assert_int_eq(run_row(fx.store, second).state, OUTGOING_SENT);

	/* The last message the fake got is the second row's. */
	input = read_in(fx.dir, "stdin");
	ck_assert_str_contains(input, "Message-ID: <ack.2@esc.example>");
	ck_assert_str_contains(input, "X-Escalator-Case: " CASE_ID);
	want = g_strdup_printf("info: case=" CASE_ID " outbox: sent id=%"
	    G_GINT64_FORMAT " to=<ann@example.com> attempts=1", first);
	ck_assert_str_contains(log, want);

	/* Nothing is left to do. */
	g_free(log);
	ck_assert_int_eq(run_pass(fx.store, target, NOW + 3600, &log), 0);

	g_free(want);
	g_free(input);
	g_free(log);
	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

/* More rows than one batch claims: one pass, one SMTP connection. */
START_TEST(test_run_batches_over_one_connection)
{
	struct run_fixture fx = run_setup();
	struct smtp_server *srv = server_start("250 2.1.5 ok\r\n");
	struct send_target *target = smtp_target(srv);
	gint64 ids[40];
	char *log;

	run_queue_many(fx.store, ids, 40, NOW - 100);
	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 40);
	server_join(srv);

	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(run_row(fx.store, ids[i]).state,
		    OUTGOING_SENT);
	ck_assert_int_eq(srv->connections, 1);
	ck_assert_int_eq(commands_count(srv, "DATA"), 40);

	g_free(log);
	send_target_free(&target);
	server_free(srv);
	run_teardown(&fx);
}
END_TEST

/* Told to stop after two mails: those two are recorded as sent, the
 * rest of the batch is given back, due at once for the next pass. */
static int keep_going_left;

static gboolean
keep_going_counted(void)
{
	return keep_going_left-- > 0;
}

START_TEST(test_run_stops_when_told)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_recording(fx.dir);
	struct send_target *target = target_for(fake);
	GError *error = NULL;
	gint64 ids[5];
	char *log;
	int tried;

	run_queue_many(fx.store, ids, 5, NOW - 10);

	/* Asked before the pass claims, then before the second mail. */
	keep_going_left = 2;
	tried = outbox_run(fx.store, target, NOW, keep_going_counted,
	    &error);
	ck_assert_msg(tried == 2, "tried %d: %s", tried,
	    error != NULL ? error->message : "");
	for (int i = 0; i < 5; i++) {
		struct row_state row = run_row(fx.store, ids[i]);

		ck_assert_int_eq(row.state, i < 2 ? OUTGOING_SENT :
		    OUTGOING_QUEUED);
		ck_assert_int_eq(row.attempts, i < 2 ? 1 : 0);
		if (i >= 2)
			ck_assert_int_le(row.next_attempt, NOW);
		g_free(row.last_error);
	}

	/* The next pass sends the rest. */
	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 3);
	ck_assert_int_eq(run_row(fx.store, ids[4]).state, OUTGOING_SENT);

	g_free(log);
	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

/* A batch cut short (here by one "stop" that is then taken back) gives
 * its untried rows back; the same pass claims and sends them, and does
 * not take them for rows the store failed to move. */
static int keep_going_calls;

static gboolean
keep_going_but_third(void)
{
	return ++keep_going_calls != 3;
}

START_TEST(test_run_sends_rows_given_back)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_recording(fx.dir);
	struct send_target *target = target_for(fake);
	GError *error = NULL;
	gint64 ids[5];
	int tried;

	run_queue_many(fx.store, ids, 5, NOW - 10);
	keep_going_calls = 0;
	log_capture_start();
	tried = outbox_run(fx.store, target, NOW, keep_going_but_third,
	    &error);
	g_free(log_capture_stop());
	ck_assert_msg(tried == 5, "tried %d: %s", tried,
	    error != NULL ? error->message : "");
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(run_row(fx.store, ids[i]).state,
		    OUTGOING_SENT);

	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

START_TEST(test_run_failure_keeps_queued)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_script(fx.dir, "sendmail",
	    "echo 'queue file write error' >&2; exit 75");
	struct send_target *target = target_for(fake);
	gint64 id = run_queue(fx.store, "ack.1@esc.example", NOW - 10);
	struct row_state row;
	char *log;

	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 1);
	row = run_row(fx.store, id);
	ck_assert_int_eq(row.state, OUTGOING_QUEUED);
	ck_assert_int_eq(row.attempts, 1);
	ck_assert_int_eq(row.next_attempt, NOW + 60);
	ck_assert_str_contains(row.last_error,
	    "exited with status 75: queue file write error");
	ck_assert_str_contains(log, "warning: case=" CASE_ID " outbox: "
	    "deferred id=");
	ck_assert_str_contains(log, "attempts=1 retry_in=60s: ");
	g_free(row.last_error);
	g_free(log);

	/* Not due again before its time; then backed off further. */
	ck_assert_int_eq(run_pass(fx.store, target, NOW + 59, &log), 0);
	g_free(log);
	ck_assert_int_eq(run_pass(fx.store, target, NOW + 60, &log), 1);
	row = run_row(fx.store, id);
	ck_assert_int_eq(row.attempts, 2);
	ck_assert_int_eq(row.next_attempt, NOW + 60 + 300);
	g_free(row.last_error);
	g_free(log);

	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

/* A row another sender (the daemon, or a second "outbox flush") has
 * claimed is not sent again, unless that sender died and its claim ran
 * out. */
START_TEST(test_run_skips_rows_claimed_by_another_sender)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_recording(fx.dir);
	struct send_target *target = target_for(fake);
	gint64 id = run_queue(fx.store, "ack.1@esc.example", NOW - 10);
	char *path = g_build_filename(fx.dir, "escalator.db", NULL);
	struct store *other = store_open(path, STORE_READWRITE, NULL);
	char *log;

	ck_assert_ptr_nonnull(other);
	ck_assert_int_eq(store_begin(other, NULL), 0);
	ck_assert_int_eq(store_outbox_claim(other, id, NOW, NOW + 120, NULL),
	    1);
	ck_assert_int_eq(store_commit(other, NULL), 0);

	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 0);
	ck_assert_int_eq(run_row(fx.store, id).state, OUTGOING_QUEUED);
	g_free(log);
	ck_assert_int_eq(run_pass(fx.store, target, NOW + 120, &log), 1);
	ck_assert_int_eq(run_row(fx.store, id).state, OUTGOING_SENT);
	g_free(log);

	store_close(&other);
	g_free(path);
	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

/* The MTA refuses for good (sendmail's EX_NOUSER): failed at once. */
START_TEST(test_run_permanent_refusal_fails_at_once)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_script(fx.dir, "sendmail",
	    "cat >/dev/null; echo 'user unknown' >&2; exit 67");
	struct send_target *target = target_for(fake);
	gint64 id = run_queue(fx.store, "ack.1@esc.example", NOW - 10);
	struct row_state row;
	char *log;

	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 1);
	row = run_row(fx.store, id);
	ck_assert_int_eq(row.state, OUTGOING_FAILED);
	ck_assert_int_eq(row.attempts, 1);
	ck_assert_str_contains(row.last_error, "status 67: user unknown");
	ck_assert_str_contains(log, "outbox: failed id=");
	g_free(row.last_error);
	g_free(log);
	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

START_TEST(test_run_gives_up_after_max_age)
{
	struct run_fixture fx = run_setup();
	char *fake = fake_script(fx.dir, "sendmail", "exit 75");
	struct send_target *target = target_for(fake);
	gint64 old = run_queue(fx.store, "ack.1@esc.example",
	    NOW - OUTBOX_MAX_AGE);
	gint64 near = run_queue(fx.store, "ack.2@esc.example",
	    NOW - OUTBOX_MAX_AGE + 30);
	struct row_state row;
	char *log;

	ck_assert_int_eq(run_pass(fx.store, target, NOW, &log), 2);
	row = run_row(fx.store, old);
	ck_assert_int_eq(row.state, OUTGOING_FAILED);
	ck_assert_int_eq(row.attempts, 1);
	g_free(row.last_error);
	ck_assert_str_contains(log, "warning: case=" CASE_ID " outbox: failed "
	    "id=");
	ck_assert_str_contains(log, "age=432000s limit=432000s");

	/* A row near the limit gets one last try at the limit. */
	row = run_row(fx.store, near);
	ck_assert_int_eq(row.state, OUTGOING_QUEUED);
	ck_assert_int_eq(row.next_attempt, NOW + 30);
	g_free(row.last_error);

	g_free(log);
	send_target_free(&target);
	g_free(fake);
	run_teardown(&fx);
}
END_TEST

START_TEST(test_backoff)
{
	static const int want[][2] = { { 0, 0 }, { 1, 60 }, { 2, 300 },
		{ 3, 900 }, { 4, 1800 }, { 5, 3600 }, { 50, 3600 } };

	for (size_t i = 0; i < G_N_ELEMENTS(want); i++)
		ck_assert_msg(outbox_backoff(want[i][0]) == want[i][1],
		    "attempts %d: got %d, want %d", want[i][0],
		    outbox_backoff(want[i][0]), want[i][1]);
}
END_TEST

static Suite *
outbox_suite(void)
{
	Suite *suite = suite_create("outbox");
	TCase *compose = tcase_create("compose");
	TCase *send = tcase_create("send");
	TCase *run = tcase_create("run");

	tcase_add_test(compose, test_compose_headers);
	tcase_add_test(compose, test_compose_no_optional_headers);
	tcase_add_loop_test(compose, test_compose_injection, 0,
	    G_N_ELEMENTS(injection_cases));
	tcase_add_test(compose, test_compose_bad_address_left_out);
	tcase_add_loop_test(compose, test_compose_subject_words, 0,
	    G_N_ELEMENTS(subject_cases));
	tcase_add_test(compose, test_compose_subject_cleaned);
	tcase_add_loop_test(compose, test_compose_body, 0,
	    G_N_ELEMENTS(body_cases));
	suite_add_tcase(suite, compose);

	tcase_add_test(send, test_sendmail_argv_and_stdin);
	tcase_add_loop_test(send, test_sendmail_failure, 0,
	    G_N_ELEMENTS(failing_cases));
	tcase_add_test(send, test_sendmail_missing_command);
	tcase_add_test(send, test_send_refuses_bad_address);
	tcase_add_loop_test(send, test_address_valid, 0,
	    G_N_ELEMENTS(address_cases));
	tcase_add_loop_test(send, test_target_parse, 0,
	    G_N_ELEMENTS(target_cases));
	tcase_add_test(send, test_smtp_envelope_and_dots);
	tcase_add_test(send, test_smtp_451);
	tcase_add_test(send, test_smtp_550_is_permanent);
	tcase_add_test(send, test_smtp_nobody_listening);
	tcase_add_test(send, test_session_one_connection_for_many);
	tcase_add_test(send, test_session_refusal_then_rset);
	tcase_add_test(send, test_session_server_hangs_up);
	tcase_set_timeout(send, 30);
	suite_add_tcase(suite, send);

	tcase_add_test(run, test_run_sends_and_marks_sent);
	tcase_add_test(run, test_run_batches_over_one_connection);
	tcase_add_test(run, test_run_stops_when_told);
	tcase_add_test(run, test_run_sends_rows_given_back);
	tcase_add_test(run, test_run_failure_keeps_queued);
	tcase_add_test(run, test_run_permanent_refusal_fails_at_once);
	tcase_add_test(run, test_run_skips_rows_claimed_by_another_sender);
	tcase_add_test(run, test_run_gives_up_after_max_age);
	tcase_add_test(run, test_backoff);
	suite_add_tcase(suite, run);
	return suite;
}

int
main(void)
{
	return test_run_suite(outbox_suite());
}
