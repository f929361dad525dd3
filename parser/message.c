/*
 * message.c: one mail message read into the fields the rules look at.
 *
 * GMime splits the message into headers and a tree of parts; the values
 * themselves are decoded here, from GMime's raw header values and raw
 * part contents, because the GMime Debian 12 ships (3.2.13) decodes
 * adjacent encoded-words and chunked base64 wrongly. Line ends are made
 * LF first, so a message read from a file and the same message rebuilt
 * by the milter (CRLF, LF or both) give the same result. The text body
 * is the writer's own text: text/plain preferred within
 * multipart/alternative, HTML turned into text when there is no plain
 * part, inline text parts joined; attachments, application parts and
 * forwarded messages (message/rfc822) are never read as ours.
 *
 * Limits: those of message.h (MESSAGE_MAX_PARTS parts walked, nesting
 * beyond MESSAGE_MAX_DEPTH ignored, the body cut at MESSAGE_MAX_BODY
 * bytes), and REFERENCES_MAX ids of References kept, the oldest.
 *
 * The input GMime sees is bounded first (parser/input.c).
 */
#include <string.h>

#include "common/text.h"
#include "parser/body.h"
#include "parser/header.h"
#include "parser/input.h"
#include "parser/message.h"

#define REFERENCES_MAX 200
/* What the walk over the part tree gathers. */
struct walk {
	GString *body;
	unsigned int parts;
	GPtrArray *limits;	/* static texts: what was left out */
};

static void
limit_hit(GPtrArray *limits, const char *what)
{
	for (guint i = 0; i < limits->len; i++)
		if (limits->pdata[i] == what)
			return;
	g_ptr_array_add(limits, (gpointer)what);
}

static gpointer
gmime_start(gpointer unused)
{
	(void)unused;
	g_mime_init();
	return NULL;
}

static GMimeMessage *
message_construct(const char *data, size_t len, GPtrArray *limits)
{
	const char *cut = NULL;
	GByteArray *input = input_prepare(data, len, &cut);
	GMimeStream *stream;
	GMimeParser *parser;
	GMimeMessage *mime;

	/* The stream takes the array. */
	stream = g_mime_stream_mem_new_with_byte_array(input);
	parser = g_mime_parser_new_with_stream(stream);
	g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
	mime = g_mime_parser_construct_message(parser, NULL);
	if (cut != NULL)
		limit_hit(limits, cut);
	g_object_unref(parser);
	g_object_unref(stream);
	return mime;
}

/* The raw value of the first NAME header of OBJECT, or NULL. */
static const char *
header_raw(GMimeObject *object, const char *name)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(object);
	GMimeHeader *header;

	if (list == NULL)
		return NULL;
	header = g_mime_header_list_get_header(list, name);
	return header != NULL ? g_mime_header_get_raw_value(header) : NULL;
}

/* A structured value as written: unfolded, trimmed, UTF-8; NULL if "". */
static char *
value_plain(const char *raw)
{
	GString *unfolded;
	char *text;

	if (raw == NULL)
		return NULL;
	unfolded = g_string_sized_new(strlen(raw) + 1);
	for (const char *p = raw; *p != '\0'; p++)
		if (*p != '\r' && *p != '\n')
			g_string_append_c(unfolded,
			    (guchar)*p < 0x20 || *p == 0x7F ? ' ' : *p);
	text = header_charset_to_utf8(NULL, unfolded->str, unfolded->len);
	g_string_free(unfolded, TRUE);
	g_strstrip(text);
	if (*text != '\0')
		return text;
	g_free(text);
	return NULL;
}

/* An unstructured value decoded (List-Id's phrase may be encoded). */
static char *
value_decoded(const char *raw)
{
	char *text;

	if (raw == NULL)
		return NULL;
	text = header_decode(raw);
	if (*text != '\0')
		return text;
	g_free(text);
	return NULL;
}

/* One msg-id without white space; empty ones are not kept. */
static void
msgid_add(GPtrArray *ids, const char *start, const char *end)
{
	GString *id = g_string_new(NULL);
	char *utf8;

	for (const char *p = start; p < end; p++)
		if (!g_ascii_isspace(*p) && !g_ascii_iscntrl(*p))
			g_string_append_c(id, *p);
	if (id->len > 0 && ids->len < REFERENCES_MAX) {
		utf8 = header_charset_to_utf8(NULL, id->str, id->len);
		g_ptr_array_add(ids, utf8);
	}
	g_string_free(id, TRUE);
}

