/*
 * check_messages.c: the hard real-world messages of t/messages/, read
 * and classified under the test rules, each with the result described
 * in t/messages/README. Message 14 is also fed as the milter rebuilds
 * it (headers as "Name: value" with LF folding, then CRLF body) and
 * must give the same result. Hostile messages too large to commit (a
 * 10 MB line, 1,000 levels of nesting) are made here, and must give
 * their result within the test timeout.
 */
#include <string.h>

#include "parser/message.h"
#include "rules/classify.h"
#include "t/testutil.h"

static struct rules *rules;

static void
setup(void)
{
	char *path = test_path("t/rules/test-rules.yaml");
	char *templates = test_path("templates");
	GError *error = NULL;

	rules = rules_load(path, templates, &error);
	ck_assert_msg(rules != NULL, "test rules: %s", error ?
	    error->message : "");
	g_free(path);
	g_free(templates);
}

static void
teardown(void)
{
	rules_unref(&rules);
}

static const struct {
	const char *file;
	const char *envelope_from;
	const char *case_ref;	/* NULL: none */
	const char *command;	/* NULL: none */
	const char *tickets;	/* joined by ","; "" for none */
	enum automatic automatic;
	gboolean answers_us;
} expected[] = {
	{ "01-gmime-adjacent-b-words.eml", "ana.lindqvist@example.org",
	    "ESC-42", "ESCALATE", "", AUTO_NONE, TRUE },
	{ "03-gateway-tag-glued-to-encoded-word.eml", "t.wrona@example.net",
	    NULL, NULL, "123456", AUTO_NONE, FALSE },
	{ "04-localized-reply-prefixes.eml", "mei.chen@example.org",
	    "ESC-42", "RESOLVED", "", AUTO_NONE, TRUE },
	{ "06-outlook-forward-html-tnef.eml", "jonas.berg@example.org",
	    NULL, NULL, "2024-0042", AUTO_NONE, FALSE },
	{ "07-out-of-office-with-ticket-and-keyword.eml",
	    "lena.brandt@example.net", NULL, NULL, "123456", AUTO_REPLY,
	    TRUE },
	{ "08-helpdesk-autoack-loop.eml", "support@helpdesk.example.net",
	    NULL, NULL, "123456", AUTO_NONE, TRUE },
	{ "09-dsn-bounce-of-our-ack.eml", "", NULL, NULL, "123456",
	    AUTO_BOUNCE, FALSE },
	{ "11-raw-8bit-subject-cp1252-body.eml", "rene.fabre@example.net",
	    NULL, NULL, "2024-0042", AUTO_NONE, FALSE },
	{ "13-bad-boundaries-chunked-base64.eml", "ines.moreau@example.net",
	    NULL, NULL, "2024-0042", AUTO_NONE, FALSE },
	{ "14-milter-wire-format.eml", "ana.lindqvist@example.org",
	    "ESC-42", "ESCALATE", "2024-0042", AUTO_NONE, FALSE },
	{ "20-encoded-subject-split-over-folds.eml",
	    "joerg.mueller@example.net", "ESC-42", "ESCALATE", "", AUTO_NONE,
	    TRUE },
	{ "21-invalid-unpadded-base64.eml", "pia.koenig@example.net", NULL,
	    NULL, "123456,2024-0042", AUTO_NONE, FALSE },
	{ "22-mislabelled-charsets.eml", "zoe.adams@example.net", NULL, NULL,
	    "2024-0042,2024-0043", AUTO_NONE, FALSE },
	{ "23-raw-8bit-headers.eml", "joerg.mueller@example.net", "ESC-42",
	    "ESCALATE", "", AUTO_NONE, TRUE },
	{ "24-nul-bytes.eml", "nils.olsen@example.net", NULL, NULL,
	    "123456,2024-0042,777", AUTO_NONE, FALSE },
	{ "25-dsn-rfc3464-headers-only.eml", "", NULL, NULL, "", AUTO_BOUNCE,
	    FALSE },
	{ "26-dsn-nonstandard-qmail.eml", "", NULL, NULL, "123456",
	    AUTO_BOUNCE, FALSE },
	{ "27-tnef-only.eml", "karl.weber@example.net", NULL, NULL, "123456",
	    AUTO_NONE, FALSE },
	{ "28-html-only.eml", "ada.brook@example.net", NULL, NULL,
	    "2024-0042,4321", AUTO_NONE, FALSE },
	{ "29-missing-message-id.eml", "olaf.peters@example.com", NULL, NULL,
	    "123456", AUTO_NONE, FALSE },
	{ "30-duplicated-message-ids.eml", "olaf.peters@example.com", NULL,
	    NULL, "2024-0042", AUTO_NONE, FALSE },
};

