/*
 * compose.c: an outgoing row as a message, built with GMime 3.
 *
 * GMime builds the structure, dates it and encodes the body; every
 * header that carries row data is written by this file as a raw value,
 * because those values come from mail and must not reach the wire in
 * any form but the one chosen here. Subjects and display names go
 * through a small RFC 2047 encoder: control characters become spaces,
 * runs of spaces become one, and words that are not plain printable
 * ASCII become UTF-8 encoded-words of at most 75 characters, cut on
 * character boundaries, never empty, and always set apart by spaces, on
 * folded lines of at most 76 characters. The words are Q-encoded with
 * the set of characters safe in a phrase, never B-encoded: GMime 3.2.13
 * joins the payloads of adjacent B words before decoding them, so a
 * padded word in the middle of a run cuts off the rest. An address
 * with anything that could end a header or add a recipient is left out
 * of its header; the sender then refuses the same address, so the row
 * stays in the outbox.
 */
#include <string.h>
#include <gmime/gmime.h>

#include "common/text.h"
#include "outbox/compose.h"
#include "outbox/send.h"

/* RFC 2047 section 2: a line holding encoded-words, and one word. */
#define LINE_MAX_ENCODED 76
#define WORD_MAX 75
#define WORD_PREFIX "=?UTF-8?Q?"
#define WORD_OVERHEAD (sizeof(WORD_PREFIX) - 1 + 2)
/* A longer plain word is encoded, so that it can be split and folded. */
#define PLAIN_WORD_MAX 60
/* A body line longer than this is sent quoted-printable. */
#define BODY_LINE_MAX 78
/* References kept: the thread's first and the latest ones. */
#define REFERENCES_MAX 20

enum words_mode {
	WORDS_TEXT,		/* unstructured text: Subject */
	WORDS_PHRASE,		/* a display name: plain words must be atoms */
};

/* A header value being written, with the column its line has reached. */
struct folder {
	GString *out;
	size_t col;
};

static gpointer
compose_gmime_init(gpointer unused)
{
	(void)unused;
	g_mime_init();
	return NULL;
}

static void
compose_init(void)
{
	static GOnce once = G_ONCE_INIT;

	g_once(&once, compose_gmime_init, NULL);
}

static gboolean
is_control(gunichar c)
{
	return c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) ||
	    c == 0x2028 || c == 0x2029;
}

/*
 * VALUE as valid UTF-8 on one line: controls (CR, LF, TAB, NUL and the
 * rest) become spaces, runs of spaces one space, ends trimmed.
 */
