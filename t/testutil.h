/*
 * testutil.h: small helpers shared by the libcheck tests.
 */
#ifndef ESC_TESTUTIL_H
#define ESC_TESTUTIL_H

#include <check.h>
#include <glib.h>

/* Absolute path of a file under the source tree; caller frees. */
char *test_path(const char *relative);
/* Whole contents of a file under the source tree; fails the test if it
 * cannot be read. LEN_R may be NULL. Caller frees. */
char *test_read(const char *relative, size_t *len_r);
/* A fresh temporary directory, removed by test_tmpdir_remove(). */
char *test_tmpdir(void);
void test_tmpdir_remove(char *dir);
/* A TCP socket listening on 127.0.0.1 at a free port, put in PORT_R;
 * fails the test if it cannot be made. */
int test_listen_loopback(int *port_r);
/* Run SUITE and return the process exit status for automake. */
int test_run_suite(Suite *suite);

#define ck_assert_str_contains(haystack, needle) \
	ck_assert_msg(strstr((const char *)(haystack), (needle)) != NULL, \
	    "got \"%s\", want it to contain \"%s\"", \
	    (const char *)(haystack), (needle))

#endif
