/*
 * yaml.c: libfyaml, wrapped so that every mistake in a file becomes one
 * "FILE:LINE: problem" line in a list, and loading goes on to find the
 * rest. The library's own syntax diagnostics are collected the same way.
 *
 * Text that is not UTF-8 never reaches the library: YAML must be Unicode,
 * and libfyaml 0.7.12 (Debian 12) loops for ever on a directive holding
 * an invalid byte ("%\xd3", found by t/fuzz/fuzz_rules) and takes other
 * invalid bytes into scalars as they are.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/error.h"
#include "common/yaml.h"

static void
collect_syntax_errors(struct yaml_file *file, struct fy_diag *diag)
{
	struct fy_diag_error *err;
	void *iter = NULL;

	while ((err = fy_diag_errors_iterate(diag, &iter)) != NULL) {
		if (err->type < FYET_ERROR)
			continue;
		/* Unlike marks, collected errors count from 1 already. */
		g_ptr_array_add(file->errors, g_strdup_printf("%s:%d:%d: %s",
		    file->path, err->line, err->column, err->msg));
	}
}

/* The line and column (from 1, in bytes) of offset AT in TEXT. */
static void
text_position(const char *text, const char *at, int *line_r, int *col_r)
{
	const char *line = text;

	*line_r = 1;
	for (const char *p = text; p < at; p++) {
		if (*p == '\n') {
			(*line_r)++;
			line = p + 1;
		}
	}
	*col_r = (int)(at - line) + 1;
}

/* Is the LEN bytes of TEXT valid UTF-8 without NUL? If not, say where. */
static gboolean
source_valid(struct yaml_file *file, const char *text, size_t len)
{
	const char *bad;
	int line, col;

	if (g_utf8_validate(text, (gssize)len, &bad))
		return TRUE;
	text_position(text, bad, &line, &col);
	g_ptr_array_add(file->errors, g_strdup_printf("%s:%d:%d: %s",
	    file->path, line, col, *bad == '\0' ? "NUL byte" :
	    "not valid UTF-8"));
	return FALSE;
}

/* Read PATH into FILE->source, checked; FALSE (with an error) if not. */
static gboolean
source_read(struct yaml_file *file, const char *path, size_t *len_r)
{
	GError *error = NULL;
	gsize len;

	if (!g_file_get_contents(path, &file->source, &len, &error)) {
		g_ptr_array_add(file->errors, g_strdup_printf(
		    "%s: cannot read: %s", path, error->message));
		g_error_free(error);
		return FALSE;
	}
	*len_r = len;
	return source_valid(file, file->source, len);
}

struct yaml_file *
yaml_open(const char *path, const char *text, GPtrArray *errors)
{
	struct yaml_file *file = g_new0(struct yaml_file, 1);
	struct fy_diag_cfg diag_cfg;
	struct fy_parse_cfg cfg = { 0 };
	struct fy_diag *diag;
	guint before = errors->len;
	size_t len = 0;
	gboolean ok;

	file->path = g_strdup(path);
	file->errors = errors;

	/* Collect the library's diagnostics instead of printing them. */
	fy_diag_cfg_default(&diag_cfg);
	diag_cfg.fp = NULL;
	diag_cfg.level = FYET_ERROR;
	diag = fy_diag_create(&diag_cfg);
	if (diag != NULL)
		fy_diag_set_collect_errors(diag, true);
	cfg.flags = FYPCF_QUIET;
	cfg.diag = diag;

	if (text == NULL && access(path, R_OK) != 0) {
		g_ptr_array_add(errors, g_strdup_printf("%s: cannot read: %s",
		    path, g_strerror(errno)));
		fy_diag_destroy(diag);
		return file;
	}
	if (text != NULL) {
		len = strlen(text);
		ok = source_valid(file, text, len);
	} else {
		ok = source_read(file, path, &len);
		text = file->source;
	}
	if (!ok) {
		fy_diag_destroy(diag);
		return file;
	}
	file->doc = fy_document_build_from_string(&cfg, text, len);
	if (diag != NULL)
		collect_syntax_errors(file, diag);
	fy_diag_destroy(diag);

	if (file->doc == NULL) {
		if (errors->len == before)
			yaml_error(file, NULL, "not valid YAML");
		return file;
	}
	file->root = fy_document_root(file->doc);
	if (file->root == NULL || !fy_node_is_mapping(file->root)) {
		yaml_error(file, file->root,
		    "expected a mapping of keys at the top level");
		file->root = NULL;
	}
	return file;
}

void
yaml_close(struct yaml_file **file)
{
	if (*file == NULL)
		return;
	if ((*file)->doc != NULL)
		fy_document_destroy((*file)->doc);
	g_free((*file)->source);
	g_free((*file)->path);
	g_free(*file);
	*file = NULL;
}

