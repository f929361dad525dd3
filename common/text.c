/*
 * text.c: making text from mail safe to keep and to show.
 *
 * Mail labels its charset wrongly more often than not; text that is not
 * valid UTF-8 is taken as Windows-1252, which covers US-ASCII and
 * Latin-1 and gives the curly quotes, dashes and euro signs that Outlook
 * writes into "ISO-8859-1" text their real meaning.
 */
#include <string.h>

#include "common/text.h"

/* Windows-1252 0x80..0x9F; 0 marks the five unassigned bytes. */
static const gunichar cp1252_high[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static gunichar
cp1252_to_unichar(guchar byte)
{
	if (byte >= 0x80 && byte < 0xA0)
		return cp1252_high[byte - 0x80] ? cp1252_high[byte - 0x80] :
		    0xFFFD;
	return byte;
}

char *
text_to_utf8(const char *text, size_t len)
{
	GString *out;

	if (text == NULL)
		return g_strdup("");
	if (g_utf8_validate(text, (gssize)len, NULL) &&
	    memchr(text, '\0', len) == NULL)
		return g_strndup(text, len);

	out = g_string_sized_new(len + len / 4);
	for (size_t i = 0; i < len; i++) {
		guchar c = (guchar)text[i];

		if (c == 0)
			g_string_append_unichar(out, 0xFFFD);
		else if (c < 0x80)
			g_string_append_c(out, (char)c);
		else
			g_string_append_unichar(out, cp1252_to_unichar(c));
	}
	return g_string_free(out, FALSE);
}

char *
text_printable(const char *text, size_t cap)
{
	GString *out;
	char *valid;
	const char *p;

	if (text == NULL)
		return g_strdup("(none)");
	valid = text_to_utf8(text, strlen(text));
	out = g_string_sized_new(MIN(strlen(valid), cap) + 4);

	for (p = valid; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);
		size_t width = (size_t)(g_utf8_next_char(p) - p);

		if (out->len + width > cap) {
			g_string_append(out, "...");
			break;
		}
		if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0) ||
		    c == 0x2028 || c == 0x2029)
			g_string_append_c(out, '?');
		else
			g_string_append_len(out, p, (gssize)width);
	}
	g_free(valid);
	return g_string_free(out, FALSE);
}

char *
text_address_normalize(const char *address)
{
	if (address == NULL)
		return NULL;
	while (*address == '<' || g_ascii_isspace(*address))
		address++;
	char *copy = g_ascii_strdown(address, -1);
	char *end = copy + strlen(copy);
	while (end > copy && (end[-1] == '>' || g_ascii_isspace(end[-1])))
		*--end = '\0';
	return copy;
}

/* Does LINE (not NUL-terminated, LEN bytes) start a quoted reply? */
static gboolean
starts_quote(const char *line, size_t len)
{
	static const char *const markers[] = {
		"-----Original Message-----",
		"-----Ursprüngliche Nachricht-----",
		"________________________________",
		"-------- Forwarded Message --------",
		NULL };

	for (int i = 0; markers[i] != NULL; i++)
		if (len >= strlen(markers[i]) &&
		    strncmp(line, markers[i], strlen(markers[i])) == 0)
			return TRUE;
	return FALSE;
}

/* An attribution line: "On Mon, ... wrote:", "Am ... schrieb ...:". */
static gboolean
is_attribution(const char *line, size_t len)
{
	while (len > 0 && g_ascii_isspace(line[len - 1]))
		len--;
	return len > 0 && line[len - 1] == ':' && len < 300 &&
	    (g_strstr_len(line, (gssize)len, "wrote") != NULL ||
	    g_strstr_len(line, (gssize)len, "schrieb") != NULL ||
	    g_strstr_len(line, (gssize)len, "a écrit") != NULL ||
	    g_strstr_len(line, (gssize)len, "escribió") != NULL);
}

char *
text_own_words(const char *body, size_t cap)
{
	GString *out = g_string_new(NULL);
	const char *p = body ? body : "";

	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		const char *next = eol ? eol + 1 : p + len;

		if ((len == 3 && strncmp(p, "-- ", 3) == 0) ||
		    (len == 4 && strncmp(p, "-- \r", 4) == 0) ||
		    starts_quote(p, len))
			break;
		if (is_attribution(p, len) && *next == '>')
			break;
		if (len == 0 || *p != '>')
			g_string_append_len(out, p, (gssize)len + (eol != NULL));
		p = next;
	}
	/* Trailing blank lines say nothing. */
	while (out->len > 0 && g_ascii_isspace(out->str[out->len - 1]))
		g_string_truncate(out, out->len - 1);
	if (out->len > cap) {
		const char *end = out->str + cap;

		while (end > out->str && (*end & 0xC0) == 0x80)
			end--;
		g_string_truncate(out, (gsize)(end - out->str));
		g_string_append(out, "\n[...]");
	}
	return g_string_free(out, FALSE);
}

char *
text_first_address(const char *text)
{
	GRegex *re;
	GMatchInfo *match = NULL;
	char *address = NULL;

	if (text == NULL)
		return NULL;
	re = g_regex_new("[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+",
	    0, 0, NULL);
	if (g_regex_match(re, text, 0, &match)) {
		char *found = g_match_info_fetch(match, 0);

		address = g_ascii_strdown(found, -1);
		g_free(found);
	}
	g_match_info_free(match);
	g_regex_unref(re);
	return address;
}