static void
check_classification(const char *name, const struct classification *cls,
    int i)
{
	char *tickets;

	g_ptr_array_add(cls->tickets, NULL);
	tickets = g_strjoinv(",", (char **)cls->tickets->pdata);
	g_ptr_array_remove_index(cls->tickets, cls->tickets->len - 1);

	ck_assert_msg(g_strcmp0(cls->case_ref, expected[i].case_ref) == 0,
	    "%s: case: got %s, want %s", name, cls->case_ref,
	    expected[i].case_ref);
	ck_assert_msg(g_strcmp0(cls->command, expected[i].command) == 0,
	    "%s: command: got %s, want %s", name, cls->command,
	    expected[i].command);
	ck_assert_msg(strcmp(tickets, expected[i].tickets) == 0,
	    "%s: tickets: got \"%s\", want \"%s\"", name, tickets,
	    expected[i].tickets);
	ck_assert_msg(cls->automatic == expected[i].automatic,
	    "%s: automatic: got %s, want %s", name,
	    automatic_name(cls->automatic),
	    automatic_name(expected[i].automatic));
	ck_assert_msg(cls->answers_us == expected[i].answers_us,
	    "%s: answers us: got %d, want %d", name, cls->answers_us,
	    expected[i].answers_us);
	ck_assert_msg(cls->warnings->len == 0, "%s: warnings: %s", name,
	    cls->warnings->len ? (char *)cls->warnings->pdata[0] : "");
	g_free(tickets);
}

START_TEST(hard_message_gives_expected_result)
{
	char *relative = g_build_filename("t/messages", expected[_i].file,
	    NULL);
	size_t len;
	char *data = test_read(relative, &len);
	struct message *msg = message_parse(data, len);
	struct classification cls;

	classify_message(rules, msg, expected[_i].envelope_from, &cls);
	check_classification(expected[_i].file, &cls, _i);
	classification_clear(&cls);
	message_free(&msg);
	g_free(data);
	g_free(relative);
}
END_TEST

/* Message 14 as libmilter hands it over: each header as name and value
 * (value folded with LF and TAB, no CR), then the body in chunks. */
static char *
as_milter_rebuilds_it(const char *data, size_t len, size_t *len_r)
{
	const char *end = g_strstr_len(data, (gssize)len, "\r\n\r\n");
	GString *out = g_string_new(NULL);
	char *headers, **lines;

	ck_assert_ptr_nonnull(end);
	headers = g_strndup(data, (gsize)(end - data));
	lines = g_strsplit(headers, "\r\n", -1);
	for (char **l = lines; *l != NULL; l++) {
		if (**l == ' ' || **l == '\t') {
			g_string_append_printf(out, "\n%s", *l);
			continue;
		}
		if (l != lines)
			g_string_append(out, "\r\n");
		g_string_append(out, *l);
	}
	g_string_append(out, "\r\n\r\n");
	g_string_append_len(out, end + 4, (gssize)(len - (size_t)(end + 4 -
	    data)));
	g_strfreev(lines);
	g_free(headers);
	*len_r = out->len;
	return g_string_free(out, FALSE);
}

START_TEST(milter_form_reads_like_the_file)
{
	size_t len, rebuilt_len;
	char *data = test_read("t/messages/14-milter-wire-format.eml", &len);
	char *rebuilt = as_milter_rebuilds_it(data, len, &rebuilt_len);
	struct message *a = message_parse(data, len);
	struct message *b = message_parse(rebuilt, rebuilt_len);
	struct classification cls;

	ck_assert_str_eq(b->subject, a->subject);
	ck_assert_str_eq(b->body, a->body);
	ck_assert_str_eq(b->message_id, a->message_id);
	classify_message(rules, b, "ana.lindqvist@example.org", &cls);
	check_classification("14 as rebuilt by the milter", &cls, 9);
	classification_clear(&cls);
	message_free(&a);
	message_free(&b);
	g_free(rebuilt);
	g_free(data);
}
END_TEST

