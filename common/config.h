/*
 * config.h: escalator.conf, the settings of escalatord and escalatorctl.
 * A YAML mapping of single values; every key is optional. See
 * escalator.conf(5) and etc/escalator.conf for the meaning of each.
 */
#ifndef ESC_CONFIG_H
#define ESC_CONFIG_H

#include <sys/types.h>
#include <glib.h>

#define CONFIG_DEFAULT_PATH SYSCONFDIR "/escalator/escalator.conf"

enum on_error { ON_ERROR_TEMPFAIL, ON_ERROR_ACCEPT };

struct config {
	char *path;
	char *socket;		/* libmilter spec: unix:PATH, inet:PORT@ADDR */
	mode_t socket_mode;
	char *socket_group;	/* NULL: leave the group as it is */
	char *user;		/* NULL: do not change user */
	char *pidfile;		/* NULL: write none */
	char *database;
	gboolean synchronous_full;
	char *rules;
	char *templates;
	char *send;
	size_t max_message_size;
	enum on_error on_error;
	int log_level;		/* enum log_level */
};

/*
 * Load PATH. A missing file is an error only if MUST_EXIST. All
 * problems are reported at once, one per line, in ERROR.
 */
struct config *config_load(const char *path, gboolean must_exist,
    GError **error);
void config_free(struct config **config);

#endif
