/*
 * check_parser.c: parser/ on the hard messages and on decoding tables.
 *
 * The shared messages in t/messages/ are checked field by field against
 * what the README that came with them expects of a parser; header,
 * base64 and HTML decoding have tables of their own; line-end variants
 * of the same message must give identical results; broken, empty,
 * mutated and deeply nested input must give a usable struct, never a
 * crash. Tests run forked by default; with CK_FORK=no under valgrind
 * they must stay leak-free, which is why main() shuts GMime down.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "common/text.h"
#include "parser/body.h"
#include "parser/header.h"
#include "parser/message.h"
#include "t/testutil.h"

#define MSG_01 "t/messages/01-gmime-adjacent-b-words.eml"
#define MSG_03 "t/messages/03-gateway-tag-glued-to-encoded-word.eml"
#define MSG_04 "t/messages/04-localized-reply-prefixes.eml"
#define MSG_06 "t/messages/06-outlook-forward-html-tnef.eml"
#define MSG_07 "t/messages/07-out-of-office-with-ticket-and-keyword.eml"
#define MSG_08 "t/messages/08-helpdesk-autoack-loop.eml"
#define MSG_09 "t/messages/09-dsn-bounce-of-our-ack.eml"
#define MSG_11 "t/messages/11-raw-8bit-subject-cp1252-body.eml"
#define MSG_13 "t/messages/13-bad-boundaries-chunked-base64.eml"
#define MSG_14 "t/messages/14-milter-wire-format.eml"
#define MSG_20 "t/messages/20-encoded-subject-split-over-folds.eml"
#define MSG_21 "t/messages/21-invalid-unpadded-base64.eml"
#define MSG_22 "t/messages/22-mislabelled-charsets.eml"
#define MSG_23 "t/messages/23-raw-8bit-headers.eml"
#define MSG_24 "t/messages/24-nul-bytes.eml"
#define MSG_25 "t/messages/25-dsn-rfc3464-headers-only.eml"
#define MSG_26 "t/messages/26-dsn-nonstandard-qmail.eml"
#define MSG_27 "t/messages/27-tnef-only.eml"
#define MSG_28 "t/messages/28-html-only.eml"
#define MSG_29 "t/messages/29-missing-message-id.eml"
#define MSG_30 "t/messages/30-duplicated-message-ids.eml"

static const char *const all_messages[] = {
	MSG_01, MSG_03, MSG_04, MSG_06, MSG_07, MSG_08, MSG_09, MSG_11,
	MSG_13, MSG_14, MSG_20, MSG_21, MSG_22, MSG_23, MSG_24, MSG_25,
	MSG_26, MSG_27, MSG_28, MSG_29, MSG_30,
};

/* The string fields of struct message, by name. */
static const struct {
	const char *name;
	size_t offset;
} string_fields[] = {
	{ "subject", offsetof(struct message, subject) },
	{ "from", offsetof(struct message, from) },
	{ "from_name", offsetof(struct message, from_name) },
	{ "reply_to", offsetof(struct message, reply_to) },
	{ "message_id", offsetof(struct message, message_id) },
	{ "in_reply_to", offsetof(struct message, in_reply_to) },
	{ "date", offsetof(struct message, date) },
	{ "auto_submitted", offsetof(struct message, auto_submitted) },
	{ "precedence", offsetof(struct message, precedence) },
	{ "list_id", offsetof(struct message, list_id) },
	{ "body", offsetof(struct message, body) },
	{ "report_type", offsetof(struct message, report_type) },
	{ "returned_id", offsetof(struct message, returned_id) },
};

/* FIELD of M as a new string; references joined by spaces. */
static char *
field_get(const struct message *m, const char *field)
{
	if (strcmp(field, "references") == 0)
		return g_strjoinv(" ", m->references);
	if (strcmp(field, "is_report") == 0)
		return g_strdup(m->is_report ? "yes" : "no");
	if (strcmp(field, "digest") == 0)
		return message_digest(m);
	for (size_t i = 0; i < G_N_ELEMENTS(string_fields); i++)
		if (strcmp(field, string_fields[i].name) == 0)
			return g_strdup(*(char *const *)((const char *)m +
			    string_fields[i].offset));
	ck_abort_msg("BUG: no field %s", field);
	return NULL;
}

static struct message *
parse_file(const char *relative)
{
	size_t len;
	char *data = test_read(relative, &len);
	struct message *m = message_parse(data, len);

	g_free(data);
	return m;
}

static struct message *
parse_string(const char *text)
{
	return message_parse(text, strlen(text));
}

enum expect { EQUALS, CONTAINS, LACKS, IS_NULL };

struct field_case {
	const char *input;	/* a file under t/messages or a message */
	const char *field;
	enum expect expect;
	const char *want;
};

static void
field_check(const struct field_case *c, struct message *m)
{
	char *got = field_get(m, c->field);
	const char *label = strncmp(c->input, "t/", 2) == 0 ? c->input :
	    "message";

	switch (c->expect) {
	case EQUALS:
		ck_assert_msg(got != NULL && strcmp(got, c->want) == 0,
		    "%s %s: got \"%s\", want \"%s\"", label, c->field,
		    got != NULL ? got : "(null)", c->want);
		break;
	case CONTAINS:
		ck_assert_msg(got != NULL && strstr(got, c->want) != NULL,
		    "%s %s: got \"%s\", want it to contain \"%s\"", label,
		    c->field, got != NULL ? got : "(null)", c->want);
		break;
	case LACKS:
		ck_assert_msg(got == NULL || strstr(got, c->want) == NULL,
		    "%s %s: got \"%s\", want it without \"%s\"", label,
		    c->field, got, c->want);
		break;
	case IS_NULL:
		ck_assert_msg(got == NULL, "%s %s: got \"%s\", want NULL",
		    label, c->field, got);
		break;
	}
	g_free(got);
}