static const struct {
	const char *headers;
	const char *envelope_from;
	enum automatic want;
} automatic_cases[] = {
	{ "Precedence: bulky\r\n", "a@example.net", AUTO_NONE },
	{ "Precedence: list\r\n", "a@example.net", AUTO_BULK },
	{ "Auto-Submitted: nope\r\n", "a@example.net", AUTO_REPLY },
	{ "Auto-Submitted: no\r\n", "a@example.net", AUTO_NONE },
	{ "X-Auto-Response-Suppress: All\r\n", "a@example.net", AUTO_NONE },
	{ "", "MAILER-DAEMON", AUTO_BOUNCE },
	{ "", "postmaster@example.net", AUTO_BOUNCE },
	{ "", "", AUTO_BOUNCE },
	{ "List-Id: <x.example.net>\r\n", "a@example.net", AUTO_BULK },
};

/* The classifier follows the parser's RFC 3834 reading word for word. */
START_TEST(automatic_mail_is_recognised_by_whole_words)
{
	char *text = g_strdup_printf("From: a@example.net\r\n%sSubject: "
	    "hello\r\n\r\nbody\r\n", automatic_cases[_i].headers);
	struct message *msg = message_parse(text, strlen(text));
	struct classification cls;

	classify_message(rules, msg, automatic_cases[_i].envelope_from, &cls);
	ck_assert_msg(cls.automatic == automatic_cases[_i].want,
	    "%s from <%s>: got %s, want %s", automatic_cases[_i].headers,
	    automatic_cases[_i].envelope_from, automatic_name(cls.automatic),
	    automatic_name(automatic_cases[_i].want));
	classification_clear(&cls);
	message_free(&msg);
	g_free(text);
}
END_TEST

static const struct {
	const char *subject;
	const char *command;
	const char *text;
} subjects[] = {
	{ "Re: [ESC-42] RESOLVED", "RESOLVED", NULL },
	{ "Re: [ESC-42] resolved", "RESOLVED", NULL },
	{ "Re: [ESC-42]RESOLVEDX", NULL, NULL },
	{ "Re: [ESC-42] UNRESOLVED", NULL, NULL },
	{ "Re: AW: [ESC-2026-000042] ESCALATE: liaison away until Monday",
	    "ESCALATE", "liaison away until Monday" },
	{ "ESCALATE [ESC-42]", "ESCALATE", NULL },
	{ "Please escalate my complaint", NULL, NULL },
	{ "Re: [ESC-42] thanks, no command here", NULL, NULL },
};

START_TEST(commands_are_whole_words_after_a_tag)
{
	struct message msg = { 0 };
	struct classification cls;
	char *refs[] = { NULL };

	msg.subject = (char *)subjects[_i].subject;
	msg.body = "";
	msg.references = refs;
	classify_message(rules, &msg, "x@example.net", &cls);
	ck_assert_msg(g_strcmp0(cls.command, subjects[_i].command) == 0,
	    "\"%s\": got %s, want %s", subjects[_i].subject, cls.command,
	    subjects[_i].command);
	ck_assert_msg(g_strcmp0(cls.command_text, subjects[_i].text) == 0,
	    "\"%s\": text: got %s, want %s", subjects[_i].subject,
	    cls.command_text, subjects[_i].text);
	classification_clear(&cls);
}
END_TEST

START_TEST(thousands_of_reply_prefixes_are_all_stripped)
{
	GString *subject = g_string_new(NULL);
	struct message msg = { 0 };
	struct classification cls;
	char *refs[] = { NULL };

	for (int i = 0; i < 4000; i++)
		g_string_append(subject, i % 2 ? "Re: " : "AW:");
	g_string_append(subject, " [ESC-42] RESOLVED");
	msg.subject = subject->str;
	msg.body = "";
	msg.references = refs;
	classify_message(rules, &msg, "x@example.net", &cls);
	ck_assert_str_eq(cls.subject, "[ESC-42] RESOLVED");
	ck_assert_str_eq(cls.case_ref, "ESC-42");
	ck_assert_str_eq(cls.command, "RESOLVED");
	ck_assert_int_eq(cls.warnings->len, 0);
	classification_clear(&cls);
	g_string_free(subject, TRUE);
}
END_TEST

