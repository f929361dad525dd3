/*
 * check_prefilter.c: rules/prefilter.c, the one scan that picks which
 * ticket patterns to run: which literal it reads from a pattern (none
 * from one it cannot read safely), and hostile patterns and texts.
 * The prefilter must never change which tickets are found: for every
 * pattern that matches a text, prefilter_candidates() must say it may
 * run. Checked through the full classification (rules loaded from YAML,
 * with and without the prefilter) and, for random patterns, directly
 * at the prefilter API with patterns compiled as the loader does.
 */
#include <string.h>
#include <stdio.h>

#include "parser/message.h"
#include "rules/classify.h"
#include "rules/prefilter.h"
#include "t/testutil.h"

/* Eight patterns with a literal, so that the prefilter is built. */
static const char *const fillers[] = {
	"\\bFILLA-(\\d{3})", "\\bFILLB-(\\d{3})", "\\bFILLC-(\\d{3})",
	"\\bFILLD-(\\d{3})", "\\bFILLE-(\\d{3})", "\\bFILLF-(\\d{3})",
	"\\bFILLG-(\\d{3})", "\\bFILLH-(\\d{3})",
};

static void
yaml_dq(GString *out, const char *s)
{
	g_string_append_c(out, '"');
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			g_string_append_printf(out, "\\%c", *s);
		else if (*s == '\n')
			g_string_append(out, "\\n");
		else
			g_string_append_c(out, *s);
	}
	g_string_append_c(out, '"');
}

/* The test rules with PATTERNS (NULL-terminated) and the fillers as
 * the first ticket patterns. */
static struct rules *
rules_with(const char *const *patterns)
{
	char *path = test_path("t/rules/test-rules.yaml");
	char *templates = test_path("templates");
	char *dir = test_tmpdir(), *text, *out, *at;
	GString *rules_text = g_string_new(NULL);
	GError *error = NULL;
	struct rules *r;

	ck_assert(g_file_get_contents(path, &text, NULL, NULL));
	at = strstr(text, "\ntickets:\n");
	ck_assert_ptr_nonnull(at);
	g_string_append_len(rules_text, text, at - text);
	g_string_append(rules_text, "\ntickets:\n");
	for (const char *const *p = patterns; *p != NULL; p++) {
		g_string_append(rules_text, "  - pattern: ");
		yaml_dq(rules_text, *p);
		g_string_append_c(rules_text, '\n');
	}
	for (size_t i = 0; i < G_N_ELEMENTS(fillers); i++) {
		g_string_append(rules_text, "  - pattern: ");
		yaml_dq(rules_text, fillers[i]);
		g_string_append_c(rules_text, '\n');
	}
	g_string_append(rules_text, at + strlen("\ntickets:\n"));
	out = g_build_filename(dir, "rules.yaml", NULL);
	ck_assert(g_file_set_contents(out, rules_text->str, -1, NULL));
	r = rules_load(out, templates, &error);
	ck_assert_msg(r != NULL, "%s", error ? error->message : "");
	test_tmpdir_remove(dir);
	g_string_free(rules_text, TRUE);
	g_free(out);
	g_free(text);
	g_free(path);
	g_free(templates);
	return r;
}

static char *
tickets_of(struct rules *r, const char *body)
{
	struct message msg = { 0 };
	struct classification cls;
	char *refs[] = { NULL }, *joined;

	msg.subject = "Complaint";
	msg.body = (char *)body;
	msg.references = refs;
	classify_message(r, &msg, "x@example.net", &cls);
	g_ptr_array_add(cls.tickets, NULL);
	joined = g_strjoinv(",", (char **)cls.tickets->pdata);
	g_ptr_array_remove_index(cls.tickets, cls.tickets->len - 1);
	classification_clear(&cls);
	return joined;
}