/* What README.md in the shared messages asks of the parser. */
static const struct field_case file_cases[] = {
	{ MSG_01, "subject", EQUALS, "Re: [ESC-42] ESCALATE" },
	{ MSG_01, "from", EQUALS, "ana.lindqvist@example.org" },
	{ MSG_01, "from_name", EQUALS, "Ana Lindqvist" },
	{ MSG_01, "message_id", EQUALS,
	    "20240514091233.4711@mua.example.org" },
	{ MSG_01, "in_reply_to", EQUALS,
	    "ack-ESC-42-1@escalation.example.org" },
	{ MSG_01, "references", EQUALS,
	    "ack-ESC-42-1@escalation.example.org" },
	{ MSG_01, "date", EQUALS, "Tue, 14 May 2024 09:12:33 +0200" },
	{ MSG_01, "body", EQUALS,
	    "Escalating this one, see the ticket history.\n\nAna\n" },
	{ MSG_01, "auto_submitted", IS_NULL, NULL },
	{ MSG_01, "reply_to", IS_NULL, NULL },
	{ MSG_01, "is_report", EQUALS, "no" },
	{ MSG_01, "returned_id", IS_NULL, NULL },

	{ MSG_03, "subject", CONTAINS, "[IANA #123456]" },
	{ MSG_03, "subject", CONTAINS, "transfer complaint" },
	{ MSG_03, "subject", LACKS, "=?" },
	{ MSG_03, "subject", EQUALS,
	    "[EXT]RE: [IANA #123456] transfer complaint" },
	{ MSG_03, "from", EQUALS, "t.wrona@example.net" },

	{ MSG_04, "subject", EQUALS, "AW: SV: Antw: RE: [EXT] "
	    "\xe5\x9b\x9e\xe5\xa4\x8d: \xe7\xad\x94\xe5\xa4\x8d: "
	    "VS: Re[2]:[ESC-42]RESOLVED" },
	{ MSG_04, "in_reply_to", EQUALS,
	    "ack-ESC-42-1@escalation.example.org" },
	{ MSG_04, "references", EQUALS, "" },

	{ MSG_06, "subject", EQUALS, "WG: Beschwerde" },
	{ MSG_06, "body", CONTAINS, "Ticket 2024-0042" },
	{ MSG_06, "body", CONTAINS, "Bitte \xc3\xbc" "bernehmen" },
	{ MSG_06, "body", CONTAINS, "\xe2\x80\x93 bitte ESCALATE" },
	{ MSG_06, "body", LACKS, "Unauthorised transfer" },
	{ MSG_06, "body", LACKS, "[IANA #123456]" },
	{ MSG_06, "body", LACKS, "Please investigate" },
	{ MSG_06, "body", LACKS, "&nbsp;" },
	{ MSG_06, "body", LACKS, "<" },
	{ MSG_06, "body", LACKS, "\xc2\xa0" },
	{ MSG_06, "body", LACKS, "eJ8+" },
	{ MSG_06, "message_id", EQUALS, "AM0PR01MB0001@mail.example.org" },
	{ MSG_06, "is_report", EQUALS, "no" },

	{ MSG_07, "auto_submitted", EQUALS, "auto-replied" },
	{ MSG_07, "in_reply_to", EQUALS,
	    "ack-123456-1@escalation.example.org" },
	{ MSG_07, "body", CONTAINS, "please ESCALATE to\nmy colleague" },

	{ MSG_08, "subject", EQUALS, "[HD-55501] Re: [IANA #123456] "
	    "Acknowledgement of your complaint" },
	{ MSG_08, "from", EQUALS, "support@helpdesk.example.net" },
	{ MSG_08, "from_name", EQUALS, "Example Net Support" },
	{ MSG_08, "references", EQUALS,
	    "ack-123456-1@escalation.example.org" },
	{ MSG_08, "auto_submitted", IS_NULL, NULL },
	{ MSG_08, "precedence", IS_NULL, NULL },

	{ MSG_09, "is_report", EQUALS, "yes" },
	{ MSG_09, "returned_id", EQUALS,
	    "ack-123456-1@escalation.example.org" },
	{ MSG_09, "from", EQUALS, "mailer-daemon@mx1.example.org" },
	{ MSG_09, "body", CONTAINS, "could not deliver your message" },
	{ MSG_09, "body", LACKS, "We received your complaint" },
	{ MSG_09, "body", LACKS, "Final-Recipient" },
	{ MSG_09, "subject", EQUALS, "Undelivered Mail Returned to Sender" },

	{ MSG_11, "subject", EQUALS, "Beschwerde \xc3\xbc" "ber "
	    "caf\xc3\xa9.example \xe2\x80\x93 Ticket 2024-0042" },
	{ MSG_11, "from_name", EQUALS, "Ren\xc3\xa9 Fabre" },
	{ MSG_11, "from", EQUALS, "rene.fabre@example.net" },
	{ MSG_11, "body", CONTAINS, "\xe2\x82\xac" },
	{ MSG_11, "body", CONTAINS,
	    "\xe2\x80\x9cverkauft\xe2\x80\x9d" },
	{ MSG_11, "body", CONTAINS, "Guten Tag\xe2\x80\xa6 die Domain" },
	{ MSG_11, "body", CONTAINS, "f\xc3\xbcr 50 \xe2\x82\xac" },
	{ MSG_11, "body", CONTAINS, "R\xc3\xbc" "ckmeldung" },

	{ MSG_13, "body", CONTAINS, "\nTicket 2024-0042 ESCALATE" },
	{ MSG_13, "body", CONTAINS, "> Ticket 2024-0042 ESCALATE" },
	{ MSG_13, "body", CONTAINS, "the separator looked like --=_b1" },
	{ MSG_13, "body", LACKS, "VGlja2V0" },
	{ MSG_13, "body", LACKS, "<p>" },
	{ MSG_13, "body", LACKS, "multi-part message in MIME format" },

	{ MSG_14, "subject", EQUALS, "Re: [ESC-42] ESCALATE" },
	{ MSG_14, "message_id", EQUALS, "wire-test-1@mua.example.org" },
	{ MSG_14, "from", EQUALS, "ana.lindqvist@example.org" },
	{ MSG_14, "date", EQUALS, "Mon, 27 May 2024 13:59:59 +0200" },
	{ MSG_14, "body", CONTAINS, "Ticket 2024-0042 ESCALATE" },
	{ MSG_14, "body", LACKS, "\r" },

	/* Folds between encoded-words, and inside one. */
	{ MSG_20, "subject", EQUALS,
	    "Re: [ESC-42] ESCALATE: J\xc3\xb6rg is away" },
	{ MSG_20, "from_name", EQUALS, "J\xc3\xb6rg M\xc3\xbcller" },

	{ MSG_21, "subject", EQUALS, "[IANA #123456] transfer" },
	{ MSG_21, "body", CONTAINS,
	    "Bezug: Ticket 2024-0042, bitte pr\xc3\xbc" "fen.\n" },

	{ MSG_22, "subject", EQUALS,
	    "Beschwerde \xe2\x80\x93 Ticket 2024-0042" },
	{ MSG_22, "from_name", EQUALS, "Zo\xc3\xab Adams" },
	{ MSG_22, "body", CONTAINS, "\xe2\x80\x9cverkauft\xe2\x80\x9d "
	    "f\xc3\xbcr 50 \xe2\x82\xac." },
	{ MSG_22, "body", CONTAINS, "\xe2\x80\x9czur\xc3\xbc" "ck"
	    "\xe2\x80\x9d \xe2\x80\x93 sofort." },
	{ MSG_22, "body", CONTAINS, "Gr\xc3\xbc\xc3\x9f" "e." },
	{ MSG_22, "body", CONTAINS, "Ticket 2024-0043 \xc2\xa3" "5." },

	{ MSG_23, "subject", EQUALS,
	    "Re: [ESC-42] ESCALATE \xe2\x80\x93 D\xc3\xa9j\xc3\xa0 vu" },
	{ MSG_23, "from_name", EQUALS, "J\xc3\xb6rg M\xc3\xbcller" },
	{ MSG_23, "message_id", EQUALS,
	    "raw-8bit-\xc3\xa9@mail.example.net" },
	{ MSG_23, "body", CONTAINS,
	    "r\xc3\xa9sum\xc3\xa9, \xe2\x82\xac 5." },

	/* A NUL does not end a header: what follows is still read. */
	{ MSG_24, "subject", EQUALS, "[IANA #123456] transfer  complaint" },
	{ MSG_24, "body", CONTAINS, "NUL. Ticket 2024-0042 after it." },
	{ MSG_24, "body", CONTAINS, "NUL RZM ticket 777" },

	{ MSG_25, "is_report", EQUALS, "yes" },
	{ MSG_25, "returned_id", EQUALS,
	    "ack-123456-1@escalation.example.org" },

	/* A bounce that is no report still names what came back. */
	{ MSG_26, "is_report", EQUALS, "no" },
	{ MSG_26, "from", EQUALS, "mailer-daemon@mail.example.com" },
	{ MSG_26, "returned_id", EQUALS,
	    "ack-123456-1@escalation.example.org" },

	{ MSG_27, "subject", EQUALS, "[IANA #123456] Beschwerde" },
	{ MSG_27, "body", EQUALS, "" },

	{ MSG_28, "body", EQUALS, "Our request Ticket 2024-0042 was moved "
	    "\xe2\x80\x9cwithout\xe2\x80\x9d consent \xe2\x80\x93 "
	    "50\xe2\x82\xac.\nSee also RZM ticket 4321" },

	{ MSG_29, "message_id", IS_NULL, NULL },
	{ MSG_29, "digest", CONTAINS, "" },

	/* Duplicated headers: the first counts, as for Subject. */
	{ MSG_30, "message_id", EQUALS, "first-id@mail.example.com" },
	{ MSG_30, "in_reply_to", EQUALS, "other@mail.example.com" },
	{ MSG_30, "subject", EQUALS, "Transfer of example.com" },
};