/*
 * Every msg-id in RAW, without angle brackets. Without brackets at all
 * (some gateways drop them) the words themselves are the ids.
 */
static GPtrArray *
msgids_parse(const char *raw)
{
	GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
	const char *p = raw;
	const char *close = raw;
	const char *word;

	if (raw == NULL)
		return ids;
	if (strchr(raw, '<') != NULL) {
		while ((p = strchr(p, '<')) != NULL) {
			/* Once no '>' is left, none is looked for again. */
			if (close != NULL)
				close = strchr(p + 1, '>');
			word = p + 1;
			p = close != NULL ? close : word + strcspn(word, "<");
			msgid_add(ids, word, p);
		}
		return ids;
	}

	while (*p != '\0') {
		p += strspn(p, " \t\r\n,");
		word = p;
		p += strcspn(p, " \t\r\n,");
		msgid_add(ids, word, p);
	}
	return ids;
}

static char *
msgid_first(const char *raw)
{
	GPtrArray *ids = msgids_parse(raw);
	char *id = ids->len > 0 ? g_strdup(g_ptr_array_index(ids, 0)) : NULL;

	g_ptr_array_unref(ids);
	return id;
}

static char **
msgids_vector(const char *raw)
{
	GPtrArray *ids = msgids_parse(raw);

	g_ptr_array_set_free_func(ids, NULL);
	g_ptr_array_add(ids, NULL);
	return (char **)g_ptr_array_free(ids, FALSE);
}

/*
 * The last character of the quoted string or (nested) comment that
 * starts at P, escapes honoured; P itself if neither starts there.
 */
static const char *
skip_construct(const char *p)
{
	int depth = 0;

	if (*p == '"') {
		for (p++; *p != '\0' && *p != '"'; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		return *p != '\0' ? p : p - 1;
	}
	if (*p != '(')
		return p;

	for (; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth == 0)
			return p;
	}
	return p - 1;
}

/* The display name as written: quotes and escapes gone, then decoded. */
static char *
name_decode(const char *start, const char *end)
{
	GString *raw = g_string_new(NULL);
	char *name;

	for (const char *p = start; p < end; p++) {
		if (*p == '"')
			continue;
		if (*p == '\\' && p + 1 < end)
			p++;
		g_string_append_c(raw, *p);
	}
	name = value_decoded(raw->str);
	g_string_free(raw, TRUE);
	return name;
}

/* The addr-spec between START and END, comments and spaces gone. */
static char *
addr_clean(const char *start, const char *end)
{
	GString *raw = g_string_new(NULL);
	const char *p;
	char *addr;
	char *utf8;

	for (p = start; p < end; p++) {
		if (*p == '(') {
			p = skip_construct(p);
			continue;
		}
		if (!g_ascii_isspace(*p) && !g_ascii_iscntrl(*p))
			g_string_append_c(raw, *p);
	}

	/* An obsolete source route ("@relay:user@host") is not the address. */
	p = raw->str;
	if (*p == '@' && strchr(p, ':') != NULL)
		p = strchr(p, ':') + 1;
	utf8 = header_charset_to_utf8(NULL, p, strlen(p));
	addr = *utf8 != '\0' ? text_address_normalize(utf8) : NULL;
	g_free(utf8);
	g_string_free(raw, TRUE);
	return addr;
}

/* The comment after a bare address is the old way to write a name. */
static char *
comment_name(const char *start, const char *end)
{
	const char *open = memchr(start, '(', (size_t)(end - start));
	const char *close;

	if (open == NULL)
		return NULL;
	close = skip_construct(open);
	return name_decode(open + 1, MIN(close, end));
}

/*
 * The first mailbox of an address header: its addr-spec and display
 * name. Quotes and comments are honoured, so a ',' or '<' inside them is
 * text; a ',' before the '<' of an unquoted "Doe, John <j@x>" is taken
 * as part of the name unless what precedes it is an address.
 */