static char *
header_clean(const char *value)
{
	char *utf8 = text_to_utf8(value, value != NULL ? strlen(value) : 0);
	GString *out = g_string_sized_new(strlen(utf8));

	for (const char *p = utf8; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (is_control(c) || c == ' ') {
			if (out->len > 0 && out->str[out->len - 1] != ' ')
				g_string_append_c(out, ' ');
			continue;
		}
		g_string_append_len(out, p, g_utf8_next_char(p) - p);
	}
	g_free(utf8);
	if (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
	return g_string_free(out, FALSE);
}

/* RFC 5322 atext, the characters of an atom. */
static gboolean
is_atext(char c)
{
	return g_ascii_isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Whether a word may be written as it is, not encoded. */
static gboolean
word_plain(const char *word, size_t len, enum words_mode mode)
{
	if (len > PLAIN_WORD_MAX)
		return FALSE;
	for (size_t i = 0; i < len; i++) {
		char c = word[i];

		if (c <= ' ' || c > '~')
			return FALSE;
		if (mode == WORDS_PHRASE && !is_atext(c))
			return FALSE;
		/* Text that looks like an encoded-word must be encoded. */
		if (c == '=' && i + 1 < len && word[i + 1] == '?')
			return FALSE;
	}
	return TRUE;
}

/* Put a space and WORD, folding first if the line would grow too long. */
static void
fold_put(struct folder *f, const char *word, size_t len)
{
	if (f->out->len > 0 && f->col + 1 + len > LINE_MAX_ENCODED) {
		g_string_append_c(f->out, '\n');
		f->col = 0;
	}
	g_string_append_c(f->out, ' ');
	g_string_append_len(f->out, word, (gssize)len);
	f->col += 1 + len;
}

/* Q encoding (RFC 2047 5(3)): these bytes stand for themselves. */
static gboolean
q_literal(guchar c)
{
	return c != '\0' && (g_ascii_isalnum(c) || strchr("!*+-/", c));
}

/* The Q-encoded width of the character at P, whose length is LEN. */
static size_t
q_width(const char *p, size_t len)
{
	size_t width = 0;

	for (size_t i = 0; i < len; i++)
		width += q_literal((guchar)p[i]) || p[i] == ' ' ? 1 : 3;
	return width;
}

static void
q_append(GString *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		guchar c = (guchar)p[i];

		if (q_literal(c))
			g_string_append_c(out, (char)c);
		else if (c == ' ')
			g_string_append_c(out, '_');
		else
			g_string_append_printf(out, "=%02X", c);
	}
}

/*
 * How many bytes of whole characters from P fit in MAX encoded
 * characters; at least one character, so that a word is never empty.
 */
static size_t
q_prefix(const char *p, const char *end, size_t max)
{
	const char *q = p;
	size_t width = 0;

	while (q < end) {
		const char *next = g_utf8_next_char(q);
		size_t w = q_width(q, (size_t)(next - q));

		if (width + w > max && q > p)
			break;
		width += w;
		q = next;
	}
	return (size_t)(q - p);
}

/* RUN (whole words and the spaces between them) as encoded-words. */
static void
encode_run(struct folder *f, const char *run, size_t len)
{
	const char *p = run, *end = run + len;

	while (p < end) {
		size_t room, take;
		GString *word;

		/* Fold first if less than a 4-byte character fits here. */
		room = LINE_MAX_ENCODED > f->col + 1 ?
		    LINE_MAX_ENCODED - f->col - 1 : 0;
		if (room < WORD_OVERHEAD + 12 && f->out->len > 0) {
			g_string_append_c(f->out, '\n');
			f->col = 0;
			room = LINE_MAX_ENCODED - 1;
		}
		room = MIN(room, WORD_MAX);

		take = q_prefix(p, end, room > WORD_OVERHEAD ?
		    room - WORD_OVERHEAD : 0);
		word = g_string_new(WORD_PREFIX);
		q_append(word, p, take);
		g_string_append(word, "?=");
		fold_put(f, word->str, word->len);
		g_string_free(word, TRUE);
		p += take;
	}
}

/* VALUE's words into F: plain ones as they are, the rest encoded. */
static void
words_put(struct folder *f, const char *value, enum words_mode mode)
{
	char *clean = header_clean(value);
	const char *p = clean;

	while (*p != '\0') {
		const char *word_end = strchrnul(p, ' ');
		const char *run_end;

		if (word_plain(p, (size_t)(word_end - p), mode)) {
			fold_put(f, p, (size_t)(word_end - p));
			p = *word_end == ' ' ? word_end + 1 : word_end;
			continue;
		}

		/* Neighbouring words that need encoding share the run. */
		run_end = word_end;
		while (*run_end == ' ') {
			const char *next = run_end + 1;
			const char *next_end = strchrnul(next, ' ');

			if (word_plain(next, (size_t)(next_end - next), mode))
				break;
			run_end = next_end;
		}
		encode_run(f, p, (size_t)(run_end - p));
		p = *run_end == ' ' ? run_end + 1 : run_end;
	}
	g_free(clean);
}

/* A folder for the value of header NAME, whose line starts "NAME:". */
static struct folder
folder_new(const char *name)
{
	struct folder f = { g_string_new(NULL), strlen(name) + 1 };

	return f;
}

/* The raw value F holds: leading space, folded, ending in a newline. */
static char *
folder_finish(struct folder *f)
{
	if (f->out->len == 0)
		g_string_append_c(f->out, ' ');
	g_string_append_c(f->out, '\n');
	return g_string_free(f->out, FALSE);
}

/* Set NAME to RAW (as written), with GMime's parsed view to match. */
static void
header_set_raw(GMimeObject *object, const char *name, const char *raw)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(object);
	GString *value = g_string_new(NULL);
	GMimeHeader *header;

	for (const char *p = raw; *p != '\0'; p++)
		if (*p != '\n')
			g_string_append_c(value, *p);
	g_mime_object_set_header(object, name, g_strstrip(value->str), NULL);
	header = g_mime_header_list_get_header(headers, name);
	g_mime_header_set_raw_value(header, raw);
	g_string_free(value, TRUE);
}

