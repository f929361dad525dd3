/*
 * check_template.c: the template renderer, by behaviour: variables,
 * sections, inverted sections, standalone tag lines, the diagnostics for
 * broken templates, and the shipped templates rendered both ways.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "common/error.h"
#include "templates/template.h"
#include "t/testutil.h"

static GHashTable *
vars_new(const char *first, ...) G_GNUC_NULL_TERMINATED;

/* A table from name/value pairs ending in NULL. */
static GHashTable *
vars_new(const char *first, ...)
{
	GHashTable *vars = g_hash_table_new(g_str_hash, g_str_equal);
	va_list ap;

	va_start(ap, first);
	for (const char *name = first; name != NULL;
	    name = va_arg(ap, const char *))
		g_hash_table_insert(vars, (char *)name,
		    va_arg(ap, char *));
	va_end(ap);
	return vars;
}

static void
render_text(const char *text, GHashTable *vars, char **subject_r,
    char **body_r)
{
	GError *error = NULL;
	struct template *tpl = template_parse("t.txt", text, &error);

	ck_assert_msg(tpl != NULL, "parse: got error \"%s\", want none",
	    error != NULL ? error->message : "?");
	template_render(tpl, vars, subject_r, body_r);
	template_free(&tpl);
	ck_assert_ptr_null(tpl);
}

struct render_case {
	const char *what;
	const char *text;
	const char *want_subject;
	const char *want_body;
};

static const struct render_case render_cases[] = {
	{ "variables", "Subject: Hi {{name}}\n\nCase {{case_id}}, "
	    "{{ name }}.\n", "Hi Ann", "Case ESC-1, Ann.\n" },
	{ "missing variable is empty", "Subject: [{{nope}}]\n\n<{{nope}}>",
	    "[]", "<>" },
	{ "section shown when set", "Subject: s\n\n{{#name}}Dear "
	    "{{name}}{{/name}}.", "s", "Dear Ann." },
	{ "section hidden when empty", "Subject: s\n\n{{#empty}}x{{/empty}}"
	    "{{#nope}}y{{/nope}}.", "s", "." },
	{ "inverted section", "Subject: s\n\n{{^empty}}a{{/empty}}"
	    "{{^nope}}b{{/nope}}{{^name}}c{{/name}}", "s", "ab" },
	{ "nested sections", "Subject: s\n\n{{#name}}{{^empty}}{{name}}"
	    "{{/empty}}{{/name}}", "s", "Ann" },
	{ "standalone tags take their line", "Subject: s\n\nA\n"
	    "  {{#name}}  \nB\n{{/name}}\n{{^name}}\nC\n{{/name}}\nD\n",
	    "s", "A\nB\nD\n" },
	{ "inline tags keep their line", "Subject: s\n\nA {{#name}}B"
	    "{{/name}}\nC\n", "s", "A B\nC\n" },
	{ "subject line breaks become spaces", "Subject: x {{multi}} y\n\n",
	    "x a b  c y", "" },
	{ "CRLF template", "Subject: s\r\n\r\nline one\r\nline two\r\n",
	    "s", "line one\nline two\n" },
	{ "text that only looks like a tag", "Subject: a}}b\n\n}} {x} {",
	    "a}}b", "}} {x} {" },
};

START_TEST(test_render)
{
	const struct render_case *rc = &render_cases[_i];
	GHashTable *vars = vars_new("name", "Ann", "case_id", "ESC-1",
	    "empty", "", "multi", "a\r\nb\n\rc", NULL);
	char *subject, *body;

	render_text(rc->text, vars, &subject, &body);
	ck_assert_msg(strcmp(subject, rc->want_subject) == 0,
	    "%s: subject: got \"%s\", want \"%s\"", rc->what, subject,
	    rc->want_subject);
	ck_assert_msg(strcmp(body, rc->want_body) == 0,
	    "%s: body: got \"%s\", want \"%s\"", rc->what, body,
	    rc->want_body);
	g_free(subject);
	g_free(body);
	g_hash_table_destroy(vars);
}
END_TEST

START_TEST(test_render_no_vars)
{
	char *subject, *body;

	render_text("Subject: {{a}}x\n\n{{^a}}none{{/a}}", NULL, &subject,
	    &body);
	ck_assert_str_eq(subject, "x");
	ck_assert_str_eq(body, "none");
	g_free(subject);
	g_free(body);
}
END_TEST

