/*
 * prefilter.h: one scan of a text for the literals that ticket patterns
 * start with, to run only the patterns that can match (see prefilter.c).
 */
#ifndef ESC_PREFILTER_H
#define ESC_PREFILTER_H

#include <glib.h>

#include "rules/rules.h"

struct prefilter;

/* The literal every match of the pattern SOURCE starts with, or NULL. */
char *prefilter_literal(const char *source);

/* For PATTERNS (struct pattern *), or NULL when too few of them start
 * with a literal for a prefilter to pay. */
struct prefilter *prefilter_new(const GPtrArray *patterns);
void prefilter_free(struct prefilter **pf);

/* Per pattern, whether it can match TEXT (valid UTF-8, LEN bytes): a new
 * array the caller frees, or NULL to run them all (no prefilter, or the
 * scan ran out of its match budget). */
gboolean *prefilter_candidates(const struct prefilter *pf,
    pcre2_match_context *limits, const char *text, size_t len);

#endif