/* An id from the row for "<id>": printable ASCII, no brackets. */
static char *
id_clean(const char *id)
{
	GString *out = g_string_new(NULL);

	for (const char *p = id != NULL ? id : ""; *p != '\0'; p++)
		if (*p > ' ' && *p <= '~' && *p != '<' && *p != '>')
			g_string_append_c(out, *p);
	if (out->len == 0) {
		g_string_free(out, TRUE);
		return NULL;
	}
	return g_string_free(out, FALSE);
}

static void
set_id_header(GMimeObject *object, const char *name, const char *id)
{
	char *clean = id_clean(id);
	char *raw;

	if (clean == NULL)
		return;
	raw = g_strdup_printf(" <%s>\n", clean);
	header_set_raw(object, name, raw);
	g_free(raw);
	g_free(clean);
}

/* References: each id re-bracketed; a long chain keeps ends only. */
static void
set_references(GMimeObject *object, const char *references)
{
	char **ids = g_strsplit_set(references != NULL ? references : "",
	    " \t\r\n<>", -1);
	GPtrArray *kept = g_ptr_array_new_with_free_func(g_free);
	struct folder f = folder_new("References");
	char *raw;

	for (char **id = ids; *id != NULL; id++) {
		char *clean = id_clean(*id);

		if (clean != NULL)
			g_ptr_array_add(kept, clean);
	}
	while (kept->len > REFERENCES_MAX)
		g_ptr_array_remove_index(kept, 1);

	for (guint i = 0; i < kept->len; i++) {
		char *bracketed = g_strdup_printf("<%s>",
		    (char *)g_ptr_array_index(kept, i));

		fold_put(&f, bracketed, strlen(bracketed));
		g_free(bracketed);
	}
	raw = folder_finish(&f);
	if (kept->len > 0)
		header_set_raw(object, "References", raw);

	g_free(raw);
	g_ptr_array_free(kept, TRUE);
	g_strfreev(ids);
}

/* An address header, or none if ADDRESS could not be written safely. */
static void
set_address(GMimeObject *object, const char *name, const char *display,
    const char *address)
{
	struct folder f;
	char *raw;

	if (!send_address_valid(address))
		return;
	f = folder_new(name);
	if (display != NULL)
		words_put(&f, display, WORDS_PHRASE);
	if (f.out->len > 0) {
		char *bracketed = g_strdup_printf("<%s>", address);

		fold_put(&f, bracketed, strlen(bracketed));
		g_free(bracketed);
	} else {
		fold_put(&f, address, strlen(address));
	}
	raw = folder_finish(&f);
	header_set_raw(object, name, raw);
	g_free(raw);
}

static void
set_subject(GMimeObject *object, const char *subject)
{
	struct folder f = folder_new("Subject");
	char *raw;

	words_put(&f, subject, WORDS_TEXT);
	raw = folder_finish(&f);
	header_set_raw(object, "Subject", raw);
	g_free(raw);
}

/* Only the RFC 3834 keywords that mean "automatic"; never "no". */
static const char *
auto_submitted_value(const char *wanted)
{
	static const char *const known[] = { "auto-replied",
		"auto-generated", "auto-notified" };

	for (size_t i = 0; i < G_N_ELEMENTS(known); i++)
		if (wanted != NULL && g_ascii_strcasecmp(wanted, known[i]) == 0)
			return known[i];
	return "auto-generated";
}

