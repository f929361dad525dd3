/*
 * daemon.h: the parts of being a Unix daemon: the milter socket with its
 * mode and group, a pid file, leaving the terminal, and the privilege
 * drop. Each returns 0, or -1 with ERROR saying what failed; main()
 * decides to exit.
 */
#ifndef ESC_DAEMON_H
#define ESC_DAEMON_H

#include <glib.h>

#include "common/config.h"

/* Open the milter socket as root; refuse if a live instance answers. */
int daemon_socket_open(const struct config *config, GError **error);
/* Make DIR (and parents) owned by USER with MODE, if missing. */
int daemon_state_dir(const char *dir, const char *user, int mode,
    GError **error);
int daemon_detach(GError **error);
int daemon_pidfile_write(const char *path, GError **error);
void daemon_pidfile_remove(const char *path);
/* Become USER (groups, gid, uid) and prove root cannot come back. */
int daemon_drop_privileges(const char *user, GError **error);

#endif
