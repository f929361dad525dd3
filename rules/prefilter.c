/*
 * prefilter.c: which ticket patterns can match a text, found in one scan.
 *
 * Rules may hold hundreds of ticket patterns, most of them a vendor's
 * fixed prefix and a number ("\bVENDOR17[ -]?(\d{5,9})"). Running each
 * over the whole text scans it hundreds of times; bench/ scenario 5
 * spent a fifth of the daemon's time in those scans. A pattern that
 * starts with a plain literal can only match where that literal occurs,
 * so one scan for all the literals (a single PCRE2 alternation) says
 * which patterns to run. Patterns without such a literal always run, so
 * the tickets found are the same as without the prefilter.
 *
 * The literals are tried longest first: where several match at one
 * place, the scan reports the longest, and the others there are its
 * prefixes, marked with it. After each hit the scan moves on by one
 * character, so no place is skipped.
 */
#include <string.h>

#include "rules/prefilter.h"

/* Fewer patterns with a literal than this: the separate scans are as
 * quick, and the prefilter is not built. */
#define PREFILTER_MIN 8
/* Shorter literals would rule out too little. */
#define LITERAL_MIN 3

struct prefilter {
	pcre2_code *code;	/* "LIT(*MARK:0)|LIT(*MARK:1)|...", longest first */
	guint n_patterns;
	int *literal_of;	/* per pattern: its literal, or -1 */
	GPtrArray *literals;	/* char *, in the order of the alternation */
	GArray **prefixes;	/* per literal: the literals that start it */
};

/* Groups whose text holds no pattern of its own: "(?:", "(?=", "(?!",
 * "(?>", "(?|", "(?<=", "(?<!", named groups. Anything else after "(?"
 * or "(*" (options, comments, callouts, verbs, conditions, recursion)
 * may hide a '(' or '|', or change how the literal matches. */
static gboolean
group_opening_plain(const char *p)
{
	if (p[1] != '?')
		return p[1] != '*';
	if (strchr(":=!>|'", p[2]) != NULL && p[2] != '\0')
		return TRUE;
	if (p[2] == 'P' && p[3] == '<')
		return TRUE;
	return p[2] == '<' && (p[3] == '=' || p[3] == '!' ||
	    g_ascii_isalpha(p[3]) || p[3] == '_');
}

/* Skip the class starting at P ('['); NULL if it is one we do not read
 * (a POSIX class, quoting) or it does not end. */
static const char *
class_end(const char *p)
{
	p += p[1] == '^' ? 2 : 1;
	if (*p == ']')
		p++;
	for (; *p != '\0' && *p != ']'; p++) {
		if (*p == '[' && p[1] == ':')
			return NULL;
		if (*p == '\\' && (p[1] == 'Q' || p[1] == 'E' || p[1] == '\0'))
			return NULL;
		if (*p == '\\')
			p++;
	}
	return *p == ']' ? p : NULL;
}

/*
 * Whether SOURCE is plain enough to read its leading literal: no '|'
 * outside a group (else a match may lack it), and none of the
 * constructs that may hide a bracket or a bar or act on the literal
 * (quoting, comments, options, callouts, verbs, POSIX classes).
 */
static gboolean
pattern_plain(const char *source)
{
	int depth = 0;

	for (const char *p = source; *p != '\0'; p++) {
		if (*p == '\\') {
			if (p[1] == 'Q' || p[1] == 'E' || p[1] == '\0')
				return FALSE;
			p++;
		} else if (*p == '[') {
			if ((p = class_end(p)) == NULL)
				return FALSE;
		} else if (*p == '(') {
			if (!group_opening_plain(p))
				return FALSE;
			depth++;
		} else if (*p == ')') {
			depth--;
		} else if (*p == '|' && depth == 0) {
			return FALSE;
		}
	}
	return depth == 0;
}

static gboolean
literal_char(char c)
{
	return g_ascii_isalnum(c) || c == '_' || c == '-' || c == ':' ||
	    c == '#';
}

/*
 * The literal every match of SOURCE starts with, after any \b: letters,
 * digits and _-:# up to the first other character. A quantifier after
 * the run makes its last character optional, so that one is left out.
 * NULL when the pattern is not plain (above) or there is no literal of
 * at least LITERAL_MIN characters.
 */
char *
prefilter_literal(const char *source)
{
	const char *p = source, *start;
	size_t len;

	if (!pattern_plain(source))
		return NULL;
	while (g_str_has_prefix(p, "\\b"))
		p += 2;
	for (start = p; literal_char(*p); p++)
		;
	len = (size_t)(p - start);
	if (len > 0 && (*p == '?' || *p == '*' || *p == '+' || *p == '{'))
		len--;
	return len >= LITERAL_MIN ? g_strndup(start, len) : NULL;
}

static gint
longest_first(gconstpointer a, gconstpointer b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

	return la < lb ? 1 : la > lb ? -1 : strcmp(*(char *const *)a,
	    *(char *const *)b);
}

/*
 * The distinct literals of PATTERNS into PF, longest first, and for each
 * pattern the place of its literal there (or -1). Gives how many
 * patterns have a literal.
 */
