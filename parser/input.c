/*
 * input.c: the text GMime is given, made safe for it to parse.
 *
 * GMime builds its whole tree before the walk starts, so the input it
 * gets is bounded too, following its header blocks and boundaries line
 * by line. It parses nesting recursively: the input ends before the
 * NESTING_MAX-th multipart or message type, so a hostile message cannot
 * run it out of stack. It keeps every part and header: the input ends
 * at the DELIMITERS_MAX-th boundary line, and a header block keeps
 * BLOCK_LINES_MAX lines (BLOCK_LINES_MIN once HEADER_LINES_BUDGET went
 * to headers); a 10 MB message of tiny headers otherwise costs 800 MB.
 * Its address parser is quadratic on some malformed lists (60 KB of
 * "a.b," in To: cost 1.7 s), and so is its RFC 2047 decoder, which it
 * runs on Subject, Date, Message-ID and the Content- headers while it
 * reads them (100 KB of "=?c?B?A" cost 2 s each). So each address
 * header keeps at most ADDRESS_HEADER_MAX bytes (ADDRESS_HEADER_MIN
 * once ADDRESS_BUDGET went to such headers), and each decoded header
 * DECODED_HEADER_MAX (DECODED_HEADER_MIN once DECODED_BUDGET went).
 * Nothing here logs or fails: what cannot be read is left empty.
 */
#include <string.h>

#include "parser/input.h"
#include "parser/message.h"

#define NESTING_MAX (2 * MESSAGE_MAX_PARTS)
#define DELIMITERS_MAX (4 * MESSAGE_MAX_PARTS)
#define BLOCK_LINES_MAX 1000
#define BLOCK_LINES_MIN 8
#define HEADER_LINES_BUDGET 5000
#define ADDRESS_HEADER_MAX 2048
#define ADDRESS_HEADER_MIN 64
#define ADDRESS_BUDGET (64 * 1024)
#define DECODED_HEADER_MAX (16 * 1024)
#define DECODED_HEADER_MIN 256
#define DECODED_BUDGET (64 * 1024)

/*
 * Headers GMime parses while it reads a message, by kind: into address
 * lists, or through its decoder. A name ending in '-' is a prefix.
 */
static const char *const address_headers[] = {
	"from", "sender", "reply-to", "to", "cc", "bcc", NULL,
};
static const char *const decoded_headers[] = {
	"subject", "date", "message-id", "content-", NULL,
};

/* What one kind of header may keep. */
struct header_cap {
	const char *const *names;
	size_t max;		/* bytes one header keeps */
	size_t min;		/* the same, once the budget is spent */
	size_t budget;		/* bytes such headers keep in all */
	const char *cut;	/* what a cut is logged as */
};

enum { CAP_ADDRESS, CAP_DECODED, CAP_COUNT };

static const struct header_cap header_caps[CAP_COUNT] = {
	[CAP_ADDRESS] = { address_headers, ADDRESS_HEADER_MAX,
	    ADDRESS_HEADER_MIN, ADDRESS_BUDGET, "address header cut" },
	[CAP_DECODED] = { decoded_headers, DECODED_HEADER_MAX,
	    DECODED_HEADER_MIN, DECODED_BUDGET, "long header cut" },
};

/* Types GMime reads as a message of their own. */
static const char *const message_types[] = {
	"message/rfc822", "message/global", "message/news",
};

/* The input being made ready for GMime, line by line. */
struct input {
	GByteArray *out;
	GHashTable *boundaries;		/* declared so far: is it a digest? */
	unsigned int nesting;		/* multipart and message types seen */
	unsigned int delimiters;	/* boundary lines seen */
	gboolean in_headers;		/* in a header block */
	gboolean message_next;		/* the block opens a message/rfc822 */
	unsigned int block_left;	/* lines the block may still keep */
	unsigned int lines_spent;	/* header lines kept in all */
	const struct header_cap *capped; /* the kind of this header, or NULL */
	size_t capped_left;		/* bytes that header may still keep */
	size_t capped_spent[CAP_COUNT];	/* bytes each kind kept in all */
	const char *cut;		/* why anything was left out */
};

/* Where the header starting at P ends: at a line not folded into it. */
static const char *
header_extent(const char *p, const char *end)
{
	const char *stop;

	for (stop = p; stop + 1 < end; stop++)
		if (stop[0] == '\n' && stop[1] != ' ' && stop[1] != '\t')
			return stop;
	return end;
}

/* Where NEEDLE starts between P and END, ignoring ASCII case, or NULL. */
static const char *
find_in(const char *p, const char *end, const char *needle)
{
	size_t len = strlen(needle);

	for (; p + len <= end; p++)
		if (g_ascii_strncasecmp(p, needle, len) == 0)
			return p;
	return NULL;
}

/*
 * Note the boundary parameter of the multipart type between P and END,
 * and whether its parts are messages unless they say otherwise.
 */
