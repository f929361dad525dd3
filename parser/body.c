/*
 * body.c: the readable text of one MIME leaf part.
 *
 * The transfer encoding is undone here, from the raw content GMime kept,
 * not by GMime: the base64 decoder of GMime 3.2.13 stops at the first
 * '=', and base64 glued from padded chunks is common in the wild. Base64
 * and quoted-printable are decoded leniently (junk skipped, broken
 * escapes kept as text), the charset is converted by the rule header.c
 * applies to headers, line ends become LF, controls go, no-break spaces
 * become spaces and format=flowed paragraphs are joined. HTML becomes
 * text through a small scanner, not a parser: tags go, script, style,
 * title and head go with their content, block ends become line breaks
 * and character entities are decoded.
 *
 * Limits: at most BODY_MAX_RAW bytes of a part's encoded content are
 * read. The scanner knows the entities mail uses (numeric, Latin-1,
 * typography), not all of HTML5's named ones; unknown ones stay as
 * written.
 */
#include <string.h>

#include "common/text.h"
#include "parser/body.h"
#include "parser/header.h"

#define BODY_MAX_RAW (8 * 1024 * 1024)
#define ENTITY_NAME_MAX 32

/* HTML 4 names of U+00A0 to U+00FF, in code point order. */
static const char *const entity_latin1[96] = {
	"nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect",
	"uml", "copy", "ordf", "laquo", "not", "shy", "reg", "macr",
	"deg", "plusmn", "sup2", "sup3", "acute", "micro", "para", "middot",
	"cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34",
	"iquest", "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring",
	"AElig", "Ccedil", "Egrave", "Eacute", "Ecirc", "Euml", "Igrave",
	"Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
	"Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute",
	"Ucirc", "Uuml", "Yacute", "THORN", "szlig", "agrave", "aacute",
	"acirc", "atilde", "auml", "aring", "aelig", "ccedil", "egrave",
	"eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth",
	"ntilde", "ograve", "oacute", "ocirc", "otilde", "ouml", "divide",
	"oslash", "ugrave", "uacute", "ucirc", "uuml", "yacute", "thorn",
	"yuml",
};

static const struct {
	const char *name;
	gunichar c;
} entity_other[] = {
	{ "quot", 0x22 }, { "amp", 0x26 }, { "apos", 0x27 }, { "lt", 0x3C },
	{ "gt", 0x3E }, { "OElig", 0x152 }, { "oelig", 0x153 },
	{ "Scaron", 0x160 }, { "scaron", 0x161 }, { "Yuml", 0x178 },
	{ "fnof", 0x192 }, { "circ", 0x2C6 }, { "tilde", 0x2DC },
	{ "ensp", 0x2002 }, { "emsp", 0x2003 }, { "thinsp", 0x2009 },
	{ "zwnj", 0x200C }, { "zwj", 0x200D }, { "lrm", 0x200E },
	{ "rlm", 0x200F }, { "ndash", 0x2013 }, { "mdash", 0x2014 },
	{ "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "sbquo", 0x201A },
	{ "ldquo", 0x201C }, { "rdquo", 0x201D }, { "bdquo", 0x201E },
	{ "dagger", 0x2020 }, { "Dagger", 0x2021 }, { "bull", 0x2022 },
	{ "hellip", 0x2026 }, { "permil", 0x2030 }, { "prime", 0x2032 },
	{ "Prime", 0x2033 }, { "lsaquo", 0x2039 }, { "rsaquo", 0x203A },
	{ "euro", 0x20AC }, { "trade", 0x2122 }, { "larr", 0x2190 },
	{ "uarr", 0x2191 }, { "rarr", 0x2192 }, { "darr", 0x2193 },
	{ "harr", 0x2194 }, { "minus", 0x2212 },
};

/* Entities HTML still honours without the closing ';'. */
static const char *const entity_legacy[] = {
	"amp", "lt", "gt", "quot", "nbsp",
};

/* Elements dropped with everything up to their end tag. */
static const char *const html_hidden[] = {
	"script", "style", "title", "head",
};

/* Elements whose start and end break the line. */
static const char *const html_block[] = {
	"p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
	"blockquote", "pre", "table", "ul", "ol", "dl", "dt", "dd", "hr",
	"section", "article", "header", "footer", "address", "center",
	"form", "body",
};

/*
 * Where the HTML scanner is. A search that once found no end (of a
 * quoted value, of a hidden element) is not repeated further on: it
 * would fail again, and repeating it would make the scan quadratic.
 */
struct html {
	GString *out;
	int pre;			/* inside <pre>: keep white space */
	gboolean no_quote[2];		/* no '"', no '\'' from here on */
	gboolean no_end[G_N_ELEMENTS(html_hidden)];
};

static gboolean
word_in(const char *word, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(word, list[i]) == 0)
			return TRUE;
	return FALSE;
}