START_TEST(message_file_gives_expected_field)
{
	const struct field_case *c = &file_cases[_i];
	struct message *m = parse_file(c->input);

	field_check(c, m);
	message_free(&m);
	ck_assert_ptr_null(m);
}
END_TEST

/*
 * Valid UTF-8 with no control but LF and TAB, C1 included. Check marks
 * every assertion that passes, so only a failure is asserted.
 */
static void
assert_clean_text(const char *name, const char *text, gboolean multiline)
{
	const char *p;

	if (!g_utf8_validate(text, -1, NULL))
		ck_abort_msg("%s: got invalid UTF-8, want valid", name);
	for (p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		gboolean allowed = multiline && (c == '\n' || c == '\t');
		gboolean control = c < 0x20 || (c >= 0x7F && c <= 0x9F);

		if (control && !allowed)
			ck_abort_msg("%s: got control U+%04X in \"%s\", "
			    "want none", name, (unsigned int)c, text);
	}
}

static void
assert_clean_message(const struct message *m)
{
	char *digest;

	ck_assert_ptr_nonnull(m->subject);
	ck_assert_ptr_nonnull(m->body);
	ck_assert_ptr_nonnull(m->references);
	digest = message_digest(m);
	ck_assert_msg(strlen(digest) == 64, "digest: got \"%s\", want 64 "
	    "hex digits", digest);
	g_free(digest);
	for (size_t i = 0; i < G_N_ELEMENTS(string_fields); i++) {
		const char *name = string_fields[i].name;
		char *value = field_get(m, name);

		if (value != NULL)
			assert_clean_text(name, value,
			    strcmp(name, "body") == 0);
		g_free(value);
	}
	for (char **id = m->references; *id != NULL; id++)
		assert_clean_text("references", *id, FALSE);
	ck_assert_uint_le(strlen(m->body), MESSAGE_MAX_BODY);
}

START_TEST(message_file_gives_clean_utf8)
{
	struct message *m = parse_file(all_messages[_i]);

	assert_clean_message(m);
	message_free(&m);
}
END_TEST

/* RFC 2047 the way mail really writes it. */
static const struct {
	const char *raw;
	const char *want;
} decode_cases[] = {
	{ NULL, "" },
	{ "", "" },
	{ " plain text\n", "plain text" },
	{ " Re:\r\n [ESC-42]\r\n", "Re: [ESC-42]" },
	{ "\tRe:\n\t[ESC-42]\n", "Re: [ESC-42]" },
	/* adjacent words: GMime 3.2.13 drops the second */
	{ " =?UTF-8?B?UmU6IFtFU0MtNDJdIA==?=\n =?UTF-8?B?RVNDQUxBVEU=?=",
	    "Re: [ESC-42] ESCALATE" },
	{ "=?UTF-8?Q?Re:?= =?UTF-8?Q?_x?=\t=?UTF-8?Q?_y?=", "Re: x y" },
	/* glued to text and to each other */
	{ "[EXT]=?UTF-8?B?UkU6?=", "[EXT]RE:" },
	{ "=?UTF-8?Q?a?==?UTF-8?Q?b?==?UTF-8?B?Yw==?=", "abc" },
	{ "=?UTF-8?Q?a?=tail", "atail" },
	/* empty words */
	{ "=?UTF-8?Q?a?= =?UTF-8?Q?" "?= =?UTF-8?B?" "?= =?UTF-8?Q?b?=",
	    "ab" },
	{ "Re: x =?UTF-8?Q?" "?=", "Re: x" },
	/* base64 in padded chunks, and a character split between words */
	{ "=?UTF-8?B?UmU6IA==W0VTQy00Ml0=?=", "Re: [ESC-42]" },
	{ "=?UTF-8?B?ww==?= =?UTF-8?B?qQ==?=", "\xc3\xa9" },
	{ "=?UTF-8?Q?=C3?= =?utf8?Q?=A9?=", "\xc3\xa9" },
	{ "=?UTF-8?B?VGlj?= =?UTF-8?B?a2V0?=", "Ticket" },
	/* Q: underscores are spaces, "=5F" is an underscore */
	{ "=?ISO-8859-1?Q?Ren=E9_Fabre?=", "Ren\xc3\xa9 Fabre" },
	{ "=?utf-8?q?a_b=5Fc?=", "a b_c" },
	{ "=?utf-8?Q?bad=ZZescape=?=", "bad=ZZescape=" },
	/* Latin-1 and ASCII labels are Windows-1252 */
	{ "=?iso-8859-1?Q?=93x=94?=", "\xe2\x80\x9cx\xe2\x80\x9d" },
	{ "=?us-ascii?Q?=80_5?=", "\xe2\x82\xac 5" },
	{ "=?latin1?B?lg==?=", "\xe2\x80\x93" },
	{ "=?\"ISO-8859-1\"?Q?=E9?=", "\xc3\xa9" },
	/* other charsets, RFC 2231 languages, unknown labels */
	{ "=?koi8-r?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2"
	    "\xd0\xb5\xd1\x82" },
	{ "=?utf-8*en?Q?ok?=", "ok" },
	{ "=?x-unknown?Q?caf=C3=A9?=", "caf\xc3\xa9" },
	{ "=?x-unknown?Q?caf=E9?=", "caf\xc3\xa9" },
	{ "=?utf-8?Q?caf=E9_=E2=82=AC?=", "caf\xc3\xa9 \xe2\x82\xac" },
	{ "=?iso-8859-2?Q?=A3=F3d=BC?=", "\xc5\x81\xc3\xb3" "d\xc5\xba" },
	/* raw 8-bit: UTF-8 where valid, Windows-1252 elsewhere */
	{ "caf\xe9 \x96 x", "caf\xc3\xa9 \xe2\x80\x93 x" },
	{ "caf\xc3\xa9", "caf\xc3\xa9" },
	{ "\xe5\x9b\x9e\xe5\xa4\x8d: \x93x\x94",
	    "\xe5\x9b\x9e\xe5\xa4\x8d: \xe2\x80\x9cx\xe2\x80\x9d" },
	/* not encoded-words */
	{ "a =? b", "a =? b" },
	{ "=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=" },
	{ "=?UTF-8?Q?has space?=", "=?UTF-8?Q?has space?=" },
	{ "=??Q?x?=", "=??Q?x?=" },
	{ "=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated" },
	/* white space between text and a word stays */
	{ "Re: =?UTF-8?Q?x?= y", "Re: x y" },
	/* controls and no-break spaces become spaces */
	{ "=?UTF-8?Q?a=0D=0Ab=09c=C2=A0d=C2=85e?=", "a  b c d e" },
	{ "=?UTF-16LE?B?YQBiAA==?=", "ab" },
	/* folded inside an encoded-word: joined when it then closes */
	{ " =?UTF-8?B?UmU6IFtF\r\n U0MtNDJd?=", "Re: [ESC-42]" },
	{ " =?UTF-8?Q?ESCAL\n\tATE?= x", "ESCALATE x" },
	{ "=?UTF-8?Q?a\r\n b\r\n c?=", "abc" },
	{ "=?UTF-8?Q?a\r\n b c?=", "=?UTF-8?Q?a b c?=" },
	{ "=?UTF-8?Q?a\r\n b", "=?UTF-8?Q?a b" },
	{ "x\r\n y=?UTF-8?Q?z?=", "x yz" },
};

START_TEST(header_decode_reads_what_clients_write)
{
	char *got = header_decode(decode_cases[_i].raw);

	ck_assert_msg(strcmp(got, decode_cases[_i].want) == 0,
	    "header_decode(\"%s\"): got \"%s\", want \"%s\"",
	    decode_cases[_i].raw != NULL ? decode_cases[_i].raw : "(null)",
	    got, decode_cases[_i].want);
	g_free(got);
}
END_TEST