static void
mailbox_parse(const char *raw, char **addr_r, char **name_r)
{
	char *text = value_plain(raw);
	const char *angle = NULL;
	const char *comma = NULL;
	const char *p;
	const char *close;

	*addr_r = NULL;
	if (name_r != NULL)
		*name_r = NULL;
	if (text == NULL)
		return;

	for (p = text; *p != '\0'; p++) {
		p = skip_construct(p);
		if (*p == '<' && angle == NULL)
			angle = p;
		else if (*p == ',' && comma == NULL)
			comma = p;
	}
	if (comma != NULL && (angle == NULL || angle > comma) &&
	    memchr(text, '@', (size_t)(comma - text)) != NULL)
		angle = NULL;
	else
		comma = NULL;
	if (comma == NULL)
		comma = p;

	if (angle != NULL) {
		close = strchr(angle, '>');
		*addr_r = addr_clean(angle + 1, close != NULL ? close : p);
		if (name_r != NULL)
			*name_r = name_decode(text, angle);
	} else {
		*addr_r = addr_clean(text, comma);
		if (name_r != NULL)
			*name_r = comment_name(text, comma);
	}
	g_free(text);
}

/*
 * The first word of a structured value such as Auto-Submitted's
 * ("auto-replied; owner-email=..." or "(by robot) auto-generated"):
 * comments skipped, up to white space, ';' or a comment; lowercased.
 * NULL if there is none.
 */
static char *
value_keyword(const char *raw)
{
	char *text = value_plain(raw);
	const char *p;
	const char *start;
	char *word = NULL;

	if (text == NULL)
		return NULL;
	for (p = text; *p == '(' || g_ascii_isspace(*p); p++)
		if (*p == '(')
			p = skip_construct(p);
	start = p;
	while (*p != '\0' && *p != ';' && *p != '(' && !g_ascii_isspace(*p))
		p++;
	if (p > start)
		word = g_ascii_strdown(start, p - start);
	g_free(text);
	return word;
}

/*
 * Auto-Submitted may come more than once (a gateway adds its own); any
 * one other than "no" makes the message automatic, so that one is kept.
 */
static char *
auto_submitted_read(GMimeObject *top)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(top);
	GMimeHeader *header;
	char *first = NULL;
	char *word;
	int count = list != NULL ? g_mime_header_list_get_count(list) : 0;

	for (int i = 0; i < count; i++) {
		header = g_mime_header_list_get_header_at(list, i);
		if (g_ascii_strcasecmp(g_mime_header_get_name(header),
		    "Auto-Submitted") != 0)
			continue;
		word = value_keyword(g_mime_header_get_raw_value(header));
		if (word != NULL && strcmp(word, "no") != 0) {
			g_free(first);
			return word;
		}
		if (first == NULL)
			first = word;
		else
			g_free(word);
	}
	return first;
}

#define MAX_AUTH_RESULTS 8

/*
 * The Authentication-Results headers above the first Received header:
 * those the receiving MTA's own filters added after it took the mail.
 * One from further down came with the mail and proves nothing.
 */
static char **
auth_results_read(GMimeObject *top)
{
	GMimeHeaderList *list = g_mime_object_get_header_list(top);
	GPtrArray *found = g_ptr_array_new();
	int n = list ? g_mime_header_list_get_count(list) : 0;

	for (int i = 0; i < n && found->len < MAX_AUTH_RESULTS; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(list, i);
		const char *name = g_mime_header_get_name(h);
		char *value;

		if (g_ascii_strcasecmp(name, "Received") == 0)
			break;
		if (g_ascii_strcasecmp(name, "Authentication-Results") != 0)
			continue;
		value = value_plain(g_mime_header_get_raw_value(h));
		if (value != NULL)
			g_ptr_array_add(found, value);
	}
	g_ptr_array_add(found, NULL);
	return (char **)g_ptr_array_free(found, FALSE);
}

static void
headers_read(struct message *m, GMimeObject *top)
{
	const char *subject = header_raw(top, "Subject");

	if (subject != NULL) {
		g_free(m->subject);
		m->subject = header_decode(subject);
	}
	mailbox_parse(header_raw(top, "From"), &m->from, &m->from_name);
	mailbox_parse(header_raw(top, "Reply-To"), &m->reply_to, NULL);

	m->message_id = msgid_first(header_raw(top, "Message-ID"));
	m->in_reply_to = msgid_first(header_raw(top, "In-Reply-To"));
	g_strfreev(m->references);
	m->references = msgids_vector(header_raw(top, "References"));

	m->date = value_plain(header_raw(top, "Date"));
	m->auto_submitted = auto_submitted_read(top);
	m->precedence = value_keyword(header_raw(top, "Precedence"));
	m->list_id = value_decoded(header_raw(top, "List-Id"));
	g_strfreev(m->auth_results);
	m->auth_results = auth_results_read(top);
}

