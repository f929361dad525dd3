/*
 * escalatord: the escalator milter daemon.
 *
 * Start-up is a ladder; any rung that fails ends the program with a
 * sysexits code and one line saying why: read the configuration, load
 * the rules (refuse to start without valid rules), open the milter
 * socket as root, leave the terminal, write the pid file, drop root,
 * open the store, start the outbox and reload threads, and hand over to
 * libmilter. On SIGTERM libmilter stops accepting connections and drops
 * the sessions waiting for the MTA (the MTA tempfails those messages); a
 * message being processed finishes before the store is closed.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include "config.h"

#include "common/config.h"
#include "common/log.h"
#include "milter/callbacks.h"
#include "milter/daemon.h"
#include "milter/workers.h"
#include "outbox/send.h"
#include "rules/rules.h"
#include "store/store.h"

#define END_WAIT_SECONDS 30

struct options {
	const char *config_path;
	gboolean foreground;
	gboolean check_only;
};

static void
usage(FILE *out)
{
	fprintf(out, "usage: escalatord [-f] [-n] [-c CONFIG]\n"
	    "  -c CONFIG  configuration file (default %s)\n"
	    "  -f         stay in the foreground, log to stderr\n"
	    "  -n         check configuration and rules, then exit\n",
	    CONFIG_DEFAULT_PATH);
}

static void
parse_options(int argc, char **argv, struct options *opt)
{
	int c;

	opt->config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt(argc, argv, "c:fnh")) != -1) {
		switch (c) {
		case 'c':
			opt->config_path = optarg;
			break;
		case 'f':
			opt->foreground = TRUE;
			break;
		case 'n':
			opt->check_only = TRUE;
			break;
		case 'h':
			usage(stdout);
			exit(EX_OK);
		default:
			usage(stderr);
			exit(EX_USAGE);
		}
	}
	if (optind != argc) {
		usage(stderr);
		exit(EX_USAGE);
	}
}

static void G_GNUC_NORETURN
fail(int code, const char *what, GError *error)
{
	log_err("%s: %s", what, error ? error->message : "failed");
	if (error != NULL)
		g_error_free(error);
	exit(code);
}

/* Directories the dropped user writes to, made while still root. */
static void
prepare_directories(const struct config *config)
{
	GError *error = NULL;
	char *db_dir = g_path_get_dirname(config->database);
	char *pid_dir = config->pidfile ? g_path_get_dirname(config->pidfile) :
	    NULL;

	if (daemon_state_dir(db_dir, config->user, 0750, &error) < 0 ||
	    (pid_dir && daemon_state_dir(pid_dir, config->user, 0755,
	    &error) < 0))
		fail(EX_CANTCREAT, "start", error);
	g_free(db_dir);
	g_free(pid_dir);
}

/*
 * libmilter stops by dropping the sessions that wait for the MTA (their
 * messages are then tempfailed by the MTA and sent again later, and
 * nothing of them is stored, since all of it is one transaction at the
 * end); a message whose end is being processed finishes first.
 */
static void
wait_for_ends_running(void)
{
	if (workers_wait_for_none(callbacks_ends_running,
	    END_WAIT_SECONDS) > 0)
		log_warn("stop: %d messages still being processed after %d s",
		    callbacks_ends_running(), END_WAIT_SECONDS);
}

/* Until the signal thread waits for them, SIGUSR1 and SIGQUIT must not
 * kill us. */
static void
ignore_signal(int sig)
{
	(void)sig;
}

/* The root part of the ladder: socket, terminal, pid file, user. */
static void
become_daemon(const struct config *config, gboolean foreground)
{
	GError *error = NULL;

	prepare_directories(config);
	/* libmilter wants the filter registered before its socket opens. */
	if (smfi_register(*callbacks_filter()) == MI_FAILURE)
		fail(EX_SOFTWARE, "start", NULL);
	if (daemon_socket_open(config, &error) < 0)
		fail(EX_UNAVAILABLE, "start", error);
	if (!foreground && daemon_detach(&error) < 0)
		fail(EX_OSERR, "start", error);
	log_init("escalatord", foreground, config->log_level);
	if (config->pidfile && daemon_pidfile_write(config->pidfile,
	    &error) < 0)
		fail(EX_CANTCREAT, "start", error);
	if (daemon_drop_privileges(config->user, &error) < 0)
		fail(EX_NOPERM, "start", error);
}

/* Serve mail until libmilter stops; then finish and clean up. */
static int
serve(struct config *config, struct rules *rules,
    struct send_target *target)
{
	struct milter_shared shared = { 0 };
	GError *error = NULL;
	struct store *store;
	int rc;

	store = store_open(config->database, STORE_READWRITE, &error);
	if (store == NULL || store_set_synchronous(store,
	    config->synchronous_full ? STORE_SYNC_FULL : STORE_SYNC_NORMAL,
	    &error) < 0)
		fail(EX_UNAVAILABLE, "start", error);

	shared.config = config;
	shared.store = store;
	shared.outbox_wake = workers_outbox_wake;
	callbacks_init(&shared);
	callbacks_rules_swap(rules);
	if (workers_start(config, store, target, &error) < 0)
		fail(EX_OSERR, "start", error);

	log_info("escalatord %s started: socket=%s rules=%s database=%s",
	    PACKAGE_VERSION, config->socket, config->rules, config->database);
	rc = smfi_main();

	wait_for_ends_running();
	workers_stop();
	log_info("escalatord stopped");
	callbacks_rules_swap(NULL);
	store_close(&store);
	return rc == MI_SUCCESS ? EX_OK : EX_SOFTWARE;
}

int
main(int argc, char **argv)
{
	struct options opt = { 0 };
	struct config *config;
	struct rules *rules;
	struct send_target *target;
	GError *error = NULL;
	int rc = EX_OK;

	signal(SIGUSR1, ignore_signal);
	signal(SIGQUIT, ignore_signal);
	parse_options(argc, argv, &opt);
	log_init("escalatord", TRUE, LOG_LEVEL_INFO);
	config = config_load(opt.config_path, FALSE, &error);
	if (config == NULL)
		fail(EX_CONFIG, "configuration", error);
	log_set_level(config->log_level);
	rules = rules_load(config->rules, config->templates, &error);
	if (rules == NULL)
		fail(EX_CONFIG, "rules", error);
	for (guint i = 0; i < rules->warnings->len; i++)
		log_warn("rules: %s", (char *)rules->warnings->pdata[i]);
	target = send_target_parse(config->send, &error);
	if (target == NULL || send_target_check(target, &error) < 0)
		fail(EX_CONFIG, "send", error);

	if (opt.check_only) {
		printf("configuration %s and rules %s OK\n", config->path,
		    config->rules);
		rules_unref(&rules);
	} else {
		become_daemon(config, opt.foreground);
		rc = serve(config, rules, target);
		daemon_pidfile_remove(config->pidfile);
	}
	send_target_free(&target);
	config_free(&config);
	return rc;
}