/* The encoded content as GMime kept it, at most BODY_MAX_RAW bytes. */
static GByteArray *
part_read_raw(GMimePart *part, GMimeContentEncoding *encoding_r)
{
	GByteArray *raw = g_byte_array_new();
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	GMimeStream *stream;
	char buf[4096];
	gssize n;

	*encoding_r = GMIME_CONTENT_ENCODING_DEFAULT;
	if (content == NULL)
		return raw;
	stream = g_mime_data_wrapper_get_stream(content);
	*encoding_r = g_mime_data_wrapper_get_encoding(content);
	if (stream == NULL)
		return raw;

	g_mime_stream_reset(stream);
	while (raw->len < BODY_MAX_RAW) {
		n = g_mime_stream_read(stream, buf,
		    MIN(sizeof(buf), BODY_MAX_RAW - raw->len));
		if (n <= 0)
			break;
		g_byte_array_append(raw, (const guint8 *)buf, (guint)n);
	}
	g_mime_stream_reset(stream);
	return raw;
}

/* Blanks from I on: the index of the line end or end they lead to. */
static size_t
skip_blanks(const guint8 *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
		i++;
	return i;
}

/*
 * Quoted-printable, leniently: a broken escape is kept as text, '='
 * before a line end (even after blanks) joins lines, and blanks at a
 * line end are padding the encoder should not have left.
 */
static GByteArray *
qp_decode(const guint8 *s, size_t len)
{
	GByteArray *out = g_byte_array_sized_new((guint)len + 1);
	size_t i = 0;
	size_t j;
	guint8 c;

	while (i < len) {
		c = s[i];
		if (c == '=' && i + 2 < len && g_ascii_isxdigit(s[i + 1]) &&
		    g_ascii_isxdigit(s[i + 2])) {
			c = (guint8)(g_ascii_xdigit_value(s[i + 1]) << 4 |
			    g_ascii_xdigit_value(s[i + 2]));
			g_byte_array_append(out, &c, 1);
			i += 3;
			continue;
		}

		if (c == '=') {
			j = skip_blanks(s, len, i + 1);
			if (j < len && s[j] != '\n')
				g_byte_array_append(out, &c, 1);
			i = j < len && s[j] != '\n' ? i + 1 : j + 1;
			continue;
		}

		/* Each run of blanks is read once, or this turns quadratic. */
		if (c == ' ' || c == '\t') {
			j = skip_blanks(s, len, i);
			if (j < len && s[j] != '\n')
				g_byte_array_append(out, s + i, (guint)(j - i));
			i = j;
			continue;
		}
		g_byte_array_append(out, &c, 1);
		i++;
	}
	return out;
}

/* Bytes from P on that are printable ASCII, kept as they are. */
static size_t
printable_ascii_run(const char *p)
{
	const unsigned char *q = (const unsigned char *)p;

	while (*q >= 0x20 && *q < 0x7F)
		q++;
	return (size_t)((const char *)q - p);
}

/*
 * CRLF and CR become LF; other controls go; no-break spaces are spaces.
 * Runs of printable ASCII, most of any text, are copied whole: decoding
 * and re-encoding them one character at a time took a seventh of the
 * milter's time on plain 10 KB complaints (bench/run, scenario 2).
 */
