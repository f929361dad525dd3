/*
 * daemon.c: socket, pid file, detaching and dropping root.
 *
 * The milter socket is opened while still root, with a umask that keeps
 * it private until its mode and group are set explicitly from the
 * configuration, so the MTA (often in group postfix) can connect and no
 * one else can. A unix socket that a running instance still answers on
 * is never removed: the second instance refuses to start instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <libmilter/mfapi.h>

#include "common/error.h"
#include "common/log.h"
#include "milter/daemon.h"

static const char *
unix_path(const char *spec)
{
	if (g_str_has_prefix(spec, "unix:"))
		return spec + 5;
	if (g_str_has_prefix(spec, "local:"))
		return spec + 6;
	if (spec[0] == '/')
		return spec;
	return NULL;
}

/* 1 if something accepts connections on PATH, 0 if not. */
static int
socket_is_live(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof addr.sun_path)
		return 0;
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
	close(fd);
	return rc == 0;
}

static int
socket_permissions(const struct config *config, const char *path,
    GError **error)
{
	gid_t gid = (gid_t)-1;

	if (config->socket_group != NULL) {
		struct group *gr = getgrnam(config->socket_group);

		if (gr == NULL) {
			g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
			    "socket_group: no such group \"%s\"",
			    config->socket_group);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (chown(path, (uid_t)-1, gid) < 0 ||
	    chmod(path, config->socket_mode) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "chown/chmod(%s): %s", path, g_strerror(errno));
		return -1;
	}
	return 0;
}

int
daemon_socket_open(const struct config *config, GError **error)
{
	const char *path = unix_path(config->socket);
	mode_t old_umask;
	int rc;

	if (path != NULL && socket_is_live(path)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "socket %s: "
		    "another instance is answering on it", path);
		return -1;
	}
	if (smfi_setconn(config->socket) == MI_FAILURE) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
		    "socket \"%s\": not a valid milter socket", config->socket);
		return -1;
	}

	/* Private until the configured mode is applied. */
	old_umask = umask(0177);
	rc = smfi_opensocket(true);
	umask(old_umask);
	if (rc == MI_FAILURE) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "socket %s: cannot listen (in use, or no permission)",
		    config->socket);
		return -1;
	}
	return path != NULL ? socket_permissions(config, path, error) : 0;
}

int
daemon_state_dir(const char *dir, const char *user, int mode,
    GError **error)
{
	struct passwd *pw;

	if (g_file_test(dir, G_FILE_TEST_IS_DIR))
		return 0;
	if (g_mkdir_with_parents(dir, mode) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "mkdir(%s): %s",
		    dir, g_strerror(errno));
		return -1;
	}
	if (user != NULL && geteuid() == 0 && (pw = getpwnam(user)) != NULL &&
	    chown(dir, pw->pw_uid, pw->pw_gid) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "chown(%s): %s",
		    dir, g_strerror(errno));
		return -1;
	}
	return 0;
}

int
daemon_detach(GError **error)
{
	if (daemon(0, 0) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "daemon: %s",
		    g_strerror(errno));
		return -1;
	}
	return 0;
}

int
daemon_pidfile_write(const char *path, GError **error)
{
	char *text = g_strdup_printf("%ld\n", (long)getpid());
	GError *local = NULL;
	int rc = 0;

	if (!g_file_set_contents_full(path, text, -1,
	    G_FILE_SET_CONTENTS_CONSISTENT, 0644, &local)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO, "pid file: %s",
		    local->message);
		g_error_free(local);
		rc = -1;
	}
	g_free(text);
	return rc;
}

void
daemon_pidfile_remove(const char *path)
{
	if (path != NULL && unlink(path) < 0 && errno != ENOENT)
		log_warn("unlink(%s): %s", path, g_strerror(errno));
}

int
daemon_drop_privileges(const char *user, GError **error)
{
	struct passwd *pw;

	if (user == NULL || geteuid() != 0)
		return 0;
	pw = getpwnam(user);
	if (pw == NULL) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_CONFIG,
		    "user: no such user \"%s\"", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "dropping privileges to %s: %s", user, g_strerror(errno));
		return -1;
	}
	/* Proof: root must be gone for good. */
	if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "dropping privileges to %s: setuid(0) still works", user);
		return -1;
	}
	return 0;
}