static const struct {
	const char *text;
	const char *want;
} base64_cases[] = {
	{ "", "" },
	{ "VGlja2V0IA==MjAyNC0wMDQyIEVTQ0FMQVRF",
	    "Ticket 2024-0042 ESCALATE" },
	{ "VGlj\r\n a2V0!", "Ticket" },
	{ "QQ", "A" },
	{ "QUI", "AB" },
	{ "Q", "" },
	{ "QQ==QUI=QUJD", "AABABC" },
	{ "====", "" },
};

START_TEST(base64_decode_skips_padding_and_junk)
{
	const char *text = base64_cases[_i].text;
	GBytes *bytes = header_base64_decode(text, strlen(text));
	gsize len;
	const char *data = g_bytes_get_data(bytes, &len);
	char *got = g_strndup(data, len);

	ck_assert_msg(strcmp(got, base64_cases[_i].want) == 0,
	    "base64 \"%s\": got \"%s\", want \"%s\"", text, got,
	    base64_cases[_i].want);
	g_free(got);
	g_bytes_unref(bytes);
}
END_TEST

static const struct {
	const char *html;
	const char *want;
} html_cases[] = {
	{ "", "" },
	{ "Ticket&nbsp;2024-0042", "Ticket 2024-0042" },
	{ "a &ndash; b &mdash; c&hellip;", "a \xe2\x80\x93 b \xe2\x80\x94 c"
	    "\xe2\x80\xa6" },
	{ "&#8364; &#x20ac; &#X20AC; &euro;", "\xe2\x82\xac \xe2\x82\xac "
	    "\xe2\x82\xac \xe2\x82\xac" },
	{ "&#150; &#147;q&#148;", "\xe2\x80\x93 \xe2\x80\x9cq\xe2\x80\x9d" },
	{ "caf&eacute; &AElig; &uuml;", "caf\xc3\xa9 \xc3\x86 \xc3\xbc" },
	{ "a &amp;lt; b &lt;tag&gt;", "a &lt; b <tag>" },
	{ "a &amp b &nbspc &ampx", "a & b  c &x" },
	{ "&bogus; &; &#; &#xZ;", "&bogus; &; &#; &#xZ;" },
	{ "&#0; &#xD800; &#99999999999;", "\xef\xbf\xbd \xef\xbf\xbd "
	    "\xef\xbf\xbd" },
	{ "<html><head><title>T</title><style>p { x }</style></head>"
	    "<body><p>One</p><p>Two</p></body></html>", "One\nTwo" },
	{ "<script type=\"a>b\">alert(1)</script>Text", "Text" },
	{ "a<br>b<br/><br />c", "a\nb\n\nc" },
	{ "<div>x</div>\n\n\n<div>y</div>", "x\ny" },
	{ "x  \t\n  y", "x y" },
	{ "<pre>a  b\n c</pre>", "a  b\n c" },
	{ "<!-- hidden <p>x</p> -->shown", "shown" },
	{ "<!--[if mso]>no<![endif]-->yes", "yes" },
	{ "<!DOCTYPE html>doc", "doc" },
	{ "1 < 2 > 0", "1 < 2 > 0" },
	{ "<a href='x>y' title=\"t\">link</a>", "link" },
	{ "<table><tr><td>a</td><td>b</td></tr></table>", "a b" },
	{ "<p>unclosed <b", "unclosed" },
	{ "<style>never closed", "never closed" },
	{ "<P CLASS=x>Upper</P>", "Upper" },
};

START_TEST(html_to_text_drops_markup_and_decodes_entities)
{
	char *got = body_html_to_text(html_cases[_i].html);

	ck_assert_msg(strcmp(got, html_cases[_i].want) == 0,
	    "html \"%s\": got \"%s\", want \"%s\"", html_cases[_i].html,
	    got, html_cases[_i].want);
	g_free(got);
}
END_TEST

/* Addresses and message ids, each in a message of its own. */
static const struct field_case header_cases[] = {
	{ "From: Ana Lindqvist <Ana.Lindqvist@Example.ORG>\n\n", "from",
	    EQUALS, "ana.lindqvist@example.org" },
	{ "From: \"Doe, John\" <j@x.org>\n\n", "from_name", EQUALS,
	    "Doe, John" },
	{ "From: \"Doe, John\" <j@x.org>\n\n", "from", EQUALS, "j@x.org" },
	{ "From: Doe, John <j@x.org>\n\n", "from", EQUALS, "j@x.org" },
	{ "From: Doe, John <j@x.org>\n\n", "from_name", EQUALS,
	    "Doe, John" },
	{ "From: j@x.org (John Doe)\n\n", "from", EQUALS, "j@x.org" },
	{ "From: j@x.org (John Doe)\n\n", "from_name", EQUALS, "John Doe" },
	{ "From: bare@x.org\n\n", "from_name", IS_NULL, NULL },
	{ "From: <only@x.org>\n\n", "from", EQUALS, "only@x.org" },
	{ "From: <only@x.org>\n\n", "from_name", IS_NULL, NULL },
	{ "From: a@x.org, B <b@y.org>\n\n", "from", EQUALS, "a@x.org" },
	{ "From: B <b@y.org>, C <c@z.org>\n\n", "from", EQUALS, "b@y.org" },
	{ "From: \"a <x@evil>\" <real@x.org>\n\n", "from", EQUALS,
	    "real@x.org" },
	{ "From: =?UTF-8?B?5Zue5aSN?= <a@b.c>\n\n", "from_name", EQUALS,
	    "\xe5\x9b\x9e\xe5\xa4\x8d" },
	{ "From: \"=?utf-8?Q?Ren=C3=A9?=\" <r@x>\n\n", "from_name",
	    EQUALS, "Ren\xc3\xa9" },
	{ "From: \"Esc \\\"Q\\\"\" <q@x>\n\n", "from_name", EQUALS,
	    "Esc \"Q\"" },
	{ "From: Ren\xe9 <r@x>\n\n", "from_name", EQUALS, "Ren\xc3\xa9" },
	{ "From:\n\n", "from", IS_NULL, NULL },
	{ "From: <@relay.x:user@host.x>\n\n", "from", EQUALS,
	    "user@host.x" },
	{ "Reply-To: Desk <Desk@X.org>\n\n", "reply_to", EQUALS,
	    "desk@x.org" },
	{ "Message-ID: <a@b>\n\n", "message_id", EQUALS, "a@b" },
	{ "message-id: bare@b\n\n", "message_id", EQUALS, "bare@b" },
	{ "Message-ID: <a\n b@c>\n\n", "message_id", EQUALS, "ab@c" },
	{ "Message-ID: <>\n\n", "message_id", IS_NULL, NULL },
	{ "In-Reply-To: <x@y> (comment)\n\n", "in_reply_to", EQUALS,
	    "x@y" },
	{ "In-Reply-To: Your message of Monday <x@y>\n\n", "in_reply_to",
	    EQUALS, "x@y" },
	{ "References: <a@b> <c@d>\n\t<e@f>\n\n", "references", EQUALS,
	    "a@b c@d e@f" },
	{ "References: a@b, c@d\n\n", "references", EQUALS, "a@b c@d" },
	{ "References: <a@b\n\n", "references", EQUALS, "a@b" },
	{ "Auto-Submitted:  auto-generated\n\n", "auto_submitted", EQUALS,
	    "auto-generated" },
	{ "Precedence: bulk\n\n", "precedence", EQUALS, "bulk" },
	{ "Precedence: (list robot) BULK\n\n", "precedence", EQUALS,
	    "bulk" },
	{ "Auto-Submitted: Auto-Replied; owner-email=\"a@b\"\n\n",
	    "auto_submitted", EQUALS, "auto-replied" },
	{ "Auto-Submitted: (set by robot) auto-generated\n\n",
	    "auto_submitted", EQUALS, "auto-generated" },
	{ "Auto-Submitted: no\nAuto-Submitted: auto-replied\n\n",
	    "auto_submitted", EQUALS, "auto-replied" },
	{ "Auto-Submitted: No (a person wrote this)\n\n",
	    "auto_submitted", EQUALS, "no" },
	{ "Auto-Submitted: (only a comment)\n\n", "auto_submitted",
	    IS_NULL, NULL },
	{ "Content-Type: multipart/report; report-type=disposition-"
	    "notification; boundary=r\n\n--r\n\nread\n--r--\n",
	    "report_type", EQUALS, "disposition-notification" },
	{ "Content-Type: multipart/report; boundary=r\n\n--r\n\nx\n"
	    "--r--\n", "report_type", EQUALS, "unknown" },
	/* No word in it: once a NULL dereference (found by fuzz_message). */
	{ "Content-Type: multipart/report; report-type=\";x\"; "
	    "boundary=r\n\n--r\n\nx\n--r--\n", "report_type", EQUALS,
	    "unknown" },
	{ "Content-Type: multipart/report; report-type=\"(c)\"; "
	    "boundary=r\n\n--r\n\nx\n--r--\n", "report_type", EQUALS,
	    "unknown" },
	{ "List-Id: =?utf-8?q?Caf=C3=A9?= <cafe.example.org>\n\n",
	    "list_id", EQUALS, "Caf\xc3\xa9 <cafe.example.org>" },
	{ "Date: Tue, 14 May\n 2024 09:12:33 +0200\n\n", "date", EQUALS,
	    "Tue, 14 May 2024 09:12:33 +0200" },
	{ "Subject: one\nSubject: two\n\n", "subject", EQUALS, "one" },
	{ "From mbox@x Tue May 14 09:12:33 2024\nSubject: mbox\n\n",
	    "subject", EQUALS, "mbox" },
};

