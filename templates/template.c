/*
 * template.c: the small mustache-like language of template.h, parsed
 * once into a tree of text, variable and section nodes and rendered as
 * often as needed.
 *
 * Limits: no partials, comments, escaping or nested same-name sections;
 * a tag must open and close on one line; sections nest at most
 * TEMPLATE_MAX_DEPTH deep; a file may be at most TEMPLATE_MAX_SIZE
 * bytes. A section tag alone on its line takes the whole line with it,
 * so sections do not leave blank lines behind.
 * Diagnostics read "PATH:LINE: problem"; the first problem ends the
 * load, since a half-checked template is of no use to the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/text.h"
#include "templates/template.h"

#define TEMPLATE_MAX_SIZE (64 * 1024)
#define TEMPLATE_MAX_NAME 64
#define TEMPLATE_MAX_DEPTH 16

enum node_kind { NODE_TEXT, NODE_VARIABLE, NODE_SECTION, NODE_INVERTED };

struct node {
	enum node_kind kind;
	char *text;		/* literal text, or the variable's name */
	GPtrArray *children;	/* sections only */
};

struct template {
	GPtrArray *subject;
	GPtrArray *body;
};

/* Where the parser stands in one segment (the subject or the body). */
struct parser {
	const char *name;	/* file name for diagnostics */
	const char *start;	/* start of the segment */
	const char *pos;
	const char *end;
	int line;
	GError **error;
};

/* The chain of sections open around the tag being read. */
struct open_section {
	const char *name;
	int line;
	const struct open_section *outer;
};

static void
node_free(gpointer data)
{
	struct node *node = data;

	if (node->children != NULL)
		g_ptr_array_free(node->children, TRUE);
	g_free(node->text);
	g_free(node);
}

static GPtrArray *
nodes_new(void)
{
	return g_ptr_array_new_with_free_func(node_free);
}

static struct node *
node_add(GPtrArray *nodes, enum node_kind kind, const char *text,
    size_t len)
{
	struct node *node = g_new0(struct node, 1);

	node->kind = kind;
	node->text = g_strndup(text, len);
	if (kind == NODE_SECTION || kind == NODE_INVERTED)
		node->children = nodes_new();
	g_ptr_array_add(nodes, node);
	return node;
}

