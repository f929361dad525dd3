/*
 * header.c: RFC 2047 decoding done the way mail clients do it.
 *
 * GMime 3.2.13, as Debian 12 ships it, drops the second of two adjacent
 * base64 encoded-words and stops base64 at the first '=', so escalator
 * takes raw header values from GMime and decodes them here. Encoded-words
 * are found anywhere, glued to text or to each other; the white space
 * between adjacent words goes, and adjacent words in one charset are
 * joined before conversion, so a character or a base64 quantum split
 * across two words survives. Charset labels are read as the WHATWG
 * encoding standard reads them where mail lies about them, and bytes
 * that do not convert are taken as UTF-8 where valid and Windows-1252
 * elsewhere. Nothing here fails or logs: every function returns text.
 *
 * Limits: an encoded-word holds no white space (RFC 2047 forbids it, and
 * allowing it would let a stray "=?" swallow the rest of a subject),
 * except a fold that some mailers put inside one, and only when the word
 * then closes; a charset label longer than CHARSET_MAX bytes is not a
 * charset. Each byte is looked at a bounded number of times, so a line
 * of would-be words costs time linear in its length.
 */
#include <errno.h>
#include <string.h>

#include "common/text.h"
#include "parser/header.h"

#define CHARSET_MAX 40
#define CHARSET_UTF8 "utf-8"
#define CHARSET_1252 "windows-1252"

/*
 * Labels that do not mean what iconv would make of them. Latin-1 and
 * ASCII labels hide Windows-1252 (curly quotes, dashes, the euro); the
 * CJK labels hide the Microsoft supersets that senders actually use.
 */
static const struct {
	const char *label;
	const char *name;
} charset_aliases[] = {
	{ "us-ascii", CHARSET_1252 },
	{ "ascii", CHARSET_1252 },
	{ "ansi_x3.4-1968", CHARSET_1252 },
	{ "iso-8859-1", CHARSET_1252 },
	{ "iso8859-1", CHARSET_1252 },
	{ "iso88591", CHARSET_1252 },
	{ "iso_8859-1", CHARSET_1252 },
	{ "iso_8859-1:1987", CHARSET_1252 },
	{ "iso-ir-100", CHARSET_1252 },
	{ "csisolatin1", CHARSET_1252 },
	{ "latin1", CHARSET_1252 },
	{ "l1", CHARSET_1252 },
	{ "cp819", CHARSET_1252 },
	{ "ibm819", CHARSET_1252 },
	{ "cp1252", CHARSET_1252 },
	{ "x-cp1252", CHARSET_1252 },
	{ "windows-1252", CHARSET_1252 },
	{ "utf-8", CHARSET_UTF8 },
	{ "utf8", CHARSET_UTF8 },
	{ "unicode-1-1-utf-8", CHARSET_UTF8 },
	{ "iso-8859-9", "windows-1254" },
	{ "iso8859-9", "windows-1254" },
	{ "latin5", "windows-1254" },
	{ "iso-8859-11", "windows-874" },
	{ "tis-620", "windows-874" },
	{ "gb2312", "gb18030" },
	{ "csgb2312", "gb18030" },
	{ "gbk", "gb18030" },
	{ "x-gbk", "gb18030" },
	{ "ks_c_5601-1987", "cp949" },
	{ "euc-kr", "cp949" },
	{ "shift_jis", "cp932" },
	{ "shift-jis", "cp932" },
	{ "sjis", "cp932" },
	{ "x-sjis", "cp932" },
	{ "windows-31j", "cp932" },
	{ "big5", "big5-hkscs" },
};

/* One encoded-word as found in the text, not yet decoded. */
struct encoded_word {
	char charset[CHARSET_MAX + 1];
	char encoding;			/* 'B' or 'Q' */
	const char *text;
	size_t len;
	const char *end;		/* just past the closing "?=" */
};

/* Adjacent encoded-words in one charset, decoded once the run ends. */
struct word_run {
	char charset[CHARSET_MAX + 1];
	gboolean open;
	GString *base64;		/* B text not yet decoded */
	GByteArray *bytes;		/* decoded, not yet converted */
};

/*
 * The charset LABEL means, lowercased, without quotes or an RFC 2231
 * language; NULL when there is no usable label. BUF holds the result
 * when it is not an alias.
 */
static const char *
charset_canonical(const char *label, char *buf, size_t size)
{
	size_t n = 0;

	if (label == NULL)
		return NULL;
	while (*label == '"' || g_ascii_isspace(*label))
		label++;
	for (; *label != '\0' && *label != '*' && *label != '"' &&
	    !g_ascii_isspace(*label); label++) {
		if (n + 1 >= size)
			return NULL;
		buf[n++] = g_ascii_tolower(*label);
	}
	buf[n] = '\0';
	if (n == 0)
		return NULL;

	for (size_t i = 0; i < G_N_ELEMENTS(charset_aliases); i++)
		if (strcmp(buf, charset_aliases[i].label) == 0)
			return charset_aliases[i].name;
	return buf;
}