static void
set_fixed_headers(GMimeObject *object, const struct outgoing *mail)
{
	char *case_id = id_clean(mail->case_id);
	char *raw;

	raw = g_strdup_printf(" %s\n", auto_submitted_value(
	    mail->auto_submitted));
	header_set_raw(object, "Auto-Submitted", raw);
	g_free(raw);
	header_set_raw(object, "X-Auto-Response-Suppress", " All\n");

	if (case_id != NULL) {
		raw = g_strdup_printf(" %s\n", case_id);
		header_set_raw(object, "X-Escalator-Case", raw);
		g_free(raw);
	}
	g_free(case_id);
}

/* The body as UTF-8 with LF line ends and a final newline. */
static char *
body_text(const char *body)
{
	char *utf8 = text_to_utf8(body, body != NULL ? strlen(body) : 0);
	GString *out = g_string_sized_new(strlen(utf8) + 1);

	for (const char *p = utf8; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			continue;
		g_string_append_c(out, *p == '\r' ? '\n' : *p);
	}
	if (out->len == 0 || out->str[out->len - 1] != '\n')
		g_string_append_c(out, '\n');
	g_free(utf8);
	return g_string_free(out, FALSE);
}

/* Whether TEXT must be quoted-printable to travel as 7-bit lines. */
static gboolean
body_needs_qp(const char *text)
{
	size_t line = 0;

	for (const guchar *p = (const guchar *)text; *p != '\0'; p++) {
		if (*p == '\n') {
			line = 0;
			continue;
		}
		if (*p >= 0x80 || (*p < ' ' && *p != '\t') || *p == 0x7F ||
		    ++line > BODY_LINE_MAX)
			return TRUE;
	}
	return FALSE;
}

static GMimeObject *
body_part(const char *body)
{
	char *text = body_text(body);
	GMimePart *part = g_mime_part_new_with_type("text", "plain");
	GMimeStream *stream;
	GMimeDataWrapper *content;

	/* Given as bytes, since setting text would pick another charset. */
	stream = g_mime_stream_mem_new_with_buffer(text, strlen(text));
	content = g_mime_data_wrapper_new_with_stream(stream,
	    GMIME_CONTENT_ENCODING_DEFAULT);
	g_mime_object_set_content_type_parameter(GMIME_OBJECT(part),
	    "charset", "utf-8");
	g_mime_part_set_content(part, content);
	g_mime_part_set_content_encoding(part, body_needs_qp(text) ?
	    GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE :
	    GMIME_CONTENT_ENCODING_7BIT);

	g_object_unref(content);
	g_object_unref(stream);
	g_free(text);
	return GMIME_OBJECT(part);
}

static void
set_date(GMimeMessage *message, time_t now)
{
	GDateTime *date = g_date_time_new_from_unix_local((gint64)now);

	g_mime_message_set_date(message, date);
	g_date_time_unref(date);
}

static GBytes *
message_bytes(GMimeMessage *message)
{
	GMimeStream *stream = g_mime_stream_mem_new();
	GByteArray *array;
	GBytes *bytes;

	g_mime_object_write_to_stream(GMIME_OBJECT(message), NULL, stream);
	array = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
	bytes = g_bytes_new(array->data, array->len);
	g_object_unref(stream);
	return bytes;
}

GBytes *
compose_message(const struct outgoing *mail, time_t now)
{
	GMimeMessage *message;
	GMimeObject *object, *body;
	GBytes *bytes;

	compose_init();
	message = g_mime_message_new(TRUE);
	object = GMIME_OBJECT(message);

	set_date(message, now);
	set_address(object, "From", mail->sender_name, mail->sender);
	set_subject(object, mail->subject);
	set_address(object, "To", NULL, mail->recipient);
	if (mail->reply_to != NULL)
		set_address(object, "Reply-To", NULL, mail->reply_to);
	set_id_header(object, "Message-ID", mail->message_id);
	set_id_header(object, "In-Reply-To", mail->in_reply_to);
	set_references(object, mail->references);
	set_fixed_headers(object, mail);

	body = body_part(mail->body);
	g_mime_message_set_mime_part(message, body);
	g_object_unref(body);

	bytes = message_bytes(message);
	g_object_unref(message);
	return bytes;
}