/* Append TEXT to the body on a line of its own, within the limit. */
static void
body_append(struct walk *walk, const char *text)
{
	GString *body = walk->body;
	size_t len = strlen(text);
	size_t room;

	if (len == 0)
		return;
	if (body->len >= MESSAGE_MAX_BODY) {
		limit_hit(walk->limits, "text over the body limit cut");
		return;
	}
	if (body->len > 0 && body->str[body->len - 1] != '\n')
		g_string_append_c(body, '\n');

	room = MESSAGE_MAX_BODY - MIN(body->len, MESSAGE_MAX_BODY);
	if (len > room) {
		limit_hit(walk->limits, "text over the body limit cut");
		/* Cut on a character boundary. */
		len = room;
		while (len > 0 && ((guchar)text[len] & 0xC0) == 0x80)
			len--;
	}
	g_string_append_len(body, text, (gssize)len);
}

static gboolean
part_is(GMimeObject *object, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(object);

	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

static gboolean
part_is_attachment(GMimeObject *object)
{
	GMimeContentDisposition *disposition =
	    g_mime_object_get_content_disposition(object);

	return disposition != NULL &&
	    g_mime_content_disposition_is_attachment(disposition);
}

/* A text/plain or text/html leaf that is not an attachment. */
static void
walk_leaf(struct walk *walk, GMimePart *part)
{
	GMimeObject *object = GMIME_OBJECT(part);
	char *text;
	char *html;

	if (part_is_attachment(object))
		return;
	if (part_is(object, "text", "plain")) {
		text = body_part_text(part);
		body_append(walk, text);
		g_free(text);
	} else if (part_is(object, "text", "html")) {
		html = body_part_text(part);
		text = body_html_to_text(html);
		body_append(walk, text);
		g_free(text);
		g_free(html);
	}
}

static void walk_object(struct walk *walk, GMimeObject *object, int depth);

/* Did the body grow by more than white space since it was LEN long? */
static gboolean
body_grew(const struct walk *walk, size_t len)
{
	for (size_t i = len; i < walk->body->len; i++)
		if (!g_ascii_isspace(walk->body->str[i]))
			return TRUE;
	return FALSE;
}

/*
 * One alternative: a plain part with text in it, else the first other
 * alternative that yields text (HTML, or a multipart/related holding it).
 */
static void
walk_alternative(struct walk *walk, GMimeMultipart *multipart, int depth)
{
	int count = g_mime_multipart_get_count(multipart);
	size_t len = walk->body->len;
	GMimeObject *child;

	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < count; i++) {
			child = g_mime_multipart_get_part(multipart, i);
			if (part_is(child, "text", "plain") != (pass == 0))
				continue;
			walk_object(walk, child, depth + 1);
			if (body_grew(walk, len))
				return;
			g_string_truncate(walk->body, len);
		}
	}
}

static void
walk_multipart(struct walk *walk, GMimeMultipart *multipart, int depth)
{
	GMimeObject *object = GMIME_OBJECT(multipart);
	int count = g_mime_multipart_get_count(multipart);

	/* Encrypted text cannot be read; a signature is not text. */
	if (GMIME_IS_MULTIPART_ENCRYPTED(multipart))
		return;
	if (GMIME_IS_MULTIPART_SIGNED(multipart))
		count = MIN(count, 1);

	if (part_is(object, "multipart", "alternative")) {
		walk_alternative(walk, multipart, depth);
		return;
	}
	for (int i = 0; i < count; i++)
		walk_object(walk, g_mime_multipart_get_part(multipart, i),
		    depth + 1);
}

/* Forwarded and returned messages (message/rfc822) are never ours. */
static void
walk_object(struct walk *walk, GMimeObject *object, int depth)
{
	if (object == NULL || walk->body->len >= MESSAGE_MAX_BODY)
		return;
	if (depth > MESSAGE_MAX_DEPTH) {
		limit_hit(walk->limits, "parts nested too deep left out");
		return;
	}
	if (walk->parts >= MESSAGE_MAX_PARTS) {
		limit_hit(walk->limits, "parts over the limit left out");
		return;
	}
	walk->parts++;

	if (GMIME_IS_MULTIPART(object))
		walk_multipart(walk, GMIME_MULTIPART(object), depth);
	else if (GMIME_IS_PART(object))
		walk_leaf(walk, GMIME_PART(object));
}