/* UTF-8 runs kept as they are; any other byte as Windows-1252. */
static char *
utf8_lenient(const char *data, size_t len)
{
	GString *out = g_string_sized_new(len + 1);
	const char *p = data;
	const char *end = data + len;

	while (p < end) {
		const char *stop;
		char *bad;

		g_utf8_validate(p, end - p, &stop);
		g_string_append_len(out, p, stop - p);
		if (stop == end)
			break;

		/*
		 * The run of bytes that start no UTF-8 character goes to
		 * text_to_utf8 at once; it maps NUL to U+FFFD as well.
		 */
		for (p = stop + 1; p < end && (guchar)*p >= 0x80 &&
		    (gint32)g_utf8_get_char_validated(p, end - p) < 0; p++)
			;
		bad = text_to_utf8(stop, (size_t)(p - stop));
		g_string_append(out, bad);
		g_free(bad);
	}
	return g_string_free(out, FALSE);
}

/*
 * Convert with iconv; a byte the charset rejects becomes U+FFFD and the
 * rest is still converted. FALSE if iconv does not know NAME.
 */
static gboolean
charset_iconv(const char *name, const char *data, size_t len, GString *out)
{
	GIConv cd = g_iconv_open("UTF-8", name);
	gchar *in = (gchar *)data;
	gsize left = len;
	char buf[1024];
	gchar *o;
	gsize room;
	gsize done;

	if (cd == (GIConv)-1)
		return FALSE;

	while (left > 0) {
		o = buf;
		room = sizeof(buf);
		done = g_iconv(cd, &in, &left, &o, &room);

		g_string_append_len(out, buf, o - buf);
		if (done != (gsize)-1 || errno == E2BIG)
			continue;
		g_string_append(out, "\xEF\xBF\xBD");
		in++;
		left--;
	}

	/* Stateful charsets (ISO-2022-JP) may still hold a shift. */
	o = buf;
	room = sizeof(buf);
	g_iconv(cd, NULL, NULL, &o, &room);
	g_string_append_len(out, buf, o - buf);
	g_iconv_close(cd);
	return TRUE;
}

char *
header_charset_to_utf8(const char *charset, const char *data, size_t len)
{
	char buf[CHARSET_MAX + 1];
	const char *name = charset_canonical(charset, buf, sizeof(buf));
	GString *converted;
	char *text;

	if (data == NULL)
		return g_strdup("");

	/* text_to_utf8 keeps the UTF-8 that a us-ascii label often hides. */
	if (name != NULL && strcmp(name, CHARSET_1252) == 0)
		return text_to_utf8(data, len);
	if (name == NULL || strcmp(name, CHARSET_UTF8) == 0)
		return utf8_lenient(data, len);

	converted = g_string_sized_new(len * 2 + 1);
	if (!charset_iconv(name, data, len, converted)) {
		g_string_free(converted, TRUE);
		return utf8_lenient(data, len);
	}

	/* iconv output is UTF-8 but may hold NUL, which must not leak. */
	text = utf8_lenient(converted->str, converted->len);
	g_string_free(converted, TRUE);
	return text;
}

static int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Emit the whole bytes held by a partial quantum of COUNT symbols. */
static void
base64_flush(GByteArray *out, guint32 bits, int count)
{
	guint8 bytes[2];

	if (count == 2) {
		bytes[0] = (guint8)(bits >> 4);
		g_byte_array_append(out, bytes, 1);
	} else if (count == 3) {
		bytes[0] = (guint8)(bits >> 10);
		bytes[1] = (guint8)(bits >> 2);
		g_byte_array_append(out, bytes, 2);
	}
}

GBytes *
header_base64_decode(const char *text, size_t len)
{
	GByteArray *out = g_byte_array_sized_new(len / 4 * 3 + 3);
	guint32 bits = 0;
	int count = 0;

	for (size_t i = 0; i < len && text != NULL; i++) {
		int value = base64_value(text[i]);
		guint8 bytes[3];

		/* Padding ends a chunk; another chunk may follow it. */
		if (text[i] == '=') {
			base64_flush(out, bits, count);
			bits = 0;
			count = 0;
			continue;
		}
		if (value < 0)
			continue;

		bits = bits << 6 | (guint32)value;
		if (++count < 4)
			continue;
		bytes[0] = (guint8)(bits >> 16);
		bytes[1] = (guint8)(bits >> 8);
		bytes[2] = (guint8)bits;
		g_byte_array_append(out, bytes, 3);
		bits = 0;
		count = 0;
	}
	base64_flush(out, bits, count);
	return g_byte_array_free_to_bytes(out);
}