static void
boundary_note(struct input *in, const char *p, const char *end)
{
	gboolean digest = find_in(p, end, "multipart/digest") != NULL;
	const char *value;
	size_t len;

	p = find_in(p, end, "boundary");
	if (p == NULL || g_hash_table_size(in->boundaries) >= NESTING_MAX)
		return;
	for (p += 8; p < end && (*p == ' ' || *p == '\t'); p++)
		;
	if (p == end || *p++ != '=')
		return;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;

	if (p < end && *p == '"') {
		value = ++p;
		while (p < end && *p != '"' && *p != '\n')
			p++;
	} else {
		value = p;
		while (p < end && strchr(" \t\r\n;", *p) == NULL)
			p++;
	}
	len = (size_t)(p - value);
	if (len > 0)
		g_hash_table_insert(in->boundaries, g_strndup(value, len),
		    GINT_TO_POINTER(digest));
}

/* Does the type between P and STOP make GMime read a message? */
static gboolean
type_is_message(const char *p, const char *stop)
{
	const char *type;

	for (size_t i = 0; i < G_N_ELEMENTS(message_types); i++) {
		type = find_in(p, stop, message_types[i]);
		if (type == NULL)
			continue;
		type += strlen(message_types[i]);
		if (type == stop || (!g_ascii_isalnum(*type) && *type != '-'))
			return TRUE;
	}
	return FALSE;
}

/* Where the value of a Content-Type header at LINE starts, or NULL. */
static const char *
content_type_value(const char *line, size_t len)
{
	static const char name[] = "content-type";
	size_t n = sizeof(name) - 1;

	if (len < n || g_ascii_strncasecmp(line, name, n) != 0)
		return NULL;
	while (n < len && (line[n] == ' ' || line[n] == '\t'))
		n++;
	return n < len && line[n] == ':' ? line + n + 1 : NULL;
}

/*
 * A Content-Type at LINE counts against NESTING_MAX wherever it is, even
 * in text that merely looks like headers, so no boundary trick gets
 * GMime nesting past it. In a header block it also tells whether a
 * message follows and gives a multipart's boundary. FALSE at the limit.
 */
static gboolean
content_type_read(struct input *in, const char *line, size_t len,
    const char *end)
{
	const char *value = content_type_value(line, len);
	const char *stop;
	gboolean multipart;

	if (value == NULL)
		return TRUE;
	stop = header_extent(line, end);
	multipart = find_in(value, stop, "multipart") != NULL;
	if (in->in_headers && in->block_left > 0) {
		in->message_next = type_is_message(value, stop);
		if (multipart)
			boundary_note(in, value, stop);
	}
	if (!multipart && find_in(value, stop, "message/") == NULL)
		return TRUE;
	if (++in->nesting < NESTING_MAX)
		return TRUE;
	in->cut = "input cut at the MIME nesting limit";
	return FALSE;
}

/*
 * Is LINE "--boundary" (1) or "--boundary--" (2) of a known boundary?
 * DIGEST_R tells whether that multipart's parts are messages by default.
 */