static char *
text_clean(const char *text)
{
	GString *out = g_string_sized_new(strlen(text) + 1);
	const char *p = text;

	while (*p != '\0') {
		size_t run = printable_ascii_run(p);
		gunichar c;

		if (run > 0) {
			g_string_append_len(out, p, (gssize)run);
			p += run;
			continue;
		}
		c = g_utf8_get_char(p);
		p = g_utf8_next_char(p);
		if (c == '\r' && *p == '\n')
			continue;	/* the LF makes the break */
		if (c == '\r' || c == '\n')
			g_string_append_c(out, '\n');
		else if (c == '\t')
			g_string_append_c(out, '\t');
		else if (c == 0xA0)
			g_string_append_c(out, ' ');
		else if (c >= 0x20 && (c < 0x7F || c > 0x9F))
			g_string_append_unichar(out, c);
	}
	return g_string_free(out, FALSE);
}

/*
 * RFC 3676: a line ending in a space continues on the next. Only the
 * writer's own lines are joined; quoted lines pass as they are.
 */
static char *
text_unflow(const char *text, gboolean delsp)
{
	GString *out = g_string_sized_new(strlen(text) + 1);
	char **lines = g_strsplit(text, "\n", -1);
	gboolean joining = FALSE;

	for (size_t i = 0; lines[i] != NULL; i++) {
		const char *line = lines[i];
		size_t len;
		gboolean flowed;

		if (i > 0 && !joining)
			g_string_append_c(out, '\n');
		if (line[0] == '>') {
			if (joining)
				g_string_append_c(out, '\n');
			g_string_append(out, line);
			joining = FALSE;
			continue;
		}

		if (line[0] == ' ')
			line++;
		len = strlen(line);
		flowed = len > 0 && line[len - 1] == ' ' &&
		    strcmp(line, "-- ") != 0;
		if (flowed && delsp)
			len--;
		g_string_append_len(out, line, (gssize)len);
		joining = flowed;
	}
	g_strfreev(lines);
	return g_string_free(out, FALSE);
}

static gboolean
part_is_flowed(GMimeObject *object, gboolean *delsp_r)
{
	GMimeContentType *type = g_mime_object_get_content_type(object);
	const char *format;
	const char *delsp;

	*delsp_r = FALSE;
	if (type == NULL || !g_mime_content_type_is_type(type, "text", "plain"))
		return FALSE;
	format = g_mime_content_type_get_parameter(type, "format");
	delsp = g_mime_content_type_get_parameter(type, "delsp");
	*delsp_r = delsp != NULL && g_ascii_strcasecmp(delsp, "yes") == 0;
	return format != NULL && g_ascii_strcasecmp(format, "flowed") == 0;
}

/* Undo the transfer encoding of RAW; takes RAW. */
static GByteArray *
transfer_decode(GByteArray *raw, GMimeContentEncoding encoding)
{
	GByteArray *decoded;
	GBytes *bytes;

	switch (encoding) {
	case GMIME_CONTENT_ENCODING_BASE64:
		bytes = header_base64_decode((const char *)raw->data,
		    raw->len);
		g_byte_array_unref(raw);
		return g_bytes_unref_to_array(bytes);
	case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
		decoded = qp_decode(raw->data, raw->len);
		g_byte_array_unref(raw);
		return decoded;
	default:
		/* XXX: uuencoded text is read as it stands; no mail
		 * client in use writes it, so none was worth the code. */
		return raw;
	}
}

char *
body_part_text(GMimePart *part)
{
	GMimeContentEncoding encoding;
	GByteArray *bytes;
	const char *charset;
	char *converted;
	char *text;
	char *flowed;
	gboolean delsp;

	if (part == NULL)
		return g_strdup("");
	bytes = part_read_raw(part, &encoding);
	bytes = transfer_decode(bytes, encoding);

	charset = g_mime_object_get_content_type_parameter(GMIME_OBJECT(part),
	    "charset");
	converted = header_charset_to_utf8(charset, (const char *)bytes->data,
	    bytes->len);
	g_byte_array_unref(bytes);
	text = text_clean(converted);
	g_free(converted);

	if (!part_is_flowed(GMIME_OBJECT(part), &delsp))
		return text;
	flowed = text_unflow(text, delsp);
	g_free(text);
	return flowed;
}