struct error_case {
	const char *what;
	const char *text;
	const char *want;
};

static const struct error_case error_cases[] = {
	{ "no subject line", "Hello\n\nbody",
	    "t.txt:1: want \"Subject: ...\" as the first line" },
	{ "empty file", "",
	    "t.txt:1: want \"Subject: ...\" as the first line" },
	{ "no blank line", "Subject: x\nbody\n",
	    "t.txt:2: want a blank line between the subject and the body" },
	{ "subject only", "Subject: x",
	    "t.txt:2: want a blank line between the subject and the body" },
	{ "bad tag in subject", "Subject: {{a b}}\n\n",
	    "t.txt:1: bad tag \"{{a b}}\": want {{name}}, {{#name}}, "
	    "{{^name}} or {{/name}}" },
	{ "comment tag", "Subject: s\n\none\ntwo {{!note}}\n",
	    "t.txt:4: bad tag \"{{!note}}\": want {{name}}, {{#name}}, "
	    "{{^name}} or {{/name}}" },
	{ "triple braces", "Subject: s\n\n{{{name}}}",
	    "t.txt:3: bad tag \"{{{name}}\": want {{name}}, {{#name}}, "
	    "{{^name}} or {{/name}}" },
	{ "empty tag", "Subject: s\n\n\n{{}}",
	    "t.txt:4: bad tag \"{{}}\": want {{name}}, {{#name}}, "
	    "{{^name}} or {{/name}}" },
	{ "unterminated tag", "Subject: s\n\n{{name\n}}",
	    "t.txt:3: \"{{\" without \"}}\" on the same line" },
	{ "close without open", "Subject: s\n\nx\n{{/a}}",
	    "t.txt:4: {{/a}} closes no open section" },
	{ "never closed", "Subject: s\n\nx\n{{#a}}\ny\n",
	    "t.txt:4: section \"a\" is never closed" },
	{ "closed in the body, opened in the subject",
	    "Subject: {{#a}}x\n\n{{/a}}",
	    "t.txt:1: section \"a\" is never closed" },
	{ "wrong close", "Subject: s\n\n{{#a}}\n{{#b}}\n{{/a}}\n",
	    "t.txt:5: {{/a}} found where section \"b\" (line 4) should "
	    "close" },
	{ "same name nested", "Subject: s\n\n{{#a}}\n{{^a}}\n{{/a}}\n"
	    "{{/a}}\n",
	    "t.txt:4: section \"a\" opened again inside itself (line 3)" },
	{ "nested too deep", "Subject: s\n\n{{#a}}{{#b}}{{#c}}{{#d}}{{#e}}"
	    "{{#f}}{{#g}}{{#h}}{{#i}}{{#j}}{{#k}}{{#l}}{{#m}}{{#n}}{{#o}}"
	    "{{#p}}{{#q}}",
	    "t.txt:3: sections nested more than 16 deep" },
	{ "bad UTF-8", "Subject: s\n\nok\nbad \xff\n",
	    "t.txt:4: not valid UTF-8" },
};

START_TEST(test_errors)
{
	const struct error_case *ec = &error_cases[_i];
	GError *error = NULL;
	struct template *tpl = template_parse("t.txt", ec->text, &error);

	ck_assert_msg(tpl == NULL, "%s: got a template, want an error",
	    ec->what);
	ck_assert_msg(error != NULL && error->domain == ESC_ERROR &&
	    error->code == ESC_ERROR_CONFIG, "%s: want ESC_ERROR_CONFIG",
	    ec->what);
	ck_assert_msg(strcmp(error->message, ec->want) == 0,
	    "%s: got \"%s\", want \"%s\"", ec->what, error->message,
	    ec->want);
	g_error_free(error);
}
END_TEST