START_TEST(header_field_is_read_as_written)
{
	const struct field_case *c = &header_cases[_i];
	struct message *m = parse_string(c->input);

	field_check(c, m);
	assert_clean_message(m);
	message_free(&m);
}
END_TEST

#define MIME "MIME-Version: 1.0\n"
#define MIXED(b) "Content-Type: multipart/mixed; boundary=\"" b "\"\n\n"
#define ALT(b) "Content-Type: multipart/alternative; boundary=\"" b "\"\n\n"
#define PLAIN "Content-Type: text/plain; charset=utf-8\n"
#define HTML "Content-Type: text/html; charset=utf-8\n"

/* Which parts make the body. */
static const struct field_case body_cases[] = {
	{ MIME ALT("a") "--a\n" PLAIN "\nplain words\n--a\n" HTML
	    "\n<p>html words</p>\n--a--\n", "body", EQUALS, "plain words" },
	{ MIME ALT("a") "--a\n" HTML "\n<p>html words</p>\n--a\n" PLAIN
	    "\nplain words\n--a--\n", "body", EQUALS, "plain words" },
	{ MIME ALT("a") "--a\n" PLAIN "\n \n--a\n" HTML
	    "\n<p>html words</p>\n--a--\n", "body", EQUALS, "html words" },
	{ MIME ALT("a") "--a\n"
	    "Content-Type: multipart/related; boundary=\"r\"\n\n--r\n" HTML
	    "\n<p>related html</p>\n--r\n"
	    "Content-Type: image/png\n\nPNG\n--r--\n--a--\n", "body",
	    EQUALS, "related html" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nfirst\n--m\n" PLAIN
	    "Content-Disposition: inline\n\nsecond\n--m--\n", "body",
	    EQUALS, "first\nsecond" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nshown\n--m\n" PLAIN
	    "Content-Disposition: attachment; filename=x.txt\n\nsecret\n"
	    "--m--\n", "body", LACKS, "secret" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nshown\n--m\n"
	    "Content-Type: application/octet-stream\n\nbinary\n--m--\n",
	    "body", LACKS, "binary" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nshown\n--m\n"
	    "Content-Type: text/calendar\n\nBEGIN:VCALENDAR\n--m--\n",
	    "body", LACKS, "VCALENDAR" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nours\n--m\n"
	    "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n"
	    "--m--\n", "body", EQUALS, "ours" },
	{ MIME MIXED("m") "--m\n" PLAIN "\nours\n--m\n"
	    "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n"
	    "--m--\n", "subject", EQUALS, "" },
	{ MIME "Content-Type: multipart/signed; boundary=\"s\"; "
	    "protocol=\"application/pgp-signature\"\n\n--s\n" PLAIN
	    "\nsigned text\n--s\nContent-Type: text/plain\n\nnot text\n"
	    "--s--\n", "body", EQUALS, "signed text" },
	{ MIME PLAIN "Content-Transfer-Encoding: quoted-printable\n\n"
	    "Tick=\net 2024-=3D0042 =\n  \nend=  \nx=zz y=\n", "body", EQUALS,
	    "Ticket 2024-=0042 \nendx=zz y" },
	{ MIME PLAIN "Content-Transfer-Encoding: BASE64\n\n"
	    "VGlja2V0\n IDIwMjQtMDA0Mg==\n", "body", EQUALS,
	    "Ticket 2024-0042" },
	{ MIME "Content-Type: text/plain; format=flowed\n\n"
	    "Ticket \n2024-0042 is \n open\n> quoted \n> line\n-- \nsig\n",
	    "body", EQUALS, "Ticket 2024-0042 is open\n> quoted \n> line\n"
	    "-- \nsig\n" },
	{ MIME "Content-Type: text/plain; format=flowed; delsp=yes\n\n"
	    "Tick \net\n", "body", EQUALS, "Ticket\n" },
	{ MIME "Content-Type: text/plain; charset=utf-8\n\n"
	    "caf\xe9 \xe2\x82\xac\r\nx\ry\x01z\xc2\xa0w\n", "body", EQUALS,
	    "caf\xc3\xa9 \xe2\x82\xac\nx\nyz w\n" },
	{ MIME "Content-Type: text/plain; charset=koi8-r\n\n\xf0\xd2\xc9\n",
	    "body", EQUALS, "\xd0\x9f\xd1\x80\xd0\xb8\n" },
	{ MIME "Content-Type: text/plain; charset=x-nonsense\n\nok\n",
	    "body", EQUALS, "ok\n" },
	{ MIME "Content-Type: text/html\n\n<p>only&nbsp;html</p>\n",
	    "body", EQUALS, "only html" },
	{ MIME "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"d\"\n\n--d\n" PLAIN "\nbounced\n--d\n"
	    "Content-Type: message/delivery-status\n\nAction: failed\n--d\n"
	    "Content-Type: text/rfc822-headers\n\nSubject: x\nMessage-Id:\n"
	    " <ack-7@escalation.example.org>\n--d--\n", "returned_id",
	    EQUALS, "ack-7@escalation.example.org" },
	{ MIME "Content-Type: multipart/report; report-type=delivery-status;"
	    " boundary=\"d\"\n\n--d\n" PLAIN "\nbounced\n--d\n"
	    "Content-Type: text/rfc822-headers\n\nSubject: x\n--d--\n",
	    "returned_id", IS_NULL, NULL },
	{ MIME "Content-Type: multipart/report; "
	    "report-type=disposition-notification; boundary=\"d\"\n\n--d\n"
	    PLAIN "\nread\n--d--\n", "is_report", EQUALS, "no" },
	{ MIME "Content-Type: multipart/report; "
	    "report-type=Delivery-Status; boundary=\"d\"\n\n--d\n" PLAIN
	    "\nbounced\n--d--\n", "is_report", EQUALS, "yes" },
};

START_TEST(body_is_read_from_the_right_parts)
{
	const struct field_case *c = &body_cases[_i];
	struct message *m = parse_string(c->input);

	field_check(c, m);
	assert_clean_message(m);
	message_free(&m);
}
END_TEST

/* DATA with every line ending in LF. */
static char *
lines_lf(const char *data, size_t len)
{
	GString *out = g_string_sized_new(len);

	for (size_t i = 0; i < len; i++)
		if (!(data[i] == '\r' && i + 1 < len && data[i + 1] == '\n'))
			g_string_append_c(out, data[i]);
	return g_string_free(out, FALSE);
}