static void
parser_fail(struct parser *ps, int line, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
parser_fail(struct parser *ps, int line, const char *fmt, ...)
{
	va_list ap;
	char *problem;

	va_start(ap, fmt);
	problem = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(ps->error, ESC_ERROR, ESC_ERROR_CONFIG, "%s:%d: %s",
	    ps->name, line, problem);
	g_free(problem);
}

/* Move the parser to TO, counting the lines passed. */
static void
parser_advance(struct parser *ps, const char *to)
{
	for (const char *p = ps->pos; p < to; p++)
		if (*p == '\n')
			ps->line++;
	ps->pos = to;
}

static void
text_add(GPtrArray *nodes, const char *from, const char *to)
{
	if (to > from)
		node_add(nodes, NODE_TEXT, from, (size_t)(to - from));
}

static gboolean
only_blanks(const char *from, const char *to)
{
	for (const char *p = from; p < to; p++)
		if (*p != ' ' && *p != '\t')
			return FALSE;
	return TRUE;
}

static gboolean
name_valid(const char *name, size_t len)
{
	if (len == 0 || len > TEMPLATE_MAX_NAME)
		return FALSE;
	for (size_t i = 0; i < len; i++)
		if (!g_ascii_isalnum(name[i]) && name[i] != '_' &&
		    name[i] != '-' && name[i] != '.')
			return FALSE;
	return TRUE;
}

/*
 * A section tag from TAG to CLOSE (past its "}}") is standalone if only
 * blanks share its line. Then the blanks before it are not kept as text
 * and the parser resumes after the line's end. Returns where the text
 * before the tag ends.
 */
static const char *
standalone_trim(struct parser *ps, const char *tag, const char **close)
{
	const char *line_start = tag;
	const char *line_end;

	while (line_start > ps->start && line_start[-1] != '\n')
		line_start--;
	line_end = memchr(*close, '\n', (size_t)(ps->end - *close));
	if (line_end == NULL)
		line_end = ps->end;

	if (line_start < ps->pos || !only_blanks(line_start, tag) ||
	    !only_blanks(*close, line_end))
		return tag;
	*close = line_end < ps->end ? line_end + 1 : line_end;
	return line_start;
}

static int parse_nodes(struct parser *ps, GPtrArray *out,
    const struct open_section *open);

/* Parse the inside of section NAME opened on LINE into NODE. */
static int
parse_section(struct parser *ps, struct node *node, int line,
    const struct open_section *open)
{
	struct open_section here = { node->text, line, open };
	int depth = 1;

	for (const struct open_section *o = open; o != NULL; o = o->outer) {
		if (strcmp(o->name, node->text) == 0) {
			parser_fail(ps, line, "section \"%s\" opened again "
			    "inside itself (line %d)", node->text, o->line);
			return -1;
		}
		if (++depth > TEMPLATE_MAX_DEPTH) {
			parser_fail(ps, line, "sections nested more than %d "
			    "deep", TEMPLATE_MAX_DEPTH);
			return -1;
		}
	}

	switch (parse_nodes(ps, node->children, &here)) {
	case 1:
		return 0;
	case 0:
		parser_fail(ps, line, "section \"%s\" is never closed",
		    node->text);
		return -1;
	default:
		return -1;
	}
}

static int
parse_close(struct parser *ps, const char *name, size_t len, int line,
    const struct open_section *open)
{
	if (open == NULL) {
		parser_fail(ps, line, "{{/%.*s}} closes no open section",
		    (int)len, name);
		return -1;
	}
	if (strlen(open->name) != len || strncmp(open->name, name, len)) {
		parser_fail(ps, line, "{{/%.*s}} found where section "
		    "\"%s\" (line %d) should close", (int)len, name,
		    open->name, open->line);
		return -1;
	}
	return 1;
}

static int
parse_bad_tag(struct parser *ps, const char *inside, size_t len, int line)
{
	char *raw = g_strndup(inside, len);
	char *shown = text_printable(raw, 40);

	parser_fail(ps, line, "bad tag \"{{%s}}\": want {{name}}, "
	    "{{#name}}, {{^name}} or {{/name}}", shown);
	g_free(shown);
	g_free(raw);
	return -1;
}

/*
 * One tag whose inside runs from RAW for RAW_LEN bytes. Returns 1 if it
 * closed the innermost open section, 0 to go on, -1 on error.
 */
static int
parse_tag(struct parser *ps, GPtrArray *out, const char *raw,
    size_t raw_len, int line, const struct open_section *open)
{
	const char *name = raw;
	size_t len = raw_len;
	char sigil = 0;
	struct node *node;

	while (len > 0 && g_ascii_isspace(*name))
		name++, len--;
	while (len > 0 && g_ascii_isspace(name[len - 1]))
		len--;
	if (len > 0 && strchr("#^/", *name) != NULL)
		sigil = *name++, len--;
	while (len > 0 && g_ascii_isspace(*name))
		name++, len--;

	if (!name_valid(name, len))
		return parse_bad_tag(ps, raw, raw_len, line);

	switch (sigil) {
	case '/':
		return parse_close(ps, name, len, line, open);
	case 0:
		node_add(out, NODE_VARIABLE, name, len);
		return 0;
	default:
		node = node_add(out, sigil == '#' ? NODE_SECTION :
		    NODE_INVERTED, name, len);
		return parse_section(ps, node, line, open);
	}
}

static int
lines_between(const char *from, const char *to)
{
	int lines = 0;

	for (const char *p = from; p < to; p++)
		if (*p == '\n')
			lines++;
	return lines;
}

/* The "}}" ending the tag at TAG, looked for on the tag's line only. */
static const char *
tag_end(const struct parser *ps, const char *tag)
{
	const char *eol = memchr(tag, '\n', (size_t)(ps->end - tag));

	if (eol == NULL)
		eol = ps->end;
	return g_strstr_len(tag + 2, eol - tag - 2, "}}");
}

static gboolean
tag_is_section(const char *inside, size_t len)
{
	while (len > 0 && g_ascii_isspace(*inside))
		inside++, len--;
	return len > 0 && strchr("#^/", *inside) != NULL;
}

/*
 * Parse text and tags into OUT until the segment ends (0) or a tag
 * closes the innermost of OPEN (1); -1 on error.
 */
static int
parse_nodes(struct parser *ps, GPtrArray *out,
    const struct open_section *open)
{
	while (ps->pos < ps->end) {
		const char *tag, *inside, *close, *text_end;
		size_t len;
		int line, rc;

		tag = g_strstr_len(ps->pos, ps->end - ps->pos, "{{");
		if (tag == NULL) {
			text_add(out, ps->pos, ps->end);
			parser_advance(ps, ps->end);
			break;
		}
		line = ps->line + lines_between(ps->pos, tag);
		close = tag_end(ps, tag);
		if (close == NULL) {
			parser_fail(ps, line, "\"{{\" without \"}}\" on the "
			    "same line");
			return -1;
		}

		/* Keep the text before the tag, less a standalone's blanks. */
		inside = tag + 2;
		len = (size_t)(close - inside);
		close += 2;
		text_end = tag;
		if (tag_is_section(inside, len))
			text_end = standalone_trim(ps, tag, &close);
		text_add(out, ps->pos, text_end);
		parser_advance(ps, close);

		rc = parse_tag(ps, out, inside, len, line, open);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static GPtrArray *
parse_segment(const char *name, const char *start, const char *end,
    int line, GError **error)
{
	struct parser ps = { name, start, start, end, line, error };
	GPtrArray *nodes = nodes_new();

	if (parse_nodes(&ps, nodes, NULL) != 0) {
		g_ptr_array_free(nodes, TRUE);
		return NULL;
	}
	return nodes;
}

/* A copy of TEXT with CR LF line ends made LF, as editors vary. */
static char *
lf_only(const char *text)
{
	char *copy = g_strdup(text);
	char *to = copy;

	for (const char *from = text; *from != '\0'; from++)
		if (from[0] != '\r' || from[1] != '\n')
			*to++ = *from;
	*to = '\0';
	return copy;
}

static gboolean
check_utf8(const char *name, const char *text, GError **error)
{
	const char *bad;

	if (g_utf8_validate(text, -1, &bad))
		return TRUE;
	g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
	    "%s:%d: not valid UTF-8", name, 1 + lines_between(text, bad));
	return FALSE;
}

/*
 * Split TEXT into the subject line's value and the body; the body
 * starts on line 3. FALSE with ERROR if the shape is wrong.
 */
static gboolean
split_parts(const char *name, const char *text, const char **subject_r,
    const char **subject_end_r, const char **body_r, GError **error)
{
	const char *eol = strchr(text, '\n');
	const char *blank_end;
	const char *subject;

	if (g_ascii_strncasecmp(text, "Subject:", 8) != 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "%s:1: want "
		    "\"Subject: ...\" as the first line", name);
		return FALSE;
	}
	blank_end = eol != NULL ? strchr(eol + 1, '\n') : NULL;
	if (blank_end == NULL)
		blank_end = eol != NULL ? eol + 1 + strlen(eol + 1) : NULL;
	if (eol == NULL || !only_blanks(eol + 1, blank_end)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG, "%s:2: want a "
		    "blank line between the subject and the body", name);
		return FALSE;
	}

	subject = text + 8;
	while (subject < eol && (*subject == ' ' || *subject == '\t'))
		subject++;
	while (eol > subject && (eol[-1] == ' ' || eol[-1] == '\t'))
		eol--;
	*subject_r = subject;
	*subject_end_r = eol;
	*body_r = *blank_end == '\n' ? blank_end + 1 : blank_end;
	return TRUE;
}

