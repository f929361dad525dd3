/*
 * yaml.h: reading escalator's YAML files (rules, config) with libfyaml,
 * collecting every problem as "FILE:LINE: what was expected" instead of
 * stopping at the first.
 *
 * libfyaml keeps each node's position; single-quoted YAML strings keep
 * backslashes as written, so regular expressions read as PCRE2 sees
 * them. Lines are 1-based in messages.
 */
#ifndef ESC_YAML_H
#define ESC_YAML_H

#include <libfyaml.h>
#include <glib.h>

struct yaml_file {
	char *path;
	struct fy_document *doc;
	struct fy_node *root;	/* a mapping, or NULL if the file is bad */
	GPtrArray *errors;	/* char *, shared with the caller */
	char *source;		/* the file's text, which doc points into */
};

/*
 * Parse PATH (or TEXT, if not NULL, named PATH in messages). Syntax
 * errors, and a top level that is not a mapping, are appended to
 * ERRORS and leave ->root NULL. Never returns NULL.
 */
struct yaml_file *yaml_open(const char *path, const char *text,
    GPtrArray *errors);
void yaml_close(struct yaml_file **file);

/* 1-based line of NODE, or 0 if unknown. */
int yaml_line(struct fy_node *node);

/* Append "PATH:LINE: message" for NODE (line left out if unknown). */
void yaml_error(struct yaml_file *file, struct fy_node *node,
    const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* The value of KEY in MAP (its key, if the value has no line of its
 * own), or MAP itself if absent: where to point an error. */
struct fy_node *yaml_at(struct fy_node *map, const char *key);

/* Report keys of MAP not in ALLOWED (NULL-terminated) as errors. */
void yaml_check_keys(struct yaml_file *file, struct fy_node *map,
    const char *const *allowed);

/*
 * Typed lookups of KEY in MAP. Missing keys give DEFAULT (or NULL);
 * a present key of the wrong kind is an error and gives the default.
 * Strings are NUL-terminated and owned by the document.
 */
const char *yaml_string(struct yaml_file *file, struct fy_node *map,
    const char *key, const char *dflt);
const char *yaml_string_required(struct yaml_file *file,
    struct fy_node *map, const char *key);
long yaml_integer(struct yaml_file *file, struct fy_node *map,
    const char *key, long dflt, long min, long max);
/* A sequence or mapping value, checked for kind; NULL if missing. */
struct fy_node *yaml_sequence(struct yaml_file *file, struct fy_node *map,
    const char *key);
struct fy_node *yaml_mapping(struct yaml_file *file, struct fy_node *map,
    const char *key);
/* The text of a scalar NODE, or NULL (with an error) if not a scalar. */
const char *yaml_scalar(struct yaml_file *file, struct fy_node *node,
    const char *what);

/* If ERRORS is not empty, set ERROR to all of them, one a line, and
 * return -1; otherwise return 0. */
int yaml_errors_report(GPtrArray *errors, GError **error);

#endif
