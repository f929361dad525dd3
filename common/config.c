/*
 * config.c: reads escalator.conf. Defaults suit a Debian system with
 * Postfix; every problem in the file is reported with its line, and a
 * file with any problem is refused whole.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"

static const char *const config_keys[] = {
	"socket", "socket_mode", "socket_group", "user", "pidfile",
	"database", "synchronous", "rules", "templates", "send",
	"max_message_size", "on_error", "log_level", NULL
};

static struct config *
config_defaults(const char *path)
{
	struct config *config = g_new0(struct config, 1);

	config->path = g_strdup(path);
	config->socket = g_strdup("unix:" RUNSTATEDIR
	    "/escalator/escalatord.sock");
	config->socket_mode = 0660;
	config->socket_group = g_strdup("postfix");
	config->user = g_strdup("escalator");
	config->pidfile = g_strdup(RUNSTATEDIR "/escalator/escalatord.pid");
	config->database = g_strdup(LOCALSTATEDIR
	    "/lib/escalator/escalator.db");
	config->synchronous_full = TRUE;
	config->rules = g_strdup(SYSCONFDIR "/escalator/rules.yaml");
	config->templates = g_strdup(SYSCONFDIR "/escalator/templates");
	config->send = g_strdup("/usr/sbin/sendmail");
	config->max_message_size = 10 * 1024 * 1024;
	config->on_error = ON_ERROR_TEMPFAIL;
	config->log_level = LOG_LEVEL_INFO;
	return config;
}

/* Replace *FIELD by KEY's value if present; "" clears optional ones. */
static void
config_string(struct yaml_file *file, const char *key, char **field)
{
	const char *value = yaml_string(file, file->root, key, NULL);

	if (value == NULL)
		return;
	g_free(*field);
	*field = *value != '\0' ? g_strdup(value) : NULL;
}

static void
config_choices(struct yaml_file *file, struct config *config)
{
	const char *value;
	struct fy_node *node;

	value = yaml_string(file, file->root, "socket_mode", NULL);
	if (value != NULL) {
		char *end;
		long mode = strtol(value, &end, 8);

		node = fy_node_mapping_lookup_by_string(file->root,
		    "socket_mode", FY_NT);
		if (*end != '\0' || mode < 0 || mode > 0777)
			yaml_error(file, node, "socket_mode: expected an octal "
			    "mode such as \"0660\", got \"%s\"", value);
		else
			config->socket_mode = (mode_t)mode;
	}

	value = yaml_string(file, file->root, "synchronous", "full");
	node = fy_node_mapping_lookup_by_string(file->root, "synchronous",
	    FY_NT);
	if (strcmp(value, "full") == 0 || strcmp(value, "normal") == 0)
		config->synchronous_full = strcmp(value, "full") == 0;
	else
		yaml_error(file, node, "synchronous: expected full or normal, "
		    "got \"%s\"", value);

	value = yaml_string(file, file->root, "on_error", "tempfail");
	node = fy_node_mapping_lookup_by_string(file->root, "on_error",
	    FY_NT);
	if (strcmp(value, "tempfail") == 0 || strcmp(value, "accept") == 0)
		config->on_error = strcmp(value, "accept") == 0 ?
		    ON_ERROR_ACCEPT : ON_ERROR_TEMPFAIL;
	else
		yaml_error(file, node, "on_error: expected tempfail or "
		    "accept, got \"%s\"", value);

	value = yaml_string(file, file->root, "log_level", "info");
	node = fy_node_mapping_lookup_by_string(file->root, "log_level",
	    FY_NT);
	config->log_level = log_level_parse(value);
	if (config->log_level < 0) {
		yaml_error(file, node, "log_level: expected error, warning, "
		    "info or debug, got \"%s\"", value);
		config->log_level = LOG_LEVEL_INFO;
	}
}

static void
config_read(struct yaml_file *file, struct config *config)
{
	yaml_check_keys(file, file->root, config_keys);
	config_string(file, "socket", &config->socket);
	config_string(file, "socket_group", &config->socket_group);
	config_string(file, "user", &config->user);
	config_string(file, "pidfile", &config->pidfile);
	config_string(file, "database", &config->database);
	config_string(file, "rules", &config->rules);
	config_string(file, "templates", &config->templates);
	config_string(file, "send", &config->send);
	config->max_message_size = (size_t)yaml_integer(file, file->root,
	    "max_message_size", (long)config->max_message_size, 1024,
	    1024L * 1024 * 1024);
	config_choices(file, config);

	if (config->socket == NULL)
		yaml_error(file, yaml_at(file->root, "socket"),
		    "socket: must not be empty");
	if (config->database == NULL)
		yaml_error(file, yaml_at(file->root, "database"),
		    "database: must not be empty");
	if (config->rules == NULL)
		yaml_error(file, yaml_at(file->root, "rules"),
		    "rules: must not be empty");
	if (config->send == NULL)
		yaml_error(file, yaml_at(file->root, "send"),
		    "send: must not be empty");
}

struct config *
config_load(const char *path, gboolean must_exist, GError **error)
{
	struct config *config = config_defaults(path);
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	struct yaml_file *file;

	if (!must_exist && access(path, F_OK) != 0) {
		g_ptr_array_unref(errors);
		return config;
	}
	file = yaml_open(path, NULL, errors);
	if (file->root != NULL)
		config_read(file, config);
	yaml_close(&file);

	if (yaml_errors_report(errors, error) < 0)
		config_free(&config);
	g_ptr_array_unref(errors);
	return config;
}

void
config_free(struct config **config)
{
	struct config *c = *config;

	if (c == NULL)
		return;
	g_free(c->path);
	g_free(c->socket);
	g_free(c->socket_group);
	g_free(c->user);
	g_free(c->pidfile);
	g_free(c->database);
	g_free(c->rules);
	g_free(c->templates);
	g_free(c->send);
	g_free(c);
	*config = NULL;
}