struct template *
template_parse(const char *name, const char *text, GError **error)
{
	const char *subject, *subject_end, *body;
	struct template *tpl;
	char *lf;

	if (!check_utf8(name, text, error))
		return NULL;
	lf = lf_only(text);
	if (!split_parts(name, lf, &subject, &subject_end, &body, error)) {
		g_free(lf);
		return NULL;
	}

	tpl = g_new0(struct template, 1);
	tpl->subject = parse_segment(name, subject, subject_end, 1, error);
	if (tpl->subject != NULL)
		tpl->body = parse_segment(name, body, body + strlen(body), 3,
		    error);
	g_free(lf);
	if (tpl->body == NULL)
		template_free(&tpl);
	return tpl;
}

/* The whole of PATH, refusing files over TEMPLATE_MAX_SIZE. */
static char *
read_small_file(const char *path, GError **error)
{
	struct stat st;
	char *data;
	ssize_t got;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int saved = errno;

		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "open(%s): %s",
		    path, g_strerror(saved));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (st.st_size > TEMPLATE_MAX_SIZE) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_LIMIT, "%s: too large: "
		    "%jd bytes, limit %d", path, (intmax_t)st.st_size,
		    TEMPLATE_MAX_SIZE);
		close(fd);
		return NULL;
	}

	/* One byte more than the limit shows a file that grew meanwhile. */
	data = g_malloc(TEMPLATE_MAX_SIZE + 2);
	got = read(fd, data, TEMPLATE_MAX_SIZE + 1);
	if (got < 0 || got > TEMPLATE_MAX_SIZE) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "read(%s): %s",
		    path, got < 0 ? g_strerror(errno) : "file grew too large");
		g_free(data);
		close(fd);
		return NULL;
	}
	close(fd);
	data[got] = '\0';
	if (memchr(data, '\0', (size_t)got) != NULL) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
		    "%s: contains a NUL byte", path);
		g_free(data);
		return NULL;
	}
	return data;
}