/* RFC 2047 "Q": '_' is a space, "=XX" a byte, anything else itself. */
static void
q_decode(const char *text, size_t len, GByteArray *out)
{
	for (size_t i = 0; i < len; i++) {
		guint8 c = (guint8)text[i];

		if (c == '_')
			c = ' ';
		else if (c == '=' && i + 2 < len &&
		    g_ascii_isxdigit(text[i + 1]) &&
		    g_ascii_isxdigit(text[i + 2])) {
			c = (guint8)(g_ascii_xdigit_value(text[i + 1]) << 4 |
			    g_ascii_xdigit_value(text[i + 2]));
			i += 2;
		}
		g_byte_array_append(out, &c, 1);
	}
}

/*
 * Recognise "=?charset?B|Q?text?=" at P, which starts with "=?". When
 * the text runs into white space or the end before its "?=", *DEAD_R
 * is set there: no word that starts before it can close either.
 */
static gboolean
word_parse(const char *p, struct encoded_word *word, const char **dead_r)
{
	const char *q = p + 2;
	size_t n = 0;

	while (*q != '\0' && *q != '?' && !g_ascii_isspace(*q)) {
		if (n == CHARSET_MAX)
			return FALSE;
		word->charset[n++] = *q++;
	}
	word->charset[n] = '\0';
	if (n == 0 || q[0] != '?' || q[1] == '\0' || q[2] != '?')
		return FALSE;
	word->encoding = g_ascii_toupper(q[1]);
	if (word->encoding != 'B' && word->encoding != 'Q')
		return FALSE;

	/* The text runs to the first "?=", which no encoding can hold. */
	word->text = q + 3;
	for (q = word->text; q[0] != '?' || q[1] != '='; q++) {
		if (*q == '\0' || g_ascii_isspace(*q)) {
			*dead_r = q;
			return FALSE;
		}
	}
	word->len = (size_t)(q - word->text);
	word->end = q + 2;
	return TRUE;
}

static gboolean
charset_same(const char *a, const char *b)
{
	char buf_a[CHARSET_MAX + 1];
	char buf_b[CHARSET_MAX + 1];
	const char *name_a = charset_canonical(a, buf_a, sizeof(buf_a));
	const char *name_b = charset_canonical(b, buf_b, sizeof(buf_b));

	if (name_a == NULL || name_b == NULL)
		return name_a == name_b;
	return strcmp(name_a, name_b) == 0;
}

static void
run_decode_base64(struct word_run *run)
{
	GBytes *bytes;
	gsize len;
	const guint8 *data;

	if (run->base64->len == 0)
		return;
	bytes = header_base64_decode(run->base64->str, run->base64->len);
	data = g_bytes_get_data(bytes, &len);
	g_byte_array_append(run->bytes, data, (guint)len);
	g_bytes_unref(bytes);
	g_string_truncate(run->base64, 0);
}

/* Convert what the run holds and append it to OUT. */
static void
run_flush(struct word_run *run, GString *out)
{
	char *text;

	if (!run->open)
		return;
	run_decode_base64(run);
	text = header_charset_to_utf8(run->charset,
	    (const char *)run->bytes->data, run->bytes->len);
	g_string_append(out, text);
	g_free(text);
	g_byte_array_set_size(run->bytes, 0);
	run->open = FALSE;
}

/*
 * B text is gathered and decoded as one stream, so a quantum split
 * between words still decodes; the lenient decoder restarts after each
 * word's padding.
 */
static void
run_add(struct word_run *run, const struct encoded_word *word,
    GString *out)
{
	if (run->open && !charset_same(run->charset, word->charset))
		run_flush(run, out);
	if (!run->open) {
		g_strlcpy(run->charset, word->charset, sizeof(run->charset));
		run->open = TRUE;
	}

	if (word->encoding == 'B') {
		g_string_append_len(run->base64, word->text,
		    (gssize)word->len);
		return;
	}
	run_decode_base64(run);
	q_decode(word->text, word->len, run->bytes);
}

static gboolean
is_blank(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t')
			return FALSE;
	return TRUE;
}

static void
literal_append(GString *out, const char *text, size_t len)
{
	char *utf8;

	if (len == 0)
		return;
	utf8 = utf8_lenient(text, len);
	g_string_append(out, utf8);
	g_free(utf8);
}

