/* testutil.c: see testutil.h. */
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <glib/gstdio.h>

#include "t/testutil.h"

char *
test_path(const char *relative)
{
	return g_build_filename(SRCDIR, relative, NULL);
}

char *
test_read(const char *relative, size_t *len_r)
{
	char *path = test_path(relative);
	char *data = NULL;
	gsize len = 0;
	GError *error = NULL;

	if (!g_file_get_contents(path, &data, &len, &error))
		ck_abort_msg("read %s: %s", path, error->message);
	g_free(path);
	if (len_r != NULL)
		*len_r = len;
	return data;
}

char *
test_tmpdir(void)
{
	GError *error = NULL;
	char *dir = g_dir_make_tmp("escalator-test-XXXXXX", &error);

	if (dir == NULL)
		ck_abort_msg("mkdtemp: %s", error->message);
	return dir;
}

static void
remove_tree(const char *path)
{
	GDir *dir = g_dir_open(path, 0, NULL);
	const char *name;

	if (dir != NULL) {
		while ((name = g_dir_read_name(dir)) != NULL) {
			char *child = g_build_filename(path, name, NULL);
			remove_tree(child);
			g_free(child);
		}
		g_dir_close(dir);
	}
	g_remove(path);
}

void
test_tmpdir_remove(char *dir)
{
	if (dir != NULL)
		remove_tree(dir);
	g_free(dir);
}

int
test_run_suite(Suite *suite)
{
	SRunner *runner = srunner_create(suite);
	int failed;

	srunner_run_all(runner, CK_NORMAL);
	failed = srunner_ntests_failed(runner);
	srunner_free(runner);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

int
test_listen_loopback(int *port_r)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 8), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port_r = ntohs(sin.sin_port);
	return fd;
}