static const struct {
	const char *pattern;
	const char *literal;
} literal_cases[] = {
	{ "\\bVENDOR17[ -]?(?:case|ticket)[ #:]*(\\d{5,9})\\b", "VENDOR17" },
	{ "TKT-(\\d+)", "TKT-" },
	{ "VENDOR1?x", "VENDOR" },
	{ "ABCD{2}", "ABC" },
	{ "\\bAB(\\d+)", NULL },
	{ "(?i)acme-(\\d+)", NULL },
	{ "abc|def", NULL },
	{ "abc[|]def", "abc" },
	{ "(abc|def)x", NULL },
	{ "\\d{6}", NULL },
	{ "\\[IANA #(\\d{4,10})\\]", NULL },
	{ "\\QVENDOR\\E", NULL },
	/* Constructs that may hide a '|' or act on the literal. */
	{ "ABCQ(?#(x)|XYZ-(\\d+)", NULL },
	{ "ABCQ[[:alpha:](]|XYZ-(\\d+)", NULL },
	{ "ABCQ[\\Q]\\E(]|XYZ-(\\d+)", NULL },
	{ "ABCQ(*MARK:()|XYZ-(\\d+)", NULL },
	{ "ABCQ(?C'(')|XYZ-(\\d+)", NULL },
	{ "ABCQ(?x)#(\n|XYZ-(\\d+)", NULL },
	{ "ABCD\\E?-(\\d+)", NULL },
	{ "ABCD(?#x)?-(\\d+)", NULL },
	{ "ABCD(?i)x", NULL },
	{ "VENDOR7(?<n>\\d+)(?:a|b)", "VENDOR7" },
};

START_TEST(prefilter_finds_the_leading_literal)
{
	char *got = prefilter_literal(literal_cases[_i].pattern);

	ck_assert_msg(g_strcmp0(got, literal_cases[_i].literal) == 0,
	    "%s: got %s, want %s", literal_cases[_i].pattern, got,
	    literal_cases[_i].literal);
	g_free(got);
}
END_TEST

static const struct {
	const char *body;
	const char *tickets;
} prefilter_texts[] = {
	{ "", "" },
	{ "no vendor here", "" },
	{ "VENDOR12 12345 and VENDOR1-22222", "22222,12345" },
	{ "VENDOR1 VENDOR12-33333", "33333" },
	/* Only VENDOR1 matches, where the scan sees VENDOR12. */
	{ "VENDOR123456", "23456" },
	{ "x VENDOR3 44444", "44444" },
	{ "\xc3\xa9VENDOR4 55555\xc3\xa9 ACME-1234 vendor5 66666", "1234" },
	{ "ends with VENDOR9", "" },
	{ "VENDOR11-77777 VENDOR11-88888 Ticket 2026-00042", "77777,88888,"
	    "2026-00042" },
};

START_TEST(prefilter_keeps_the_same_tickets)
{
	struct rules *vendor;
	const char *patterns[14];
	char *with, *without;

	/* Vendor patterns, some the prefix of others, and a caseless one
	 * without a literal. */
	for (int i = 0; i < 12; i++)
		patterns[i] = g_strdup_printf("\\bVENDOR%d[ -]?(\\d{5})\\b",
		    i + 1);
	patterns[12] = g_strdup("(?i)\\bacme-(\\d{4})");
	patterns[13] = NULL;
	vendor = rules_with(patterns);
	for (int i = 0; i < 13; i++)
		g_free((char *)patterns[i]);

	ck_assert_ptr_nonnull(vendor->ticket_prefilter);
	with = tickets_of(vendor, prefilter_texts[_i].body);
	prefilter_free(&vendor->ticket_prefilter);
	without = tickets_of(vendor, prefilter_texts[_i].body);

	ck_assert_str_eq(with, without);
	ck_assert_msg(strcmp(with, prefilter_texts[_i].tickets) == 0,
	    "\"%s\": got \"%s\", want \"%s\"", prefilter_texts[_i].body,
	    with, prefilter_texts[_i].tickets);
	g_free(with);
	g_free(without);
	rules_unref(&vendor);
}
END_TEST

/*
 * One pattern and a text it matches (the ticket it gives without the
 * prefilter). The first group are parse tricks that make the pattern
 * an alternation, or make the "literal" optional, where the prefilter's
 * reading of the source does not see it.
 */