static guint
collect_literals(struct prefilter *pf, const GPtrArray *patterns)
{
	GHashTable *place = g_hash_table_new(g_str_hash, g_str_equal);
	char **of_pattern = g_new0(char *, patterns->len);
	guint with_literal = 0;

	pf->literals = g_ptr_array_new_with_free_func(g_free);
	for (guint i = 0; i < patterns->len; i++) {
		const struct pattern *pat = patterns->pdata[i];

		if (pat->code == NULL ||
		    (of_pattern[i] = prefilter_literal(pat->source)) == NULL)
			continue;
		with_literal++;
		if (g_hash_table_add(place, of_pattern[i]))
			g_ptr_array_add(pf->literals, g_strdup(of_pattern[i]));
	}
	g_ptr_array_sort(pf->literals, longest_first);

	g_hash_table_remove_all(place);
	for (guint k = 0; k < pf->literals->len; k++)
		g_hash_table_insert(place, pf->literals->pdata[k],
		    GUINT_TO_POINTER(k));
	pf->literal_of = g_new(int, patterns->len);
	for (guint i = 0; i < patterns->len; i++) {
		pf->literal_of[i] = of_pattern[i] == NULL ? -1 :
		    GPOINTER_TO_INT(g_hash_table_lookup(place, of_pattern[i]));
		g_free(of_pattern[i]);
	}
	g_free(of_pattern);
	g_hash_table_destroy(place);
	return with_literal;
}

static pcre2_code *
compile_alternation(const GPtrArray *literals)
{
	GString *source = g_string_new(NULL);
	pcre2_code *code;
	PCRE2_SIZE offset;
	int err;

	for (guint i = 0; i < literals->len; i++)
		g_string_append_printf(source, "%s%s(*MARK:%u)",
		    i > 0 ? "|" : "", (const char *)literals->pdata[i], i);
	code = pcre2_compile((PCRE2_SPTR)source->str, source->len,
	    PCRE2_UTF | PCRE2_NO_AUTO_CAPTURE, &err, &offset, NULL);
	g_string_free(source, TRUE);
	if (code != NULL && g_getenv("ESCALATOR_NO_JIT") == NULL)
		pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
	return code;
}

/* For each literal, the shorter literals that are its prefixes. */
static GArray **
find_prefixes(const GPtrArray *literals)
{
	GArray **prefixes = g_new0(GArray *, literals->len);

	for (guint i = 0; i < literals->len; i++) {
		const char *longer = literals->pdata[i];

		prefixes[i] = g_array_new(FALSE, FALSE, sizeof(guint));
		for (guint j = i + 1; j < literals->len; j++) {
			const char *shorter = literals->pdata[j];

			if (strlen(shorter) < strlen(longer) &&
			    g_str_has_prefix(longer, shorter))
				g_array_append_val(prefixes[i], j);
		}
	}
	return prefixes;
}

struct prefilter *
prefilter_new(const GPtrArray *patterns)
{
	struct prefilter *pf = g_new0(struct prefilter, 1);

	pf->n_patterns = patterns->len;
	if (collect_literals(pf, patterns) >= PREFILTER_MIN)
		pf->code = compile_alternation(pf->literals);
	if (pf->code == NULL) {
		prefilter_free(&pf);
		return NULL;
	}
	pf->prefixes = find_prefixes(pf->literals);
	return pf;
}

void
prefilter_free(struct prefilter **pf)
{
	if (*pf == NULL)
		return;
	for (guint i = 0; (*pf)->prefixes != NULL &&
	    i < (*pf)->literals->len; i++)
		g_array_free((*pf)->prefixes[i], TRUE);
	g_free((*pf)->prefixes);
	g_ptr_array_free((*pf)->literals, TRUE);
	g_free((*pf)->literal_of);
	pcre2_code_free((*pf)->code);
	g_free(*pf);
	*pf = NULL;
}

/* Mark literal K and the literals that are its prefixes as found. */
static void
mark_found(const struct prefilter *pf, gboolean *found, guint k)
{
	found[k] = TRUE;
	for (guint i = 0; i < pf->prefixes[k]->len; i++)
		found[g_array_index(pf->prefixes[k], guint, i)] = TRUE;
}

/* Which literals occur in TEXT; FALSE if the scan failed. */
static gboolean
scan_literals(const struct prefilter *pf, pcre2_match_context *limits,
    const char *text, size_t len, gboolean *found)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	size_t offset = 0;
	int rc = PCRE2_ERROR_NOMATCH;

	while (offset <= len && (rc = pcre2_match(pf->code, (PCRE2_SPTR)text,
	    len, offset, PCRE2_NO_UTF_CHECK, md, limits)) > 0) {
		const char *mark = (const char *)pcre2_get_mark(md);

		mark_found(pf, found, (guint)g_ascii_strtoull(mark, NULL, 10));
		/* On by one character, not past the match: another literal
		 * may start inside this one. */
		offset = pcre2_get_ovector_pointer(md)[0] + 1;
		while (offset < len && ((guchar)text[offset] & 0xC0) == 0x80)
			offset++;
	}
	pcre2_match_data_free(md);
	return offset > len || rc == PCRE2_ERROR_NOMATCH;
}

gboolean *
prefilter_candidates(const struct prefilter *pf, pcre2_match_context *limits,
    const char *text, size_t len)
{
	gboolean *found, *run;

	if (pf == NULL)
		return NULL;
	found = g_new0(gboolean, pf->literals->len);
	if (!scan_literals(pf, limits, text, len, found)) {
		g_free(found);
		return NULL;	/* the budget ran out: run them all */
	}
	run = g_new(gboolean, pf->n_patterns);
	for (guint i = 0; i < pf->n_patterns; i++)
		run[i] = pf->literal_of[i] < 0 || found[pf->literal_of[i]];
	g_free(found);
	return run;
}