START_TEST(long_subject_is_cut_on_a_character_boundary)
{
	GString *subject = g_string_new("Re: ");
	struct message msg = { 0 };
	struct classification cls;
	char *refs[] = { NULL };

	for (int i = 0; i < 2000; i++)
		g_string_append(subject, "\xc3\xa9");	/* é */
	msg.subject = subject->str;
	msg.body = "";
	msg.references = refs;
	classify_message(rules, &msg, "x@example.net", &cls);
	ck_assert_uint_le(strlen(cls.subject), (size_t)rules->subject_scan);
	ck_assert(g_utf8_validate(cls.subject, -1, NULL));
	classification_clear(&cls);
	g_string_free(subject, TRUE);
}
END_TEST

START_TEST(tickets_per_message_are_capped)
{
	GString *body = g_string_new(NULL);
	struct message msg = { 0 };
	struct classification cls;
	char *refs[] = { NULL };

	for (int i = 0; i < 15000; i++)
		g_string_append_printf(body, "[IANA #%d] ", 100000 + i);
	msg.subject = "Many tickets";
	msg.body = body->str;
	msg.references = refs;
	classify_message(rules, &msg, "x@example.net", &cls);
	ck_assert_int_eq(cls.tickets->len, rules->ticket_limit);
	ck_assert_int_eq(cls.warnings->len, 1);
	ck_assert_str_contains(cls.warnings->pdata[0], "more than 50");
	classification_clear(&cls);
	g_string_free(body, TRUE);
}
END_TEST

#define TEN_MB (10 * 1024 * 1024)

/* Classify the message TEXT as sent by x@example.net. */
static void
classify_text(const GString *text, struct message **msg_r,
    struct classification *cls)
{
	*msg_r = message_parse(text->str, text->len);
	classify_message(rules, *msg_r, "x@example.net", cls);
}

static void
assert_tag_and_command(const struct classification *cls)
{
	ck_assert_str_eq(cls->case_ref, "ESC-42");
	ck_assert_str_eq(cls->command, "ESCALATE");
}

/* One 10 MB line of body: the start is read, the rest left out. */
START_TEST(ten_megabyte_body_line_is_read_in_bounded_time)
{
	GString *text = g_string_new("From: x@example.net\r\n"
	    "Subject: Re: [ESC-42] ESCALATE\r\n\r\nTicket 2024-0042 ");
	struct message *msg;
	struct classification cls;

	while (text->len < TEN_MB)
		g_string_append(text, "Ticket 2099-9999 padding ");
	g_string_append(text, "\r\n");
	classify_text(text, &msg, &cls);
	assert_tag_and_command(&cls);
	ck_assert_str_eq(cls.tickets->pdata[0], "2024-0042");
	ck_assert_ptr_nonnull(msg->limits);
	ck_assert_str_contains(msg->limits, "body limit");
	classification_clear(&cls);
	message_free(&msg);
	g_string_free(text, TRUE);
}
END_TEST

/*
 * One 10 MB header line that is all would-be encoded-words. Both
 * GMime's decoder and ours once took time quadratic in its length
 * (560 KB took 30 s): the line is cut before GMime, ours is linear.
 */
static const char *const long_header_lines[] = {
	"Subject: [ESC-42] ESCALATE ",
	"Subject: Re: =?UTF-8?Q?[ESC-42]_ESCALATE?= ",
	"Content-Description: ",
	"Content-Type: text/plain; name=",
	"Date: ",
	"Message-ID: ",
};

START_TEST(ten_megabyte_header_line_is_read_in_bounded_time)
{
	GString *text = g_string_new(NULL);
	struct message *msg;
	struct classification cls;

	if (_i > 1)
		g_string_append(text, "Subject: [ESC-42] ESCALATE\r\n");
	g_string_append(text, long_header_lines[_i]);
	while (text->len < TEN_MB)
		g_string_append(text, "=?c?B?A");
	g_string_append(text, "\r\nFrom: x@example.net\r\n\r\n"
	    "Ticket 2024-0042\r\n");
	classify_text(text, &msg, &cls);
	assert_tag_and_command(&cls);
	ck_assert_str_eq(msg->from, "x@example.net");
	ck_assert_str_contains(msg->body, "Ticket 2024-0042");
	classification_clear(&cls);
	message_free(&msg);
	g_string_free(text, TRUE);
}
END_TEST