struct template *
template_load(const char *path, GError **error)
{
	struct template *tpl;
	char *text = read_small_file(path, error);

	if (text == NULL)
		return NULL;
	tpl = template_parse(path, text, error);
	g_free(text);
	return tpl;
}

void
template_free(struct template **tpl)
{
	if (tpl == NULL || *tpl == NULL)
		return;
	if ((*tpl)->subject != NULL)
		g_ptr_array_free((*tpl)->subject, TRUE);
	if ((*tpl)->body != NULL)
		g_ptr_array_free((*tpl)->body, TRUE);
	g_free(*tpl);
	*tpl = NULL;
}

static const char *
variable(GHashTable *vars, const char *name)
{
	const char *value = vars != NULL ? g_hash_table_lookup(vars, name) :
	    NULL;

	return value != NULL ? value : "";
}

static void
render_nodes(const GPtrArray *nodes, GHashTable *vars, GString *out)
{
	for (guint i = 0; i < nodes->len; i++) {
		const struct node *node = g_ptr_array_index(nodes, i);
		const char *value;

		switch (node->kind) {
		case NODE_TEXT:
			g_string_append(out, node->text);
			break;
		case NODE_VARIABLE:
			g_string_append(out, variable(vars, node->text));
			break;
		case NODE_SECTION:
		case NODE_INVERTED:
			value = variable(vars, node->text);
			if ((*value != '\0') == (node->kind == NODE_SECTION))
				render_nodes(node->children, vars, out);
			break;
		}
	}
}

/* The subject as one line: each line break (CR LF, CR or LF) a space. */
static char *
one_line(GString *text)
{
	GString *out = g_string_sized_new(text->len);

	for (const char *p = text->str; *p != '\0'; p++) {
		if (*p == '\r' && p[1] == '\n')
			p++;
		g_string_append_c(out, *p == '\r' || *p == '\n' ? ' ' : *p);
	}
	return g_strstrip(g_string_free(out, FALSE));
}

void
template_render(const struct template *tpl, GHashTable *vars,
    char **subject_r, char **body_r)
{
	GString *subject = g_string_new(NULL);
	GString *body = g_string_new(NULL);

	render_nodes(tpl->subject, vars, subject);
	render_nodes(tpl->body, vars, body);
	*subject_r = one_line(subject);
	*body_r = g_string_free(body, FALSE);
	g_string_free(subject, TRUE);
}