/* The length of the fold (CR? LF, then blanks) at P, or 0. */
static size_t
fold_len(const char *p)
{
	size_t n = *p == '\r' ? 1 : 0;

	if (p[n] != '\n' || (p[n + 1] != ' ' && p[n + 1] != '\t'))
		return 0;
	for (n++; p[n] == ' ' || p[n] == '\t'; n++)
		;
	return n;
}

/*
 * Does the encoded-word text that a fold at P interrupts go on to its
 * "?=" across folds only? What a look ahead found holds for every fold
 * before where it stopped, so it is kept in *SEEN (where it stopped)
 * and *CLOSES: each byte is looked at a bounded number of times.
 */
static gboolean
fold_inside_word(const char *p, const char **seen, gboolean *closes)
{
	size_t fold;

	if (p < *seen)
		return *closes;
	while (*p != '\0' && (p[0] != '?' || p[1] != '=')) {
		if ((fold = fold_len(p)) > 0)
			p += fold;
		else if (g_ascii_isspace(*p))
			break;
		else
			p++;
	}
	*seen = p;
	*closes = *p == '?';
	return *closes;
}

/* Is P just past "=?charset?B?" or "=?charset?Q?", START the line's? */
static gboolean
word_prefix_before(const char *start, const char *p)
{
	const char *q = p;

	if (q - start < 6 || q[-1] != '?' || q[-3] != '?' ||
	    strchr("BbQq", q[-2]) == NULL)
		return FALSE;
	for (q -= 4; q > start && *q != '?'; q--)
		if (g_ascii_isspace(*q) || *q == '=')
			return FALSE;
	return q > start && q[-1] == '=' && q < p - 4;
}

/*
 * Line breaks go; the white space that follows them stays, except in a
 * fold inside an encoded-word: some mailers fold in the middle of one,
 * and the word, rejoined, is still well formed.
 */
static char *
header_unfold(const char *raw)
{
	GString *out = g_string_sized_new(strlen(raw) + 1);
	const char *word = NULL;	/* text of the open encoded-word */
	const char *seen = raw;
	gboolean closes = FALSE;
	size_t fold;

	for (const char *p = raw; *p != '\0'; p++) {
		fold = fold_len(p);
		if (fold > 0 && word != NULL &&
		    fold_inside_word(p, &seen, &closes)) {
			p += fold - 1;
			continue;
		}
		if (*p == '\r' || *p == '\n')
			continue;
		g_string_append_c(out, *p);

		/* Track the encoded-word the output is in, if any. */
		if (g_ascii_isspace(*p) || (word != NULL && *p == '=' &&
		    p > word && p[-1] == '?'))
			word = NULL;
		else if (word == NULL && *p == '?' &&
		    word_prefix_before(out->str, out->str + out->len))
			word = p + 1;
	}
	return g_string_free(out, FALSE);
}

/* Controls and no-break spaces become spaces; the ends are trimmed. */
static char *
header_clean(const char *text)
{
	GString *out = g_string_sized_new(strlen(text) + 1);

	for (const char *p = text; *p != '\0'; p = g_utf8_next_char(p)) {
		gunichar c = g_utf8_get_char(p);

		if (c < 0x20 || (c >= 0x7F && c <= 0xA0))
			g_string_append_c(out, ' ');
		else
			g_string_append_unichar(out, c);
	}
	g_strstrip(out->str);
	out->len = strlen(out->str);
	return g_string_free(out, FALSE);
}

char *
header_decode(const char *raw)
{
	char *text = header_unfold(raw != NULL ? raw : "");
	GString *out = g_string_sized_new(strlen(text) + 1);
	struct word_run run = { .base64 = g_string_new(NULL),
	    .bytes = g_byte_array_new() };
	const char *p = text;
	const char *literal = text;
	const char *dead = text;
	struct encoded_word word;
	char *clean;

	while (*p != '\0') {
		/* Past DEAD's start no word can close before DEAD: skipping
		 * there keeps a line of "=?x?B?a" linear, not quadratic. */
		if (p < dead || p[0] != '=' || p[1] != '?' ||
		    !word_parse(p, &word, &dead)) {
			p++;
			continue;
		}

		/* White space alone between two encoded-words goes. */
		if (!run.open || !is_blank(literal, p)) {
			run_flush(&run, out);
			literal_append(out, literal, (size_t)(p - literal));
		}
		run_add(&run, &word, out);
		p = literal = word.end;
	}
	run_flush(&run, out);
	literal_append(out, literal, (size_t)(p - literal));

	clean = header_clean(out->str);
	g_string_free(out, TRUE);
	g_string_free(run.base64, TRUE);
	g_byte_array_unref(run.bytes);
	g_free(text);
	return clean;
}