/* Spaces before a line break are noise. */
static void
out_trim_spaces(GString *out)
{
	while (out->len > 0 && out->str[out->len - 1] == ' ')
		g_string_truncate(out, out->len - 1);
}

static void
out_space(GString *out)
{
	if (out->len > 0 && out->str[out->len - 1] != ' ' &&
	    out->str[out->len - 1] != '\n')
		g_string_append_c(out, ' ');
}

static void
out_break(GString *out, gboolean always)
{
	out_trim_spaces(out);
	if (always || (out->len > 0 && out->str[out->len - 1] != '\n'))
		g_string_append_c(out, '\n');
}

/* Code point C as the text of an entity; C1 means Windows-1252. */
static void
out_codepoint(GString *out, gunichar c)
{
	char byte = (char)c;
	char *one;

	if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		c = 0xFFFD;
	if (c >= 0x80 && c <= 0x9F) {
		one = text_to_utf8(&byte, 1);
		g_string_append(out, one);
		g_free(one);
	} else if (c == 0xA0 || c < 0x20 || c == 0x7F)
		g_string_append_c(out, ' ');
	else
		g_string_append_unichar(out, c);
}

/* "&#NNN;" or "&#xHH;" at P (just past "&#"); NULL if not one. */
static const char *
entity_numeric(const char *p, GString *out)
{
	gboolean hex = *p == 'x' || *p == 'X';
	const char *start = hex ? p + 1 : p;
	const char *q = start;
	gunichar c = 0;

	while (hex ? g_ascii_isxdigit(*q) : g_ascii_isdigit(*q)) {
		/* Eight digits already pass U+10FFFF; more are noise. */
		if (q - start < 8)
			c = c * (hex ? 16 : 10) + (gunichar)
			    (hex ? g_ascii_xdigit_value(*q) :
			    g_ascii_digit_value(*q));
		q++;
	}
	if (q == start)
		return NULL;
	out_codepoint(out, q - start > 8 ? 0x110000 : c);
	return *q == ';' ? q + 1 : q;
}

static gboolean
entity_lookup(const char *name, gunichar *c_r)
{
	for (size_t i = 0; i < G_N_ELEMENTS(entity_latin1); i++)
		if (strcmp(name, entity_latin1[i]) == 0) {
			*c_r = 0xA0 + (gunichar)i;
			return TRUE;
		}
	for (size_t i = 0; i < G_N_ELEMENTS(entity_other); i++)
		if (strcmp(name, entity_other[i].name) == 0) {
			*c_r = entity_other[i].c;
			return TRUE;
		}
	return FALSE;
}

/* An entity at P ('&'); what is not one stays as text. */
static const char *
html_entity(const char *p, GString *out)
{
	char name[ENTITY_NAME_MAX];
	const char *q = p + 1;
	const char *next;
	size_t n = 0;
	gunichar c;

	if (*q == '#' && (next = entity_numeric(q + 1, out)) != NULL)
		return next;

	while (g_ascii_isalnum(*q) && n + 1 < sizeof(name))
		name[n++] = *q++;
	name[n] = '\0';
	if (*q == ';' && entity_lookup(name, &c)) {
		out_codepoint(out, c);
		return q + 1;
	}

	/* Without ';', HTML takes a legacy name even glued to text. */
	for (size_t i = 0; i < G_N_ELEMENTS(entity_legacy); i++) {
		n = strlen(entity_legacy[i]);
		if (strncmp(p + 1, entity_legacy[i], n) == 0 &&
		    entity_lookup(entity_legacy[i], &c)) {
			out_codepoint(out, c);
			return p + 1 + n;
		}
	}
	g_string_append_c(out, '&');
	return p + 1;
}

/* Where NEEDLE next starts in P, ignoring ASCII case; NULL if nowhere. */
static const char *
find_ci(const char *p, const char *needle)
{
	size_t len = strlen(needle);

	for (; *p != '\0'; p++)
		if (g_ascii_strncasecmp(p, needle, len) == 0)
			return p;
	return NULL;
}

