/*
 * check_common.c: the shared pieces: escalator.conf is read with its
 * defaults and every mistake reported with its line; text from mail is
 * made printable and valid UTF-8 before it reaches a log line or the
 * store; log lines carry their level word and can be captured.
 */
#include <string.h>
#include <glib/gstdio.h>

#include "common/config.h"
#include "common/log.h"
#include "common/text.h"
#include "t/testutil.h"

static char *
write_file(const char *dir, const char *name, const char *text)
{
	char *path = g_build_filename(dir, name, NULL);

	ck_assert(g_file_set_contents(path, text, -1, NULL));
	return path;
}

START_TEST(missing_optional_config_gives_defaults)
{
	GError *error = NULL;
	struct config *config = config_load("/nonexistent/escalator.conf",
	    FALSE, &error);

	ck_assert_ptr_nonnull(config);
	ck_assert_int_eq(config->on_error, ON_ERROR_TEMPFAIL);
	ck_assert_int_eq(config->socket_mode, 0660);
	ck_assert(config->synchronous_full);
	ck_assert_uint_eq(config->max_message_size, 10 * 1024 * 1024);
	config_free(&config);
	ck_assert_ptr_null(config);
}
END_TEST

START_TEST(config_values_are_read)
{
	char *dir = test_tmpdir();
	char *path = write_file(dir, "e.conf", "socket: inet:10030@127.0.0.1\n"
	    "socket_mode: \"0600\"\nuser: \"\"\non_error: accept\n"
	    "synchronous: normal\nmax_message_size: 2048\n"
	    "log_level: debug\n");
	GError *error = NULL;
	struct config *config = config_load(path, TRUE, &error);

	ck_assert_msg(config != NULL, "%s", error ? error->message : "");
	ck_assert_str_eq(config->socket, "inet:10030@127.0.0.1");
	ck_assert_int_eq(config->socket_mode, 0600);
	ck_assert_ptr_null(config->user);
	ck_assert_int_eq(config->on_error, ON_ERROR_ACCEPT);
	ck_assert(!config->synchronous_full);
	ck_assert_uint_eq(config->max_message_size, 2048);
	ck_assert_int_eq(config->log_level, LOG_LEVEL_DEBUG);
	config_free(&config);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

START_TEST(config_mistakes_are_all_reported_with_lines)
{
	char *dir = test_tmpdir();
	char *path = write_file(dir, "bad.conf", "socket_mode: rw\n"
	    "on_error: discard\nmax_message_size: 10\nsokcet: x\n"
	    "log_level: loud\ndatabase: \"\"\n");
	GError *error = NULL;
	struct config *config = config_load(path, TRUE, &error);

	ck_assert_ptr_null(config);
	ck_assert_str_contains(error->message, "bad.conf:4: unknown key "
	    "\"sokcet\"");
	ck_assert_str_contains(error->message, "bad.conf:1: socket_mode");
	ck_assert_str_contains(error->message, "bad.conf:2: on_error: "
	    "expected tempfail or accept, got \"discard\"");
	ck_assert_str_contains(error->message, "bad.conf:3: "
	    "max_message_size");
	ck_assert_str_contains(error->message, "bad.conf:5: log_level");
	ck_assert_str_contains(error->message, "bad.conf:6: database: must "
	    "not be empty");
	g_error_free(error);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

START_TEST(config_syntax_error_names_line_and_column)
{
	char *dir = test_tmpdir();
	char *path = write_file(dir, "syntax.conf", "socket: a\nuser: b: c\n");
	GError *error = NULL;
	struct config *config = config_load(path, TRUE, &error);

	ck_assert_ptr_null(config);
	ck_assert_str_contains(error->message, "syntax.conf:2:8: ");
	g_error_free(error);
	g_free(path);
	test_tmpdir_remove(dir);
}
END_TEST

static const struct {
	const char *in;
	size_t cap;
	const char *want;
} printable_cases[] = {
	{ "plain", 200, "plain" },
	{ "line\r\nBcc: x", 200, "line??Bcc: x" },
	{ "tab\there", 200, "tab?here" },
	{ "c1 \xc2\x85 next line", 200, "c1 ? next line" },
	{ "caf\xe9", 200, "café" },
	{ "abcdefghij", 5, "abcde..." },
	{ "\xe2\x82\xac\xe2\x82\xac", 4, "€..." },
	{ NULL, 200, "(none)" },
};

START_TEST(untrusted_text_is_made_printable)
{
	char *got = text_printable(printable_cases[_i].in,
	    printable_cases[_i].cap);

	ck_assert_msg(strcmp(got, printable_cases[_i].want) == 0,
	    "got \"%s\", want \"%s\"", got, printable_cases[_i].want);
	g_free(got);
}
END_TEST

START_TEST(mislabelled_text_becomes_utf8)
{
	const char cp1252[] = "\x93quoted\x94 \x96 50 \x80 \x85";
	char *got = text_to_utf8(cp1252, sizeof cp1252 - 1);
	char *nul = text_to_utf8("a\0b", 3);

	ck_assert_str_eq(got, "“quoted” – 50 € …");
	ck_assert_str_eq(nul, "a\xef\xbf\xbd" "b");
	g_free(got);
	g_free(nul);
}
END_TEST

START_TEST(addresses_are_normalized)
{
	char *a = text_address_normalize("<Olaf@Example.COM>");
	char *b = text_address_normalize("<>");

	ck_assert_str_eq(a, "olaf@example.com");
	ck_assert_str_eq(b, "");
	g_free(a);
	g_free(b);
}
END_TEST

START_TEST(a_reply_keeps_only_its_own_words)
{
	static const struct { const char *body, *want; } cases[] = {
		{ "Done.\n\n-- \nAna\nDesk", "Done." },
		{ "Fixed now.\n\nOn Mon, 7 Dec 2026, Bob wrote:\n> old\n> text",
		  "Fixed now." },
		{ "Yes.\r\n-----Original Message-----\r\nFrom: x", "Yes." },
		{ "See below\n> quoted\nmine too\n", "See below\nmine too" },
		{ "Am 7.12. schrieb Bob:\n> alt", "" },
		{ "", "" },
	};
	char *got;

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		got = text_own_words(cases[i].body, 100);
		ck_assert_msg(strcmp(got, cases[i].want) == 0,
		    "case %zu: got \"%s\", want \"%s\"", i, got,
		    cases[i].want);
		g_free(got);
	}
	got = text_own_words("\xc3\xa9\xc3\xa9\xc3\xa9", 3);
	ck_assert_str_eq(got, "\xc3\xa9\n[...]");
	g_free(got);
}
END_TEST

START_TEST(a_contact_address_is_found_in_text)
{
	char *a = text_first_address("manager is Ana.Lind@NIC.example, call");
	char *none = text_first_address("no address here @ all");

	ck_assert_str_eq(a, "ana.lind@nic.example");
	ck_assert_ptr_null(none);
	ck_assert_ptr_null(text_first_address(NULL));
	g_free(a);
}
END_TEST

START_TEST(log_lines_carry_their_level)
{
	char *lines;

	log_capture_start();
	log_warn("QID: case=%s limit: %s", "ESC-1", "subject cut");
	log_debug("kept even below the level while capturing");
	lines = log_capture_stop();
	ck_assert_str_contains(lines, "warning: QID: case=ESC-1 limit: "
	    "subject cut");
	ck_assert_str_contains(lines, "debug: kept");
	g_free(lines);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("common");

	tcase_add_test(tc, missing_optional_config_gives_defaults);
	tcase_add_test(tc, config_values_are_read);
	tcase_add_test(tc, config_mistakes_are_all_reported_with_lines);
	tcase_add_test(tc, config_syntax_error_names_line_and_column);
	tcase_add_loop_test(tc, untrusted_text_is_made_printable, 0,
	    G_N_ELEMENTS(printable_cases));
	tcase_add_test(tc, mislabelled_text_becomes_utf8);
	tcase_add_test(tc, addresses_are_normalized);
	tcase_add_test(tc, a_reply_keeps_only_its_own_words);
	tcase_add_test(tc, a_contact_address_is_found_in_text);
	tcase_add_test(tc, log_lines_carry_their_level);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