int
yaml_line(struct fy_node *node)
{
	struct fy_token *token;
	const struct fy_mark *mark;
	void *iter = NULL;

	if (node == NULL)
		return 0;
	switch (fy_node_get_type(node)) {
	case FYNT_SCALAR:
		token = fy_node_get_scalar_token(node);
		mark = token != NULL ? fy_token_start_mark(token) : NULL;
		return mark != NULL ? mark->line + 1 : 0;
	case FYNT_SEQUENCE:
		return yaml_line(fy_node_sequence_iterate(node, &iter));
	case FYNT_MAPPING: {
		struct fy_node_pair *pair = fy_node_mapping_iterate(node,
		    &iter);
		return pair != NULL ? yaml_line(fy_node_pair_key(pair)) : 0;
	}
	}
	return 0;
}

void
yaml_error(struct yaml_file *file, struct fy_node *node, const char *fmt,
    ...)
{
	va_list ap;
	char *what;
	int line = yaml_line(node);

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (line > 0)
		g_ptr_array_add(file->errors, g_strdup_printf("%s:%d: %s",
		    file->path, line, what));
	else
		g_ptr_array_add(file->errors, g_strdup_printf("%s: %s",
		    file->path, what));
	g_free(what);
}

void
yaml_check_keys(struct yaml_file *file, struct fy_node *map,
    const char *const *allowed)
{
	struct fy_node_pair *pair;
	void *iter = NULL;

	if (map == NULL)
		return;
	while ((pair = fy_node_mapping_iterate(map, &iter)) != NULL) {
		struct fy_node *key = fy_node_pair_key(pair);
		const char *name = fy_node_get_scalar0(key);
		gboolean known = FALSE;

		for (size_t i = 0; name != NULL && allowed[i] != NULL; i++)
			if (strcmp(name, allowed[i]) == 0)
				known = TRUE;
		if (!known)
			yaml_error(file, key, "unknown key \"%s\"",
			    name ? name : "?");
	}
}

const char *
yaml_scalar(struct yaml_file *file, struct fy_node *node, const char *what)
{
	if (node == NULL || !fy_node_is_scalar(node) ||
	    fy_node_is_alias(node)) {
		yaml_error(file, node, "%s: expected a single value", what);
		return NULL;
	}
	return fy_node_get_scalar0(node);
}

struct fy_node *
yaml_at(struct fy_node *map, const char *key)
{
	struct fy_node *node = map ? fy_node_mapping_lookup_by_string(map,
	    key, FY_NT) : NULL;

	/* An empty list or mapping has no line of its own: take its key's. */
	if (node != NULL && yaml_line(node) == 0)
		node = fy_node_mapping_lookup_key_by_string(map, key, FY_NT);
	return node != NULL ? node : map;
}

static struct fy_node *
lookup(struct fy_node *map, const char *key)
{
	if (map == NULL)
		return NULL;
	return fy_node_mapping_lookup_by_string(map, key, FY_NT);
}

const char *
yaml_string(struct yaml_file *file, struct fy_node *map, const char *key,
    const char *dflt)
{
	struct fy_node *node = lookup(map, key);
	const char *text;

	if (node == NULL)
		return dflt;
	text = yaml_scalar(file, node, key);
	return text != NULL ? text : dflt;
}

const char *
yaml_string_required(struct yaml_file *file, struct fy_node *map,
    const char *key)
{
	const char *text = yaml_string(file, map, key, NULL);

	if (text == NULL && lookup(map, key) == NULL)
		yaml_error(file, map, "missing key \"%s\"", key);
	return text;
}

long
yaml_integer(struct yaml_file *file, struct fy_node *map, const char *key,
    long dflt, long min, long max)
{
	struct fy_node *node = lookup(map, key);
	const char *text;
	char *end;
	long value;

	if (node == NULL)
		return dflt;
	text = yaml_scalar(file, node, key);
	if (text == NULL)
		return dflt;
	errno = 0;
	value = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || value < min ||
	    value > max) {
		yaml_error(file, node, "%s: expected a whole number from %ld "
		    "to %ld, got \"%s\"", key, min, max, text);
		return dflt;
	}
	return value;
}

static struct fy_node *
lookup_kind(struct yaml_file *file, struct fy_node *map, const char *key,
    enum fy_node_type type, const char *kind)
{
	struct fy_node *node = lookup(map, key);

	if (node == NULL)
		return NULL;
	if (fy_node_get_type(node) != type) {
		yaml_error(file, node, "%s: expected a %s", key, kind);
		return NULL;
	}
	return node;
}

struct fy_node *
yaml_sequence(struct yaml_file *file, struct fy_node *map, const char *key)
{
	return lookup_kind(file, map, key, FYNT_SEQUENCE, "list");
}

struct fy_node *
yaml_mapping(struct yaml_file *file, struct fy_node *map, const char *key)
{
	return lookup_kind(file, map, key, FYNT_MAPPING, "mapping of keys");
}

int
yaml_errors_report(GPtrArray *errors, GError **error)
{
	GString *text;

	if (errors->len == 0)
		return 0;
	text = g_string_new(NULL);
	for (guint i = 0; i < errors->len; i++)
		g_string_append_printf(text, "%s%s", i ? "\n" : "",
		    (const char *)errors->pdata[i]);
	g_set_error_literal(error, ESC_ERROR, ESC_ERROR_CONFIG, text->str);
	g_string_free(text, TRUE);
	return -1;
}