static const struct {
	const char *pattern;
	const char *text;
} hostile[] = {
	/* A top-level '|' hidden from a naive reading of the source. */
	{ "ABCQ(?#(x)|XYZ-(\\d+)", "see XYZ-101" },
	{ "ABCQ[[:alpha:](]|XYZ-(\\d+)", "see XYZ-102" },
	{ "ABCQ[\\Q]\\E(]|XYZ-(\\d+)", "see XYZ-103" },
	{ "ABCQ(*MARK:()|XYZ-(\\d+)", "see XYZ-104" },
	{ "ABCQ(?C'(')|XYZ-(\\d+)", "see XYZ-105" },
	{ "ABCQ(?x)#(\n|XYZ-(\\d+)", "see XYZ-106" },
	/* The quantifier applies to the literal's last character. */
	{ "ABCD\\E?-(\\d+)", "see ABC-107" },
	{ "ABCD(?#x)?-(\\d+)", "see ABC-108" },
	{ "ABCD\\Q\\E?-(\\d+)", "see ABC-109" },
	/* The things the brief lists; these should hold. */
	{ "\\bAB\\-CD(\\d+)", "AB-CD110" },
	{ "ABCE(?=x)(\\w+)", "ABCEx111" },
	{ "ABCF\\d(\\d+)", "ABCF1112" },
	{ "ABCG{0}H(\\d+)", "ABCH113" },
	{ "ABCI{0,}J(\\d+)", "ABCJ114" },
	{ "ABCK(?#comment)(\\d+)", "ABCK115" },
	{ "AB#C(\\d+)", "AB#C116" },
	{ "ABCL(?x) M (\\d+)", "ABCLM117" },
	{ "ABCN(?i)o(\\d+)", "ABCNO118" },
	{ "\\x41BCP(\\d+)", "ABCP119" },
	{ "ABCR[|]S(\\d+)", "ABCR|S120" },
	{ "ABCT[|(]U(\\d+)", "ABCT(U121" },
	{ "\\x{e9}ABCV(\\d+)", "\xc3\xa9" "ABCV122" },
	{ "ABCW(\\d+)", "\xe2\x82\xac\xc3\xa9" "ABCW123\xf0\x9f\x98\x80" },
	{ "\\b\\bABCY-(\\d+)", "ABCY-124" },
	{ "ABC:Z(\\d+)", "ABC:Z125" },
	{ "ABCa+(\\d+)", "ABCa126" },
	{ "ABCb*?(\\d+)", "ABC127" },
	{ "ABCc{1,3}+(\\d+)", "ABCccc128" },
	{ "ABCd(?R)?(\\d+)", "ABCd129" },
	{ "ABCe\\K(\\d+)", "ABCe130" },
	{ "(*UTF)ABCf(\\d+)", "ABCf131" },
	{ "ABCg(*SKIP)(\\d+)", "ABCg132" },
	{ "ABCh(?|(\\d+)|x)", "ABCh133" },
	{ "ABCi(?<n>\\d+)", "ABCi134" },
	{ "ABC-j{0}(\\d+)", "ABC-135" },
	{ "ABC##(\\d+)", "ABC##136" },
};

START_TEST(hostile_pattern_keeps_the_same_tickets)
{
	const char *patterns[] = { hostile[_i].pattern, NULL };
	struct rules *r = rules_with(patterns);
	char *with, *without;

	ck_assert_ptr_nonnull(r->ticket_prefilter);
	with = tickets_of(r, hostile[_i].text);
	prefilter_free(&r->ticket_prefilter);
	without = tickets_of(r, hostile[_i].text);
	ck_assert_msg(*without != '\0', "pattern /%s/ text \"%s\": the "
	    "case is wrong, no ticket even without the prefilter",
	    hostile[_i].pattern, hostile[_i].text);
	ck_assert_msg(strcmp(with, without) == 0, "pattern /%s/ (literal "
	    "%s) text \"%s\": with the prefilter \"%s\", without \"%s\"",
	    hostile[_i].pattern, prefilter_literal(hostile[_i].pattern),
	    hostile[_i].text, with, without);
	g_free(with);
	g_free(without);
	rules_unref(&r);
}
END_TEST

/* Literals that overlap, that are substrings but not prefixes of one
 * another, and that are prefixes of one another, in many texts. */
static const char *const overlapping[] = {
	"\\bABCD-(\\d+)", "BCDE-(\\d+)", "CDE-(\\d+)", "ABC-(\\d+)",
	"XABCDY-(\\d+)", "ABCDY-(\\d+)", "DYX-(\\d+)", "ABCDE-(\\d+)",
	"ABCDEF-(\\d+)", "EFG(\\d+)", NULL,
};

static const char *const overlap_texts[] = {
	"ABCDEF-1", "XABCDY-2", "ABCDE-3 BCDE-4", "ABCDYX-5", "ABCDEFG6",
	"zABCD-7", "ABC-8ABCD-9", "\xc3\xa9" "BCDE-10\xc3\xa9" "CDE-11",
	"ABCABCABCD-12", "XABCDYX-13", "ABCDEFG-14 EFG15",
	"ABCDE\xe2\x82\xac" "CDE-16",
};