static int
delimiter_kind(const struct input *in, const char *line, size_t len,
    gboolean *digest_r)
{
	gpointer digest = NULL;
	char *candidate;
	int kind = 0;

	*digest_r = FALSE;
	if (len < 3 || line[0] != '-' || line[1] != '-')
		return 0;
	while (len > 2 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;

	candidate = g_strndup(line + 2, len - 2);
	if (g_hash_table_lookup_extended(in->boundaries, candidate, NULL,
	    &digest))
		kind = 1;
	else if (len > 4 && line[len - 1] == '-' && line[len - 2] == '-') {
		candidate[len - 4] = '\0';
		if (g_hash_table_contains(in->boundaries, candidate))
			kind = 2;
	}
	g_free(candidate);
	*digest_r = GPOINTER_TO_INT(digest);
	return kind;
}

/* A header block starts (HEADERS) or body text does. */
static void
block_start(struct input *in, gboolean headers)
{
	in->in_headers = headers;
	in->message_next = FALSE;
	in->capped = NULL;
	in->block_left = in->lines_spent < HEADER_LINES_BUDGET ?
	    BLOCK_LINES_MAX : BLOCK_LINES_MIN;
}

static void
input_keep(struct input *in, const char *line, size_t len, gboolean eol)
{
	g_byte_array_append(in->out, (const guint8 *)line, (guint)len);
	if (eol)
		g_byte_array_append(in->out, (const guint8 *)"\n", 1);
}

/* Is NAME (LEN bytes) in NAMES? */
static gboolean
header_name_in(const char *name, size_t len, const char *const *names)
{
	size_t n;

	for (; *names != NULL; names++) {
		n = strlen(*names);
		if ((*names)[n - 1] == '-' ? len > n &&
		    g_ascii_strncasecmp(name, *names, n) == 0 :
		    len == n && g_ascii_strncasecmp(name, *names, n) == 0)
			return TRUE;
	}
	return FALSE;
}

/*
 * Is LINE a header GMime parses? Where its ':' is, or -1; *CAP_R gets
 * its kind.
 */
static gssize
capped_colon(const char *line, size_t len, int *cap_r)
{
	size_t name = 0;
	size_t n;

	while (name < len && (g_ascii_isalnum(line[name]) ||
	    line[name] == '-'))
		name++;
	for (n = name; n < len && (line[n] == ' ' || line[n] == '\t'); n++)
		;
	if (name == 0 || n == len || line[n] != ':')
		return -1;

	for (int i = 0; i < CAP_COUNT; i++) {
		if (header_name_in(line, name, header_caps[i].names)) {
			*cap_r = i;
			return (gssize)n;
		}
	}
	return -1;
}

/* How much of a header line to keep: headers GMime parses are cut. */
static size_t
capped_keep(struct input *in, const char *line, size_t len)
{
	gboolean folded = line[0] == ' ' || line[0] == '\t';
	size_t keep = len;
	gssize colon;
	int cap;

	if (folded && in->capped != NULL) {
		/* Whole or not at all: a cut one could be blank. */
		keep = len <= in->capped_left ? len : 0;
	} else if ((colon = capped_colon(line, len, &cap)) >= 0) {
		in->capped = &header_caps[cap];
		in->capped_left = in->capped_spent[cap] < in->capped->budget ?
		    in->capped->max : in->capped->min;
		keep = MIN(len, MAX(in->capped_left, (size_t)colon + 1));
	} else if (!folded)
		in->capped = NULL;

	if (in->capped != NULL) {
		in->capped_left -= MIN(keep, in->capped_left);
		in->capped_spent[in->capped - header_caps] += keep;
		if (keep < len) {
			in->capped_left = 0;
			in->cut = in->capped->cut;
		}
	}
	return keep;
}

/* One line of a header block. */
static void
header_line(struct input *in, const char *line, size_t len, gboolean eol)
{
	size_t keep;
	guint start;

	/* Past its allowance a block loses its lines, folds with them. */
	if (in->block_left == 0) {
		in->cut = "header lines over the limit left out";
		return;
	}
	in->block_left--;
	in->lines_spent++;

	keep = capped_keep(in, line, len);
	if (keep == 0)
		return;
	start = in->out->len;
	input_keep(in, line, keep, eol || keep < len);

	/* GMime ends a value at a NUL; what follows it is still ours. */
	for (guint i = start; i < start + keep; i++)
		if (in->out->data[i] == '\0')
			in->out->data[i] = ' ';
}

/*
 * Take one line (LEN bytes, its line end not counted) into the input;
 * FALSE when the input must end before it.
 */
static gboolean
input_line(struct input *in, const char *line, size_t len,
    const char *end, gboolean eol)
{
	gboolean digest;
	int delimiter = delimiter_kind(in, line, len, &digest);

	if (!content_type_read(in, line, len, end))
		return FALSE;

	/* Part headers follow a boundary; the epilogue follows the last. */
	if (delimiter != 0) {
		if (++in->delimiters >= DELIMITERS_MAX) {
			in->cut = "input cut at the MIME boundary limit";
			return FALSE;
		}
		block_start(in, delimiter == 1);
		in->message_next = delimiter == 1 && digest;
		input_keep(in, line, len, eol);
		return TRUE;
	}
	if (!in->in_headers) {
		input_keep(in, line, len, eol);
		return TRUE;
	}

	/* GMime ends a header block only at an empty line. */
	if (len == 0) {
		block_start(in, in->message_next);
		input_keep(in, line, len, eol);
		return TRUE;
	}
	header_line(in, line, len, eol);
	return TRUE;
}

/*
 * The text GMime is given: line ends made LF, an mbox "From " line
 * dropped, header blocks and parsed headers cut to their allowance,
 * and the whole cut at the nesting or delimiter limit (see the top).
 */
GByteArray *
input_prepare(const char *data, size_t len, const char **cut_r)
{
	struct input in = { .out = g_byte_array_sized_new((guint)len + 1) };
	const char *end = data + len;
	const char *p = data;
	const char *line;
	const char *eol;
	size_t n;

	in.boundaries = g_hash_table_new_full(g_str_hash, g_str_equal,
	    g_free, NULL);
	block_start(&in, TRUE);
	if (len > 5 && strncmp(data, "From ", 5) == 0)
		while (p < end && *p++ != '\n')
			;

	while (p < end) {
		line = p;
		eol = memchr(line, '\n', (size_t)(end - line));
		p = eol != NULL ? eol + 1 : end;
		n = (size_t)((eol != NULL ? eol : end) - line);
		if (eol != NULL && n > 0 && line[n - 1] == '\r')
			n--;
		if (!input_line(&in, line, n, end, eol != NULL))
			break;
	}
	g_hash_table_destroy(in.boundaries);
	*cut_r = in.cut;
	return in.out;
}

