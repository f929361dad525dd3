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