START_TEST(overlapping_literals_keep_the_same_tickets)
{
	struct rules *r = rules_with(overlapping);
	char *with, *without;

	ck_assert_ptr_nonnull(r->ticket_prefilter);
	with = tickets_of(r, overlap_texts[_i]);
	prefilter_free(&r->ticket_prefilter);
	without = tickets_of(r, overlap_texts[_i]);
	ck_assert_msg(strcmp(with, without) == 0, "text \"%s\": with \"%s\", "
	    "without \"%s\"", overlap_texts[_i], with, without);
	g_free(with);
	g_free(without);
	rules_unref(&r);
}
END_TEST

/* Thousands of literal occurrences, overlapping, in a 64 KB
 * text: the scan must stay linear. */
START_TEST(many_occurrences_in_bounded_time)
{
	struct rules *r = rules_with(overlapping);
	GString *text = g_string_new(NULL);
	gint64 t0, t1, t2;
	char *with, *without;

	while (text->len < 64 * 1024)
		g_string_append(text, "ABCDEFABCDYXABCABC\xc3\xa9");
	g_string_append(text, " ABCD-42");
	t0 = g_get_monotonic_time();
	with = tickets_of(r, text->str);
	t1 = g_get_monotonic_time();
	prefilter_free(&r->ticket_prefilter);
	without = tickets_of(r, text->str);
	t2 = g_get_monotonic_time();
	ck_assert_str_eq(with, without);
	ck_assert_msg(t1 - t0 < 10 * G_USEC_PER_SEC, "prefilter took %.1f s "
	    "(%.1f s without)", (t1 - t0) / 1e6, (t2 - t1) / 1e6);
	g_string_free(text, TRUE);
	g_free(with);
	g_free(without);
	rules_unref(&r);
}
END_TEST

/*
 * Random differential at the API: random patterns from a small
 * alphabet with the constructs a literal reader can get wrong, compiled
 * like ticket patterns (UTF, UCP); for random texts, every pattern that
 * matches must be a candidate.
 */
static const char *const pieces[] = {
	"A", "B", "C", "A", "B", "C", "-", "#", ":", "AB", "ABC", "BCA",
	"?", "*", "+", "{0}", "{0,}", "{2}", "{1,2}", "\\b", "\\d", "x",
	"(?=A)", "(?!B)", "(?#c)", "(?#()", "(?i)", "(?x)", " ", "\n",
	"[|]", "[(]", "[[:alpha:](]", "(A|B)", "|", "\\x41", "\\-",
	"\\E", "\\Q\\E", "(?:)", "(*MARK:()", "(?C'(')", "[\\Q]\\E(]",
	"(?-i)", "\\K", ".",
};

static const char text_alphabet[][5] = {
	"A", "B", "C", "-", "#", ":", "x", "1", " ", "a", "b", "|",
	"\xc3\xa9", "\xe2\x82\xac",
};

/* The pieces that the hostile cases above already show to break; the
 * second run leaves them out to look for other kinds of miss. */
static const char *const pieces_known[] = {
	"A", "B", "C", "A", "B", "C", "-", "#", ":", "AB", "ABC", "BCA",
	"?", "*", "+", "{0}", "{0,}", "{2}", "{1,2}", "\\b", "\\d", "x",
	"(?=A)", "(?!B)", "(?i)", "(?x)", " ",
	"[|]", "[(]", "(A|B)", "|", "\\x41", "\\-",
	"\\Q\\E", "(?:)", "(?-i)", "\\K", ".", "[)]", "[]|]", "[^]|]",
	"(?<=A)", "(?<!C)", "\\(", "\\|", "(*SKIP)", "(?|A|B)",
};

/* Whether CODE has a match of at least one character in TEXT, found
 * the way find_tickets_in() walks. */
static gboolean
nonempty_match(pcre2_code *code, const char *text, size_t len,
    pcre2_match_data *md)
{
	size_t offset = 0;

	while (offset <= len && pcre2_match(code, (PCRE2_SPTR)text, len,
	    offset, 0, md, NULL) > 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

		if (ov[1] > ov[0])
			return TRUE;
		offset = ov[1] > offset ? ov[1] : offset + 1;
		while (offset < len && ((guchar)text[offset] & 0xC0) == 0x80)
			offset++;
	}
	return FALSE;
}