/* A 10 MB message that is one line with no end, no body. */
START_TEST(ten_megabyte_line_without_end_is_safe)
{
	GString *text = g_string_new("Subject: [ESC-42] ESCALATE ");
	struct message *msg;
	struct classification cls;

	while (text->len < TEN_MB)
		g_string_append(text, "x");
	classify_text(text, &msg, &cls);
	assert_tag_and_command(&cls);
	ck_assert_str_eq(msg->body, "");
	classification_clear(&cls);
	message_free(&msg);
	g_string_free(text, TRUE);
}
END_TEST

/*
 * 1,000 levels of nesting, each kind GMime recurses on: the outer
 * headers still give the case and command; the text at the bottom is
 * left out, and the log is told.
 */
static const char *const nesting_kinds[] = {
	"multipart/mixed", "multipart/alternative", "message/rfc822",
};

static GString *
nested_1000(const char *kind)
{
	GString *out = g_string_new("From: x@example.net\r\n"
	    "Subject: Re: [ESC-42] ESCALATE\r\nMIME-Version: 1.0\r\n");
	gboolean multipart = g_str_has_prefix(kind, "multipart/");

	for (int i = 0; i < 1000; i++) {
		if (multipart)
			g_string_append_printf(out, "Content-Type: %s; "
			    "boundary=\"n%d\"\r\n\r\n--n%d\r\n", kind, i, i);
		else
			g_string_append_printf(out, "Content-Type: %s\r\n\r\n"
			    "Subject: level %d\r\n", kind, i);
	}
	g_string_append(out, "Content-Type: text/plain\r\n\r\n"
	    "Ticket 2024-0042\r\n");
	for (int i = 999; multipart && i >= 0; i--)
		g_string_append_printf(out, "--n%d--\r\n", i);
	return out;
}

START_TEST(thousand_levels_of_nesting_are_cut)
{
	GString *text = nested_1000(nesting_kinds[_i]);
	struct message *msg;
	struct classification cls;

	classify_text(text, &msg, &cls);
	assert_tag_and_command(&cls);
	ck_assert_str_eq(msg->subject, "Re: [ESC-42] ESCALATE");
	ck_assert_int_eq(cls.tickets->len, 0);
	ck_assert_ptr_nonnull(msg->limits);
	classification_clear(&cls);
	message_free(&msg);
	g_string_free(text, TRUE);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("messages");
	TCase *tc = tcase_create("hard messages");
	TCase *big = tcase_create("hostile sizes");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, hard_message_gives_expected_result, 0,
	    G_N_ELEMENTS(expected));
	tcase_add_test(tc, milter_form_reads_like_the_file);
	tcase_add_loop_test(tc, automatic_mail_is_recognised_by_whole_words, 0,
	    G_N_ELEMENTS(automatic_cases));
	tcase_add_loop_test(tc, commands_are_whole_words_after_a_tag, 0,
	    G_N_ELEMENTS(subjects));
	tcase_add_test(tc, thousands_of_reply_prefixes_are_all_stripped);
	tcase_add_test(tc, long_subject_is_cut_on_a_character_boundary);
	tcase_add_test(tc, tickets_per_message_are_capped);
	suite_add_tcase(s, tc);

	/* Generous for valgrind and ASan; a quadratic cost takes hours. */
	tcase_add_checked_fixture(big, setup, teardown);
	tcase_set_timeout(big, 120);
	tcase_add_test(big, ten_megabyte_body_line_is_read_in_bounded_time);
	tcase_add_loop_test(big,
	    ten_megabyte_header_line_is_read_in_bounded_time, 0,
	    G_N_ELEMENTS(long_header_lines));
	tcase_add_test(big, ten_megabyte_line_without_end_is_safe);
	tcase_add_loop_test(big, thousand_levels_of_nesting_are_cut, 0,
	    G_N_ELEMENTS(nesting_kinds));
	suite_add_tcase(s, big);
	return test_run_suite(s);
}