START_TEST(test_load_names_file_and_line)
{
	char *dir = test_tmpdir();
	char *path = g_build_filename(dir, "bad.txt", NULL);
	char *want = g_strdup_printf("%s:3: bad tag \"{{>partial}}\": want "
	    "{{name}}, {{#name}}, {{^name}} or {{/name}}", path);
	GError *error = NULL;
	struct template *tpl;

	ck_assert(g_file_set_contents(path, "Subject: s\n\n{{>partial}}\n",
	    -1, NULL));
	tpl = template_load(path, &error);
	ck_assert_ptr_null(tpl);
	ck_assert_msg(strcmp(error->message, want) == 0,
	    "got \"%s\", want \"%s\"", error->message, want);

	g_error_free(error);
	g_free(want);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

START_TEST(test_load_missing_file)
{
	GError *error = NULL;
	struct template *tpl = template_load("/nonexistent/x.txt", &error);

	ck_assert_ptr_null(tpl);
	ck_assert_int_eq(error->code, ESC_ERROR_IO);
	ck_assert_str_eq(error->message,
	    "open(/nonexistent/x.txt): No such file or directory");
	g_error_free(error);
}
END_TEST

/* Load a shipped template and render it with VARS. */
static void
render_shipped(const char *file, GHashTable *vars, char **subject_r,
    char **body_r)
{
	char *path = test_path(file);
	GError *error = NULL;
	struct template *tpl = template_load(path, &error);

	ck_assert_msg(tpl != NULL, "load %s: %s", file,
	    error != NULL ? error->message : "?");
	template_render(tpl, vars, subject_r, body_r);
	template_free(&tpl);
	g_free(path);
}

/* What every rendered acknowledgement must hold. */
static void
check_ack_common(const char *subject, const char *body)
{
	ck_assert_str_eq(subject,
	    "[ESC-2026-000042] Complaint received: Transfer stuck");
	ck_assert_str_contains(body, "case ESC-2026-000042");
	ck_assert_str_contains(body, "keep [ESC-2026-000042] in the subject");
	ck_assert_str_contains(body, "due by Tuesday 3 March 2026, 16:00");
	ck_assert_msg(strstr(body, "{{") == NULL, "got a tag left in \"%s\"",
	    body);
	ck_assert_msg(strstr(body, "\n\n\n") == NULL,
	    "got a run of blank lines in \"%s\"", body);
}

START_TEST(test_shipped_with_tickets)
{
	GHashTable *vars = vars_new("case_id", "ESC-2026-000042",
	    "subject", "Transfer stuck", "name", "Ann Example",
	    "tickets", "RZ-1234, PP-5678",
	    "deadline", "Tuesday 3 March 2026, 16:00", NULL);
	char *subject, *body;

	render_shipped("templates/complaint-ack.txt", vars, &subject, &body);
	check_ack_common(subject, body);
	ck_assert_str_contains(body, "Dear Ann Example,");
	ck_assert_str_contains(body, "RZ-1234, PP-5678");
	ck_assert_msg(strstr(body, "Hello,") == NULL, "got a greeting "
	    "without the name in \"%s\"", body);

	g_free(subject);
	g_free(body);
	g_hash_table_destroy(vars);
}
END_TEST

START_TEST(test_shipped_without_tickets)
{
	GHashTable *vars = vars_new("case_id", "ESC-2026-000042",
	    "subject", "Transfer stuck", "tickets", "",
	    "deadline", "Tuesday 3 March 2026, 16:00", NULL);
	char *subject, *body;

	render_shipped("templates/complaint-ack-no-tickets.txt", vars,
	    &subject, &body);
	check_ack_common(subject, body);
	ck_assert_str_contains(body, "Hello,");
	ck_assert_str_contains(body, "found no ticket numbers");
	ck_assert_str_contains(body, "ticket\nnumber of each request");

	g_free(subject);
	g_free(body);
	g_hash_table_destroy(vars);
}
END_TEST

static Suite *
template_suite(void)
{
	Suite *suite = suite_create("template");
	TCase *tc = tcase_create("template");

	tcase_add_loop_test(tc, test_render, 0,
	    G_N_ELEMENTS(render_cases));
	tcase_add_test(tc, test_render_no_vars);
	tcase_add_loop_test(tc, test_errors, 0, G_N_ELEMENTS(error_cases));
	tcase_add_test(tc, test_load_names_file_and_line);
	tcase_add_test(tc, test_load_missing_file);
	tcase_add_test(tc, test_shipped_with_tickets);
	tcase_add_test(tc, test_shipped_without_tickets);
	suite_add_tcase(suite, tc);
	return suite;
}

int
main(void)
{
	return test_run_suite(template_suite());
}