static gboolean
compiles(const char *source, pcre2_code **code_r)
{
	int err;
	PCRE2_SIZE off;

	*code_r = pcre2_compile((PCRE2_SPTR)source, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
	return *code_r != NULL;
}

/* Seeds: the first half with every tricky piece, the second half with
 * only the pieces the prefilter reads. */
#define RANDOM_ROUNDS 300

START_TEST(random_patterns_keep_every_match)
{
	gboolean known = _i >= RANDOM_ROUNDS / 2;
	const char *const *set = known ? pieces_known : pieces;
	int n_set = known ? (int)G_N_ELEMENTS(pieces_known) :
	    (int)G_N_ELEMENTS(pieces);
	GRand *rng = g_rand_new_with_seed(20240601 + (guint32)_i);
	GPtrArray *patterns = g_ptr_array_new();
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	GString *failures = g_string_new(NULL);
	int n_failures = 0;

	/* 24 patterns: the first 8 with a literal for sure. */
	while (patterns->len < 24) {
		GString *src = g_string_new(NULL);
		struct pattern *pat;
		pcre2_code *code;
		char *lit;

		if (patterns->len < 8)
			g_string_append(src, patterns->len % 2 ? "ABC" : "BCA");
		for (int k = g_rand_int_range(rng, 1, 7); k > 0; k--)
			g_string_append(src, set[g_rand_int_range(rng, 0,
			    n_set)]);
		lit = prefilter_literal(src->str);
		if (!compiles(src->str, &code) || (patterns->len < 8 &&
		    lit == NULL)) {
			if (code != NULL)
				pcre2_code_free(code);
			g_free(lit);
			g_string_free(src, TRUE);
			continue;
		}
		g_free(lit);
		pat = g_new0(struct pattern, 1);
		pat->source = g_string_free(src, FALSE);
		pat->code = code;
		g_ptr_array_add(patterns, pat);
	}

	{
		struct prefilter *pf = prefilter_new(patterns);

		ck_assert_ptr_nonnull(pf);
		for (int t = 0; t < 400; t++) {
			GString *text = g_string_new(NULL);
			gboolean *run;

			for (int k = g_rand_int_range(rng, 0, 24); k > 0; k--)
				g_string_append(text, text_alphabet[
				    g_rand_int_range(rng, 0,
				    G_N_ELEMENTS(text_alphabet))]);
			run = prefilter_candidates(pf, NULL, text->str,
			    text->len);
			for (guint i = 0; run != NULL && i < patterns->len;
			    i++) {
				const struct pattern *pat =
				    patterns->pdata[i];
				if (!run[i] && nonempty_match(pat->code,
				    text->str, text->len, md) &&
				    n_failures++ < 10) {
					char *lit = prefilter_literal(
					    pat->source);

					g_string_append_printf(failures,
					    "\n  /%s/ (literal %s) matches "
					    "\"%s\" but is not a candidate",
					    pat->source, lit, text->str);
					g_free(lit);
				}
			}
			g_free(run);
			g_string_free(text, TRUE);
		}
		prefilter_free(&pf);
	}
	for (guint i = 0; i < patterns->len; i++) {
		struct pattern *pat = patterns->pdata[i];

		pcre2_code_free(pat->code);
		g_free(pat->source);
		g_free(pat);
	}
	g_ptr_array_free(patterns, TRUE);
	pcre2_match_data_free(md);
	g_rand_free(rng);
	ck_assert_msg(n_failures == 0, "%d misses:%s", n_failures,
	    failures->str);
	g_string_free(failures, TRUE);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("prefilter");
	TCase *tc = tcase_create("hostile patterns");
	TCase *rnd = tcase_create("random differential");

	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, prefilter_finds_the_leading_literal, 0,
	    G_N_ELEMENTS(literal_cases));
	tcase_add_loop_test(tc, prefilter_keeps_the_same_tickets, 0,
	    G_N_ELEMENTS(prefilter_texts));
	tcase_add_loop_test(tc, hostile_pattern_keeps_the_same_tickets, 0,
	    G_N_ELEMENTS(hostile));
	tcase_add_loop_test(tc, overlapping_literals_keep_the_same_tickets, 0,
	    G_N_ELEMENTS(overlap_texts));
	tcase_add_test(tc, many_occurrences_in_bounded_time);
	suite_add_tcase(s, tc);
	tcase_set_timeout(rnd, 120);
	tcase_add_loop_test(rnd, random_patterns_keep_every_match, 0,
	    RANDOM_ROUNDS);
	suite_add_tcase(s, rnd);
	return test_run_suite(s);
}