/* LF lines ending in CRLF, every one or (MIXED) every other one. */
static char *
lines_crlf(const char *lf, gboolean mixed)
{
	GString *out = g_string_sized_new(strlen(lf) * 2);
	unsigned int line = 0;

	for (const char *p = lf; *p != '\0'; p++) {
		if (*p == '\n' && (!mixed || line++ % 2 == 0))
			g_string_append_c(out, '\r');
		g_string_append_c(out, *p);
	}
	return g_string_free(out, FALSE);
}

/*
 * The message as the milter rebuilds it from what the MTA sends:
 * "Name: value" lines, folds as LF + TAB, then the body as sent (CRLF).
 */
static char *
lines_milter(const char *lf)
{
	const char *body = strstr(lf, "\n\n");
	char *head = g_strndup(lf, body != NULL ? (size_t)(body - lf) :
	    strlen(lf));
	char **lines = g_strsplit(head, "\n", -1);
	GString *out = g_string_new(NULL);
	char *crlf;
	const char *colon;

	for (size_t i = 0; lines[i] != NULL; i++) {
		if (lines[i][0] == ' ' || lines[i][0] == '\t') {
			g_string_append_printf(out, "\n\t%s",
			    g_strchug(lines[i]));
			continue;
		}
		if (i > 0)
			g_string_append_c(out, '\n');
		colon = strchr(lines[i], ':');
		ck_assert_ptr_nonnull(colon);
		g_string_append_len(out, lines[i], colon - lines[i]);
		g_string_append_printf(out, ": %s", g_strchug(
		    (char *)colon + 1));
	}
	g_string_append(out, "\n\n");
	crlf = lines_crlf(body != NULL ? body + 2 : "", FALSE);
	g_string_append(out, crlf);
	g_free(crlf);
	g_strfreev(lines);
	g_free(head);
	return g_string_free(out, FALSE);
}

static const char *const line_end_files[] = { MSG_14, MSG_01, MSG_09 };
static const char *const line_end_names[] = {
	"LF", "CRLF", "mixed", "milter",
};

/* Same fields, digest included, whatever the line ends. */
START_TEST(line_ends_do_not_change_the_result)
{
	const char *file = line_end_files[_i / 4];
	int variant = _i % 4;
	size_t len;
	char *data = test_read(file, &len);
	char *lf = lines_lf(data, len);
	char *text;
	struct message *want = message_parse(data, len);
	struct message *got;

	text = variant == 0 ? g_strdup(lf) : variant == 1 ?
	    lines_crlf(lf, FALSE) : variant == 2 ? lines_crlf(lf, TRUE) :
	    lines_milter(lf);
	got = message_parse(text, strlen(text));

	for (size_t i = 0; i < G_N_ELEMENTS(string_fields); i++) {
		const char *name = string_fields[i].name;
		char *g = field_get(got, name);
		char *w = field_get(want, name);

		ck_assert_msg(g_strcmp0(g, w) == 0,
		    "%s as %s, %s: got \"%s\", want \"%s\"", file,
		    line_end_names[variant], name, g, w);
		g_free(g);
		g_free(w);
	}
	message_free(&got);
	message_free(&want);
	g_free(text);
	g_free(lf);
	g_free(data);
}
END_TEST