/* The closing QUOTE of a value starting at P, or NULL. */
static const char *
quote_end(struct html *html, const char *p, char quote)
{
	gboolean *none = &html->no_quote[quote == '"' ? 0 : 1];
	const char *close;

	if (*none)
		return NULL;
	close = strchr(p, quote);
	*none = close == NULL;
	return close;
}

/* Past the '>' closing the tag whose attributes start at P. */
static const char *
tag_end(struct html *html, const char *p)
{
	const char *close;

	for (; *p != '\0' && *p != '>'; p++) {
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;

		/* A quoted value may hold '>'; an unclosed quote may not. */
		if ((*p == '"' || *p == '\'') &&
		    (close = quote_end(html, p + 1, *p)) != NULL)
			p = close;
		else
			p--;
	}
	return *p == '>' ? p + 1 : p;
}

/* Past a hidden element's end tag, or past its start tag if none. */
static const char *
skip_hidden(struct html *html, const char *after_tag, size_t which)
{
	char *close;
	const char *end;

	if (html->no_end[which])
		return after_tag;
	close = g_strconcat("</", html_hidden[which], NULL);
	end = find_ci(after_tag, close);
	g_free(close);
	html->no_end[which] = end == NULL;
	return end != NULL ? tag_end(html, end) : after_tag;
}

/* Markup at P ('<'): comments and tags go; block tags break lines. */
static const char *
html_markup(struct html *html, const char *p)
{
	GString *out = html->out;
	char name[16];
	gboolean closing = p[1] == '/';
	const char *q = p + (closing ? 2 : 1);
	const char *end;
	size_t n = 0;

	if (strncmp(p, "<!--", 4) == 0) {
		end = strstr(p + 4, "-->");
		return end != NULL ? end + 3 : p + strlen(p);
	}
	if (p[1] == '!' || p[1] == '?')
		return tag_end(html, p + 2);
	if (!g_ascii_isalpha(*q)) {
		g_string_append_c(out, '<');
		return p + 1;
	}

	while ((g_ascii_isalnum(*q) || *q == ':' || *q == '-') &&
	    n + 1 < sizeof(name))
		name[n++] = g_ascii_tolower(*q++);
	name[n] = '\0';
	end = tag_end(html, q);

	for (size_t i = 0; i < G_N_ELEMENTS(html_hidden) && !closing; i++)
		if (strcmp(name, html_hidden[i]) == 0)
			return skip_hidden(html, end, i);
	if (strcmp(name, "pre") == 0)
		html->pre = closing ? MAX(html->pre - 1, 0) : html->pre + 1;
	if (strcmp(name, "br") == 0)
		out_break(out, TRUE);
	else if (word_in(name, html_block, G_N_ELEMENTS(html_block)))
		out_break(out, FALSE);
	else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0)
		out_space(out);
	return end;
}

/* At most one blank line in a row, no blank ends. */
static char *
text_tidy(const char *text)
{
	GString *out = g_string_sized_new(strlen(text) + 1);
	int newlines = 0;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n' && ++newlines > 2)
			continue;
		if (*p != '\n')
			newlines = 0;
		g_string_append_c(out, *p);
	}
	g_strstrip(out->str);
	out->len = strlen(out->str);
	return g_string_free(out, FALSE);
}

char *
body_html_to_text(const char *source)
{
	struct html html = { .pre = 0 };
	const char *p = source;
	char *text;

	if (source == NULL)
		return g_strdup("");
	html.out = g_string_sized_new(strlen(source) / 2 + 1);

	while (*p != '\0') {
		if (*p == '<')
			p = html_markup(&html, p);
		else if (*p == '&')
			p = html_entity(p, html.out);
		else if (html.pre == 0 && strchr(" \t\r\n\f", *p) != NULL) {
			out_space(html.out);
			p++;
		} else
			g_string_append_c(html.out, *p++);
	}

	text = text_tidy(html.out->str);
	g_string_free(html.out, TRUE);
	return text;
}