/* The Message-ID in a text/rfc822-headers blob, or NULL. */
static char *
returned_id_in_headers(GMimePart *part)
{
	char *text = body_part_text(part);
	GString *value = NULL;
	char **lines = g_strsplit(text, "\n", -1);
	char *id;

	for (size_t i = 0; lines[i] != NULL; i++) {
		if (value != NULL && (lines[i][0] == ' ' ||
		    lines[i][0] == '\t'))
			g_string_append(value, lines[i]);
		else if (value != NULL)
			break;
		else if (g_ascii_strncasecmp(lines[i], "message-id:", 11) == 0)
			value = g_string_new(lines[i] + 11);
	}
	id = value != NULL ? msgid_first(value->str) : NULL;
	if (value != NULL)
		g_string_free(value, TRUE);
	g_strfreev(lines);
	g_free(text);
	return id;
}

/* The Message-ID of a returned message or returned headers, or NULL. */
static char *
returned_id_in(GMimeObject *part)
{
	GMimeMessage *returned;

	if (GMIME_IS_MESSAGE_PART(part)) {
		returned = g_mime_message_part_get_message(
		    GMIME_MESSAGE_PART(part));
		return returned == NULL ? NULL : msgid_first(header_raw(
		    GMIME_OBJECT(returned), "Message-ID"));
	}
	if (GMIME_IS_PART(part) && (part_is(part, "text", "rfc822-headers") ||
	    part_is(part, "message", "global-headers")))
		return returned_id_in_headers(GMIME_PART(part));
	return NULL;
}

/*
 * A report (RFC 6522): its type; and for a delivery status notification
 * (RFC 3464), which of our messages came back, from the returned
 * message or the returned headers.
 */
static void
report_read(struct message *m, GMimeObject *top)
{
	GMimeContentType *ct = g_mime_object_get_content_type(top);
	GMimeMultipart *report;
	const char *type;

	if (!GMIME_IS_MULTIPART(top) || !part_is(top, "multipart", "report"))
		return;
	/* A report whose type says nothing is still a report. */
	type = g_mime_content_type_get_parameter(ct, "report-type");
	m->report_type = value_keyword(type);
	if (m->report_type == NULL)
		m->report_type = g_strdup("unknown");
	if (strcmp(m->report_type, "delivery-status") != 0)
		return;
	m->is_report = TRUE;

	report = GMIME_MULTIPART(top);
	for (int i = 0; i < g_mime_multipart_get_count(report); i++) {
		m->returned_id = returned_id_in(
		    g_mime_multipart_get_part(report, i));
		if (m->returned_id != NULL)
			return;
	}
}

static gboolean
local_part_is(const char *address, const char *name)
{
	size_t n = strlen(name);

	return address != NULL && g_ascii_strncasecmp(address, name, n) == 0 &&
	    (address[n] == '@' || address[n] == '\0');
}

/* The first returned message or returned headers in the tree, or NULL. */
static char *
returned_id_find(GMimeObject *object, int depth, unsigned int *parts)
{
	GMimeMultipart *multipart;
	char *id = NULL;

	if (object == NULL || depth > MESSAGE_MAX_DEPTH ||
	    ++*parts > MESSAGE_MAX_PARTS)
		return NULL;
	if (!GMIME_IS_MULTIPART(object))
		return returned_id_in(object);
	multipart = GMIME_MULTIPART(object);
	for (int i = 0; id == NULL && i < g_mime_multipart_get_count(
	    multipart); i++)
		id = returned_id_find(g_mime_multipart_get_part(multipart, i),
		    depth + 1, parts);
	return id;
}

/* The first "Message-ID:" line of TEXT, as a bounce quotes it. */
static char *
returned_id_in_text(const char *text)
{
	const char *line;

	for (line = text; line != NULL && *line != '\0'; line =
	    strchr(line, '\n'), line = line != NULL ? line + 1 : NULL) {
		char *end;
		char *value;
		char *id;

		while (*line == ' ' || *line == '\t' || *line == '>')
			line++;
		if (g_ascii_strncasecmp(line, "message-id:", 11) != 0)
			continue;
		end = strchr(line, '\n');
		value = g_strndup(line + 11, end != NULL ?
		    (gsize)(end - line - 11) : strlen(line + 11));
		id = msgid_first(value);
		g_free(value);
		if (id != NULL)
			return id;
	}
	return NULL;
}

/*
 * Bounces that are not RFC 3464 reports (qmail, Exchange, old Sendmail)
 * still come from the mailer daemon or the postmaster, and carry the
 * returned message as an attachment or quoted in their text: its
 * Message-ID is taken from there, so the bounce finds its case. Other
 * senders' mail is left alone, since anyone may forward a message.
 */