START_TEST(long_header_line_does_not_end_the_headers)
{
	GString *text = g_string_new("From: a@example.org\nX-Long: ");
	struct message *m;

	for (int i = 0; i < 300; i++)
		g_string_append(text, "word ");
	g_string_append(text, "\nSubject: after the long line\n\nbody\n");
	m = message_parse(text->str, text->len);
	ck_assert_str_eq(m->subject, "after the long line");
	ck_assert_str_eq(m->body, "body\n");
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

/* Inputs that are hardly mail at all. */
static const struct {
	const char *data;
	size_t len;
	const char *subject;
	const char *body;
} broken_cases[] = {
	{ NULL, 0, "", "" },
	{ "", 0, "", "" },
	{ "\n", 1, "", "" },
	{ "\r\n\r\n", 4, "", "\n" },
	{ "Subject: a\0b\n\nbo\0dy\n", 20, NULL, NULL },
	{ "\0\0\0\0", 4, "", NULL },
	{ "no colon here\nat all\n", 21, "", NULL },
	{ "Subject:\n", 9, "", "" },
	{ "Subject: =?\n\n", 13, "=?", "" },
	{ MIME "Content-Type: multipart/mixed\n\n--x\n--x--\n", 0, "", "" },
	{ MIME "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n--\n",
	    0, "", NULL },
	{ MIME "Content-Type: multipart/alternative; boundary=a\n\n", 0,
	    "", "" },
	{ MIME "Content-Transfer-Encoding: base64\n\n====\n", 0, "", "" },
	{ MIME "Content-Type: text/plain; charset=\"\n\nx\n", 0, "", NULL },
	{ MIME "Content-Type: message/rfc822\n\n", 0, "", "" },
	{ MIME "Content-Type: multipart/report; boundary=r\n\n--r\n"
	    "Content-Type: message/rfc822\n\n--r--\n", 0, "", "" },
	{ "\r\r\r\n\n", 5, "", NULL },
	{ "Subject: \xff\xfe\xfd\n\n\xff\xfe", 0, "\xc3\xbf\xc3\xbe\xc3\xbd",
	    "\xc3\xbf\xc3\xbe" },
};

START_TEST(broken_input_gives_an_empty_message)
{
	const char *data = broken_cases[_i].data;
	size_t len = broken_cases[_i].len;
	struct message *m;

	if (data != NULL && len == 0)
		len = strlen(data);
	m = message_parse(data, len);
	assert_clean_message(m);
	if (broken_cases[_i].subject != NULL)
		ck_assert_msg(strcmp(m->subject, broken_cases[_i].subject) == 0,
		    "case %d subject: got \"%s\", want \"%s\"", _i,
		    m->subject, broken_cases[_i].subject);
	if (broken_cases[_i].body != NULL)
		ck_assert_msg(strcmp(m->body, broken_cases[_i].body) == 0,
		    "case %d body: got \"%s\", want \"%s\"", _i, m->body,
		    broken_cases[_i].body);
	message_free(&m);
}
END_TEST

/* Every prefix and many random mutations of each message are safe. */
START_TEST(mutated_messages_do_not_crash)
{
	size_t len;
	char *data = test_read(all_messages[_i], &len);
	char *copy = g_malloc(len + 1);
	GRand *rand = g_rand_new_with_seed(4242 + (guint32)_i);
	static const char noise[] = "\n\r\t :;=?-<>\"'\\()&#BQ\x80\xff";
	struct message *m;

	for (size_t cut = 0; cut <= len; cut += len / 40 + 1) {
		m = message_parse(data, cut);
		assert_clean_message(m);
		message_free(&m);
	}
	for (int round = 0; round < 40; round++) {
		memcpy(copy, data, len);
		for (int n = 0; n < 1 + round; n++)
			copy[g_rand_int_range(rand, 0, (gint32)len)] =
			    noise[g_rand_int_range(rand, 0, sizeof(noise) - 1)];
		m = message_parse(copy, len);
		assert_clean_message(m);
		message_free(&m);
	}
	g_rand_free(rand);
	g_free(copy);
	g_free(data);
}
END_TEST

START_TEST(random_bytes_do_not_crash)
{
	GRand *rand = g_rand_new_with_seed(777);
	char buf[2048];
	struct message *m;

	for (int round = 0; round < 100; round++) {
		size_t len = (size_t)g_rand_int_range(rand, 0, sizeof(buf));

		for (size_t i = 0; i < len; i++)
			buf[i] = (char)g_rand_int_range(rand, 0, 256);
		m = message_parse(buf, len);
		assert_clean_message(m);
		message_free(&m);
	}
	g_rand_free(rand);
}
END_TEST

/* DEPTH multiparts, each inside the last, the text in the innermost. */
static char *
nested_message(int depth)
{
	GString *out = g_string_new("Subject: deep\n" MIME);

	for (int i = 0; i < depth; i++)
		g_string_append_printf(out, "Content-Type: multipart/mixed; "
		    "boundary=\"b%d\"\n\n--b%d\n", i, i);
	g_string_append(out, PLAIN "\nhello deep\n");
	for (int i = depth - 1; i >= 0; i--)
		g_string_append_printf(out, "--b%d--\n", i);
	return g_string_free(out, FALSE);
}

static const struct {
	int depth;
	gboolean text_read;
} nesting_cases[] = {
	{ 1, TRUE },
	{ MESSAGE_MAX_DEPTH, TRUE },
	{ MESSAGE_MAX_DEPTH + 1, FALSE },
	{ 300, FALSE },
	{ 5000, FALSE },
};

START_TEST(deep_nesting_is_cut_at_the_depth_limit)
{
	char *text = nested_message(nesting_cases[_i].depth);
	struct message *m = parse_string(text);

	ck_assert_str_eq(m->subject, "deep");
	ck_assert_msg((strstr(m->body, "hello deep") != NULL) ==
	    nesting_cases[_i].text_read, "depth %d: got body \"%s\", want "
	    "the text %s", nesting_cases[_i].depth, m->body,
	    nesting_cases[_i].text_read ? "read" : "left out");
	/* What is left out is said, for the log. */
	ck_assert_msg((m->limits != NULL) == !nesting_cases[_i].text_read,
	    "depth %d: got limits \"%s\"", nesting_cases[_i].depth,
	    m->limits ? m->limits : "(none)");
	message_free(&m);
	g_free(text);
}
END_TEST

START_TEST(parts_beyond_the_limit_are_not_read)
{
	GString *text = g_string_new(MIME MIXED("m"));
	struct message *m;

	for (int i = 0; i < 3 * MESSAGE_MAX_PARTS; i++)
		g_string_append_printf(text, "--m\n" PLAIN "\npart %d.\n", i);
	g_string_append(text, "--m--\n");
	m = message_parse(text->str, text->len);
	ck_assert_str_contains(m->body, "part 0.");
	ck_assert_str_contains(m->body, "part 100.");
	ck_assert_msg(strstr(m->body, "part 300.") == NULL,
	    "got part 300 in the body, want at most %d parts",
	    MESSAGE_MAX_PARTS);
	ck_assert_ptr_nonnull(m->limits);
	ck_assert_str_contains(m->limits, "parts over the limit");
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

START_TEST(body_is_cut_at_the_size_limit)
{
	GString *text = g_string_new("Subject: big\n" PLAIN "\n");
	struct message *m;

	/* Two-byte characters, so a cut may fall inside one. */
	for (int i = 0; i < MESSAGE_MAX_BODY; i++)
		g_string_append(text, i % 61 == 60 ? "\n" : "\xc3\xa9");
	m = message_parse(text->str, text->len);
	ck_assert_uint_le(strlen(m->body), MESSAGE_MAX_BODY);
	ck_assert_uint_ge(strlen(m->body), MESSAGE_MAX_BODY - 1);
	ck_assert_ptr_nonnull(m->limits);
	ck_assert_str_contains(m->limits, "body limit");
	assert_clean_message(m);
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

/* GMime's address parser is quadratic on this; the cut keeps it fast. */
START_TEST(huge_address_header_is_cut)
{
	GString *text = g_string_new("To: ");
	struct message *m;

	while (text->len < 1024 * 1024)
		g_string_append(text, "a.b,");
	g_string_append(text, "\nFrom: Ana <ana@example.org>\n"
	    "Subject: still here\n\nbody\n");
	m = message_parse(text->str, text->len);
	ck_assert_str_eq(m->subject, "still here");
	ck_assert_str_eq(m->from, "ana@example.org");
	ck_assert_str_eq(m->body, "body\n");
	ck_assert_ptr_nonnull(m->limits);
	ck_assert_str_contains(m->limits, "address header cut");
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

static const struct {
	int lines;
	gboolean subject_read;
} header_count_cases[] = {
	{ 10, TRUE },
	{ 900, TRUE },
	{ 200000, FALSE },
};

/* A header block keeps its first lines; a flood of them is dropped. */
START_TEST(header_flood_is_cut)
{
	GString *text = g_string_new("From: ana@example.org\n");
	struct message *m;

	for (int i = 0; i < header_count_cases[_i].lines; i++)
		g_string_append(text, "X: a\n");
	g_string_append(text, "Subject: late\n\nbody\n");
	m = message_parse(text->str, text->len);
	ck_assert_msg(strcmp(m->subject, header_count_cases[_i].subject_read ?
	    "late" : "") == 0, "%d header lines: got subject \"%s\"",
	    header_count_cases[_i].lines, m->subject);
	ck_assert_str_eq(m->from, "ana@example.org");
	ck_assert_str_eq(m->body, "body\n");
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

/* A million tiny parts: read up to the part limit, quickly. */
START_TEST(part_flood_is_cut)
{
	GString *text = g_string_new(MIME MIXED("b"));
	struct message *m;

	g_string_append(text, "--b\n\nfirst\n");
	for (int i = 0; i < 1000000; i++)
		g_string_append(text, "--b\n\nx\n");
	m = message_parse(text->str, text->len);
	ck_assert_str_contains(m->body, "first");
	message_free(&m);
	g_string_free(text, TRUE);
}
END_TEST

/* The parts of a digest are messages: never our text. */
START_TEST(digest_parts_are_messages)
{
	struct message *m = parse_string(MIME "Content-Type: multipart/digest;"
	    " boundary=\"d\"\n\n--d\n\nSubject: inner\n\ninner text\n--d\n"
	    PLAIN "\nplain part\n--d--\n");

	ck_assert_str_eq(m->body, "plain part");
	message_free(&m);
}
END_TEST

/* The Date is left out: an MTA writes one anew at each delivery. */
START_TEST(digest_follows_from_subject_and_body)
{
	static const char base[] = "From: a@x\nDate: d\nSubject: s\n\nbody\n";
	static const char other[] = "From: a@x\nDate: d\nSubject: t\n\nbody\n";
	static const char extra[] = "From: a@x\nDate: e\nSubject: s\n"
	    "Message-ID: <new@x>\n\nbody\n";
	struct message *a = parse_string(base);
	struct message *b = parse_string(other);
	struct message *c = parse_string(extra);
	char *da = message_digest(a), *db = message_digest(b);
	char *dc = message_digest(c);

	ck_assert_uint_eq(strspn(da, "0123456789abcdef"), 64);
	ck_assert_str_ne(da, db);
	ck_assert_str_eq(da, dc);
	g_free(da);
	g_free(db);
	g_free(dc);
	message_free(&a);
	message_free(&b);
	message_free(&c);
}
END_TEST

static gpointer
parse_in_thread(gpointer unused)
{
	(void)unused;
	for (int i = 0; i < 20; i++) {
		struct message *m = parse_file(MSG_01);

		if (strcmp(m->subject, "Re: [ESC-42] ESCALATE") != 0)
			return GINT_TO_POINTER(1);
		message_free(&m);
	}
	return NULL;
}

/* The first call may come from any thread; GMime starts once. */
START_TEST(parse_works_from_several_threads)
{
	GThread *threads[4];

	for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
		threads[i] = g_thread_new("parse", parse_in_thread, NULL);
	for (size_t i = 0; i < G_N_ELEMENTS(threads); i++)
		ck_assert_ptr_null(g_thread_join(threads[i]));
}
END_TEST

/* RFC 3834: what makes a message automatic, and what does not. */
static const struct {
	const char *headers;
	const char *envelope;	/* NULL: unknown */
	const char *want;	/* NULL: not automatic */
} automatic_cases[] = {
	{ "From: ann@example.net\n", "ann@example.net", NULL },
	{ "From: ann@example.net\n", NULL, NULL },
	{ "From: ann@example.net\n", "", "null envelope sender" },
	{ "From: MAILER-DAEMON@mx.example.net\n", NULL,
	    "sender is a mailer daemon" },
	{ "From: MAILER-DAEMON (Mail Delivery System)\n", NULL,
	    "sender is a mailer daemon" },
	{ "From: ann@example.net\n", "mailer-daemon",
	    "sender is a mailer daemon" },
	{ "From: Postmaster <POSTMASTER@example.net>\n", "x@example.net",
	    "sender is a postmaster" },
	{ "From: postmaster-team@example.net\n", NULL, NULL },
	{ "From: mailer-daemon.fan@example.net\n", NULL, NULL },
	{ "Auto-Submitted: auto-replied\n", NULL, "Auto-Submitted" },
	{ "Auto-Submitted: auto-generated\n", NULL, "Auto-Submitted" },
	{ "Auto-Submitted: auto-notified\n", NULL, "Auto-Submitted" },
	{ "Auto-Submitted: nope\n", NULL, "Auto-Submitted" },
	{ "Auto-Submitted: (robot) auto-replied; owner=x\n", NULL,
	    "Auto-Submitted" },
	{ "Auto-Submitted: no\n", NULL, NULL },
	{ "Auto-Submitted: NO (a person)\n", NULL, NULL },
	{ "Auto-Submitted: no\nAuto-Submitted: auto-generated\n", NULL,
	    "Auto-Submitted" },
	{ "Precedence: bulk\n", NULL, "Precedence" },
	{ "Precedence: JUNK\n", NULL, "Precedence" },
	{ "Precedence: list\n", NULL, "Precedence" },
	{ "Precedence: auto_reply\n", NULL, "Precedence" },
	{ "Precedence: (x) bulk\n", NULL, "Precedence" },
	{ "Precedence: first-class\n", NULL, NULL },
	{ "Precedence: bulky\n", NULL, NULL },
	{ "Precedence: listen\n", NULL, NULL },
	{ "List-Id: Registry users <users.lists.example.net>\n", NULL,
	    "List-Id" },
	{ "List-Id:\n", NULL, NULL },
	/* It asks that we be left unanswered; it is not automatic. */
	{ "X-Auto-Response-Suppress: All\n", NULL, NULL },
	{ "X-Auto-Response-Suppress: OOF, AutoReply\n", "a@example.net",
	    NULL },
	{ "MIME-Version: 1.0\nContent-Type: multipart/report; "
	    "report-type=delivery-status; boundary=r\n\n--r\n\nx\n--r--\n",
	    NULL, "delivery report" },
	{ "MIME-Version: 1.0\nContent-Type: multipart/report; "
	    "report-type=disposition-notification; boundary=r\n\n--r\n\n"
	    "read\n--r--\n", "a@example.net", "report" },
};

START_TEST(automatic_mail_is_recognised)
{
	char *text = g_strconcat(automatic_cases[_i].headers,
	    "Subject: x\n\nbody\n", NULL);
	struct message *m = parse_string(text);
	const char *got = message_automatic(m, automatic_cases[_i].envelope);

	ck_assert_msg(g_strcmp0(got, automatic_cases[_i].want) == 0,
	    "%s (envelope %s): got %s, want %s", automatic_cases[_i].headers,
	    automatic_cases[_i].envelope, got, automatic_cases[_i].want);
	message_free(&m);
	g_free(text);
}
END_TEST

/* The shared messages that say they are automatic, and why. */
static const struct {
	const char *file;
	const char *envelope;
	const char *want;
} automatic_files[] = {
	{ MSG_01, "ana.lindqvist@example.org", NULL },
	{ MSG_07, "lena.brandt@example.net", "Auto-Submitted" },
	{ MSG_08, "support@helpdesk.example.net", NULL },
	{ MSG_09, "", "null envelope sender" },
	{ MSG_09, NULL, "delivery report" },
	{ MSG_25, NULL, "delivery report" },
	{ MSG_26, NULL, "sender is a mailer daemon" },
};

START_TEST(automatic_message_file_is_recognised)
{
	struct message *m = parse_file(automatic_files[_i].file);
	const char *got = message_automatic(m, automatic_files[_i].envelope);

	ck_assert_msg(g_strcmp0(got, automatic_files[_i].want) == 0,
	    "%s: got %s, want %s", automatic_files[_i].file, got,
	    automatic_files[_i].want);
	message_free(&m);
}
END_TEST

START_TEST(message_free_accepts_null)
{
	struct message *m = NULL;

	message_free(&m);
	message_free(NULL);
	ck_assert_ptr_null(m);
}
END_TEST

static Suite *
parser_suite(void)
{
	Suite *suite = suite_create("parser");
	TCase *files = tcase_create("messages");
	TCase *decode = tcase_create("decoding");
	TCase *robust = tcase_create("robustness");
	TCase *limits = tcase_create("limits");

	tcase_add_loop_test(files, message_file_gives_expected_field, 0,
	    G_N_ELEMENTS(file_cases));
	tcase_add_loop_test(files, message_file_gives_clean_utf8, 0,
	    G_N_ELEMENTS(all_messages));
	tcase_add_loop_test(files, line_ends_do_not_change_the_result, 0,
	    G_N_ELEMENTS(line_end_files) * G_N_ELEMENTS(line_end_names));
	tcase_add_test(files, long_header_line_does_not_end_the_headers);
	suite_add_tcase(suite, files);

	tcase_add_loop_test(decode, header_decode_reads_what_clients_write, 0,
	    G_N_ELEMENTS(decode_cases));
	tcase_add_loop_test(decode, base64_decode_skips_padding_and_junk, 0,
	    G_N_ELEMENTS(base64_cases));
	tcase_add_loop_test(decode,
	    html_to_text_drops_markup_and_decodes_entities, 0,
	    G_N_ELEMENTS(html_cases));
	tcase_add_loop_test(decode, header_field_is_read_as_written, 0,
	    G_N_ELEMENTS(header_cases));
	tcase_add_loop_test(decode, body_is_read_from_the_right_parts, 0,
	    G_N_ELEMENTS(body_cases));
	tcase_add_test(decode, digest_follows_from_subject_and_body);
	tcase_add_loop_test(decode, automatic_mail_is_recognised, 0,
	    G_N_ELEMENTS(automatic_cases));
	tcase_add_loop_test(decode, automatic_message_file_is_recognised, 0,
	    G_N_ELEMENTS(automatic_files));
	suite_add_tcase(suite, decode);

	/* valgrind runs these many times slower. */
	tcase_set_timeout(robust, 300);
	tcase_add_loop_test(robust, broken_input_gives_an_empty_message, 0,
	    G_N_ELEMENTS(broken_cases));
	tcase_add_loop_test(robust, mutated_messages_do_not_crash, 0,
	    G_N_ELEMENTS(all_messages));
	tcase_add_test(robust, random_bytes_do_not_crash);
	tcase_add_loop_test(robust, deep_nesting_is_cut_at_the_depth_limit, 0,
	    G_N_ELEMENTS(nesting_cases));
	tcase_add_test(robust, parts_beyond_the_limit_are_not_read);
	tcase_add_test(robust, body_is_cut_at_the_size_limit);
	tcase_add_test(robust, parse_works_from_several_threads);
	tcase_add_test(robust, message_free_accepts_null);
	suite_add_tcase(suite, robust);

	/* The default timeout fails these if a guard stops working. */
	tcase_add_test(limits, huge_address_header_is_cut);
	tcase_add_loop_test(limits, header_flood_is_cut, 0,
	    G_N_ELEMENTS(header_count_cases));
	tcase_add_test(limits, part_flood_is_cut);
	tcase_add_test(limits, digest_parts_are_messages);
	suite_add_tcase(suite, limits);
	return suite;
}

int
main(void)
{
	int status = test_run_suite(parser_suite());
	const char *fork = getenv("CK_FORK");

	/* Unforked, GMime's global tables would show as leaks. */
	if (fork != NULL && strcmp(fork, "no") == 0)
		g_mime_shutdown();
	return status;
}
