/*
 * check_rules.c: loading rules files: the shipped and test rules load;
 * a broken file yields every problem with its line, exactly as kept in
 * t/rules/broken.expected; reply prefixes, tags and commands are read
 * as the rules say; bytes that are not UTF-8 are reported at their
 * place.
 */
#include <string.h>

#include "rules/rules.h"
#include "t/testutil.h"

static struct rules *
load(const char *relative, GError **error)
{
	char *path = test_path(relative);
	char *templates = test_path("templates");
	struct rules *rules = rules_load(path, templates, error);

	g_free(path);
	g_free(templates);
	return rules;
}

START_TEST(shipped_and_test_rules_load)
{
	const char *files[] = { "etc/rules.yaml", "t/rules/test-rules.yaml" };

	for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
		GError *error = NULL;
		struct rules *rules = load(files[i], &error);

		ck_assert_msg(rules != NULL, "%s: got errors:\n%s", files[i],
		    error ? error->message : "");
		ck_assert_ptr_nonnull(rules_mailbox(rules,
		    "Escalation@Example.ORG"));
		ck_assert_ptr_null(rules_mailbox(rules, "other@example.org"));
		rules_unref(&rules);
	}
}
END_TEST

START_TEST(broken_rules_report_every_problem_with_its_line)
{
	GError *error = NULL;
	struct rules *rules = load("t/rules/broken.yaml", &error);
	char *expected = test_read("t/rules/broken.expected", NULL);
	char *top = g_strconcat(SRCDIR, "/", NULL);
	char *got;
	char **parts;

	ck_assert_ptr_null(rules);
	ck_assert_ptr_nonnull(error);
	/* The golden file names files relative to the tree. */
	parts = g_strsplit(error->message, top, -1);
	got = g_strjoinv("", parts);
	g_strfreev(parts);
	g_strchomp(expected);
	ck_assert_msg(strcmp(got, expected) == 0,
	    "got:\n%s\nwant:\n%s", got, expected);
	g_free(got);
	g_free(top);
	g_free(expected);
	g_error_free(error);
}
END_TEST

START_TEST(missing_rules_file_is_an_error)
{
	GError *error = NULL;
	struct rules *rules = load("t/rules/no-such-file.yaml", &error);

	ck_assert_ptr_null(rules);
	ck_assert_str_contains(error->message, "cannot read");
	g_error_free(error);
}
END_TEST

START_TEST(empty_command_list_is_reported_at_its_line)
{
	char *dir = test_tmpdir();
	char *path = g_build_filename(dir, "r.yaml", NULL);
	char *templates = test_path("templates");
	GError *error = NULL;
	struct rules *rules;

	ck_assert(g_file_set_contents(path, "operator: {domain: d, sender: "
	    "a@b}\nmailboxes: [{address: x@y, procedure: p}]\n"
	    "procedures: {p: {case_id: 'P-{seq}', tag: '\\[(P-\\d+)\\]', "
	    "acknowledge: complaint-ack}}\ncommands: []\n", -1, NULL));
	rules = rules_load(path, templates, &error);
	ck_assert_ptr_null(rules);
	ck_assert_str_contains(error->message, "r.yaml:4: commands: expected "
	    "at least one command word");
	g_error_free(error);
	g_free(templates);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

/*
 * Bytes that are not UTF-8 are reported at their place. The first one
 * made libfyaml 0.7.12 loop for ever (found by t/fuzz/fuzz_rules); the
 * test timeout catches that.
 */
static const struct {
	const char *text;
	size_t len;
	const char *want;
} bad_bytes[] = {
	{ "%\xd3", 2, "r.yaml:1:2: not valid UTF-8" },
	{ "%\xd3\n", 3, "r.yaml:1:2: not valid UTF-8" },
	{ "operator:\n  domain: caf\xe9.example\n", 33,
	    "r.yaml:2:14: not valid UTF-8" },
	{ "operator:\n  domain: a\0b\n", 24, "r.yaml:2:12: NUL byte" },
};

START_TEST(bytes_that_are_not_utf8_are_reported)
{
	char *dir = test_tmpdir();
	char *path = g_build_filename(dir, "r.yaml", NULL);
	char *templates = test_path("templates");
	GError *error = NULL;
	struct rules *rules;

	ck_assert(g_file_set_contents(path, bad_bytes[_i].text,
	    (gssize)bad_bytes[_i].len, NULL));
	rules = rules_load(path, templates, &error);
	ck_assert_ptr_null(rules);
	ck_assert_str_contains(error->message, bad_bytes[_i].want);
	g_error_free(error);
	g_free(templates);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

START_TEST(case_ids_follow_the_format)
{
	GError *error = NULL;
	struct rules *rules = load("t/rules/test-rules.yaml", &error);
	char *id;

	ck_assert_ptr_nonnull(rules);
	id = procedure_case_id(rules_procedure(rules, "complaint"), 2026, 42);
	ck_assert_str_eq(id, "ESC-2026-000042");
	g_free(id);
	id = procedure_case_id(rules_procedure(rules, "emergency"), 2027, 7);
	ck_assert_str_eq(id, "EMG-2027-000007");
	g_free(id);
	rules_unref(&rules);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("load");

	tcase_add_test(tc, shipped_and_test_rules_load);
	tcase_add_test(tc, broken_rules_report_every_problem_with_its_line);
	tcase_add_test(tc, missing_rules_file_is_an_error);
	tcase_add_test(tc, case_ids_follow_the_format);
	tcase_add_test(tc, empty_command_list_is_reported_at_its_line);
	tcase_add_loop_test(tc, bytes_that_are_not_utf8_are_reported, 0,
	    G_N_ELEMENTS(bad_bytes));
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