static void
bounce_read(struct message *m, GMimeObject *top, const char *body)
{
	unsigned int parts = 0;

	if (m->report_type != NULL || !(local_part_is(m->from,
	    "mailer-daemon") || local_part_is(m->from, "postmaster")))
		return;
	m->returned_id = returned_id_find(top, 0, &parts);
	if (m->returned_id == NULL)
		m->returned_id = returned_id_in_text(body);
}

/*
 * SHA-256 over the fields that make two copies the same message. The
 * Date is left out: an MTA adds one to mail that has none, differently
 * at each delivery, which would make every copy look new.
 */
char *
message_digest(const struct message *m)
{
	GChecksum *checksum = g_checksum_new(G_CHECKSUM_SHA256);
	const char *fields[] = { m->from, m->subject, m->body };
	char *hex;

	/* NUL separates the fields, which cannot contain it. */
	for (size_t i = 0; i < G_N_ELEMENTS(fields); i++) {
		const char *field = fields[i] != NULL ? fields[i] : "";

		g_checksum_update(checksum, (const guchar *)field,
		    (gssize)strlen(field) + 1);
	}
	hex = g_strdup(g_checksum_get_string(checksum));
	g_checksum_free(checksum);
	return hex;
}

struct message *
message_parse(const char *data, size_t len)
{
	static GOnce gmime_once = G_ONCE_INIT;
	struct message *m = g_new0(struct message, 1);
	struct walk walk = { .body = g_string_new(NULL),
		.limits = g_ptr_array_new() };
	GMimeMessage *mime;
	GMimeObject *top = NULL;

	g_once(&gmime_once, gmime_start, NULL);
	m->subject = g_strdup("");
	m->references = g_new0(char *, 1);
	m->auth_results = g_new0(char *, 1);

	mime = message_construct(data != NULL ? data : "",
	    data != NULL ? len : 0, walk.limits);
	if (mime != NULL) {
		headers_read(m, GMIME_OBJECT(mime));
		top = g_mime_message_get_mime_part(mime);
		if (top != NULL) {
			report_read(m, top);
			walk_object(&walk, top, 0);
		}
	}

	m->body = g_string_free(walk.body, FALSE);
	if (mime != NULL) {
		bounce_read(m, top, m->body);
		g_object_unref(mime);
	}
	if (walk.limits->len > 0) {
		g_ptr_array_add(walk.limits, NULL);
		m->limits = g_strjoinv("; ", (char **)walk.limits->pdata);
	}
	g_ptr_array_unref(walk.limits);
	return m;
}

void
message_free(struct message **message)
{
	struct message *m;

	if (message == NULL || *message == NULL)
		return;
	m = *message;
	g_free(m->subject);
	g_free(m->from);
	g_free(m->from_name);
	g_free(m->reply_to);
	g_free(m->message_id);
	g_free(m->in_reply_to);
	g_strfreev(m->references);
	g_free(m->date);
	g_free(m->auto_submitted);
	g_free(m->precedence);
	g_free(m->list_id);
	g_strfreev(m->auth_results);
	g_free(m->body);
	g_free(m->report_type);
	g_free(m->returned_id);
	g_free(m->limits);
	g_free(m);
	*message = NULL;
}

/* What the sender's address says, for message_automatic(). */
static const char *
sender_automatic(const char *address)
{
	if (local_part_is(address, "mailer-daemon"))
		return "sender is a mailer daemon";
	if (local_part_is(address, "postmaster"))
		return "sender is a postmaster";
	return NULL;
}

const char *
message_automatic(const struct message *m, const char *envelope_from)
{
	static const char *const bulk[] = { "bulk", "junk", "list",
		"auto_reply" };
	const char *why;

	if (envelope_from != NULL && *envelope_from == '\0')
		return "null envelope sender";
	if (m->is_report)
		return "delivery report";
	if (m->report_type != NULL)
		return "report";
	if ((why = sender_automatic(envelope_from)) != NULL ||
	    (why = sender_automatic(m->from)) != NULL)
		return why;
	if (m->auto_submitted != NULL && strcmp(m->auto_submitted, "no") != 0)
		return "Auto-Submitted";
	for (size_t i = 0; m->precedence != NULL && i < G_N_ELEMENTS(bulk);
	    i++)
		if (strcmp(m->precedence, bulk[i]) == 0)
			return "Precedence";
	if (m->list_id != NULL)
		return "List-Id";
	return NULL;
}
