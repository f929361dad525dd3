/*
 * escalatorctl: the admin's tool. It reads the same configuration and
 * uses the same libraries as escalatord, so "process" runs a message
 * file through exactly the pipeline the milter runs.
 *
 *   check                      load config, rules and templates; print
 *                              "rules OK" or every problem
 *   process [-n] [-s SENDER] [-r RCPT]... FILE
 *                              as if FILE arrived by SMTP; -n: dry run
 *   cases                      one line per case
 *   show CASE                  the case, its tickets, audit log and mail
 *   outbox flush               send what is due now
 *   outbox retry [CASE]        make failed mail due again
 *   backup FILE                copy the database, live, into a new FILE
 *
 * Exit codes follow sysexits(3).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <gmime/gmime.h>

#include "common/clock.h"
#include "ctl/reports.h"
#include "templates/template.h"
#include "common/config.h"
#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "outbox/outbox.h"
#include "parser/message.h"
#include "rules/engine.h"
#include "store/store.h"

struct ctl {
	struct config *config;
	const char *config_path;
};

static int G_GNUC_NORETURN
usage(int code)
{
	fprintf(code ? stderr : stdout,
	    "usage: escalatorctl [-v] [-c CONFIG] COMMAND [ARGS]\n"
	    "  -v  log each decision (info level) on stderr\n"
	    "commands:\n"
	    "  check                          check config, rules, templates\n"
	    "  process [-n] [-s SENDER] [-r RCPT]... FILE\n"
	    "                                 run a message file through the "
	    "pipeline\n"
	    "  cases                          list cases\n"
	    "  show CASE                      show a case with its audit log\n"
	    "  outbox flush                   send mail that is due now\n"
	    "  outbox retry [CASE]            make failed mail due again\n"
	    "  graph PROCEDURE                the procedure as Graphviz DOT\n"
	    "  due [DAYS]                     deadlines coming, and missed in\n"
	    "                                 the last DAYS (default 30)\n"
	    "  report [--from DATE] [--to DATE]\n"
	    "                                 counts, medians and deadlines\n"
	    "                                 per procedure (dates YYYY-MM-DD;\n"
	    "                                 default: the last 30 days)\n"
	    "  backup FILE                    copy the database into a new "
	    "FILE\n"
	    "  render TEMPLATE [NAME=VALUE]...\n"
	    "                                 preview a template with sample "
	    "values\n");
	exit(code);
}

static int
report(const char *what, GError *error, int code)
{
	fprintf(stderr, "escalatorctl: %s: %s\n", what, error->message);
	g_error_free(error);
	return code;
}

static int
cmd_check(struct ctl *ctl)
{
	GError *error = NULL;
	struct rules *rules = rules_load(ctl->config->rules,
	    ctl->config->templates, &error);
	struct send_target *target;

	if (rules == NULL) {
		fprintf(stderr, "%s\n", error->message);
		g_error_free(error);
		return EX_CONFIG;
	}
	target = send_target_parse(ctl->config->send, &error);
	if (target == NULL || send_target_check(target, &error) < 0) {
		send_target_free(&target);
		rules_unref(&rules);
		return report("send", error, EX_CONFIG);
	}
	for (guint i = 0; i < rules->warnings->len; i++)
		printf("%s\n", (char *)rules->warnings->pdata[i]);
	printf("rules OK: %s (%u mailboxes, %u procedures, %u roles, %u "
	    "ticket patterns, %u warnings)\n", ctl->config->rules,
	    rules->mailboxes->len, rules->procedures->len, rules->roles->len,
	    rules->tickets->len, rules->warnings->len);
	send_target_free(&target);
	rules_unref(&rules);
	return EX_OK;
}

/* To and Cc of the message, when no recipient is given. */
static void
header_recipients(const char *data, size_t len, GPtrArray *rcpts)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	GMimeAddressType types[] = { GMIME_ADDRESS_TYPE_TO,
		GMIME_ADDRESS_TYPE_CC };

	for (size_t t = 0; msg != NULL && t < G_N_ELEMENTS(types); t++) {
		InternetAddressList *list = g_mime_message_get_addresses(msg,
		    types[t]);
		for (int i = 0; list && i < internet_address_list_length(list);
		    i++) {
			InternetAddress *a = internet_address_list_get_address(
			    list, i);
			if (INTERNET_ADDRESS_IS_MAILBOX(a))
				g_ptr_array_add(rcpts, g_ascii_strdown(
				    internet_address_mailbox_get_addr(
				    INTERNET_ADDRESS_MAILBOX(a)), -1));
		}
	}
	if (msg != NULL)
		g_object_unref(msg);
	g_object_unref(parser);
	g_object_unref(stream);
}

static void
print_outcome(const struct outcome *out, gboolean dry_run)
{
	char *tickets = g_strjoinv(", ", out->tickets);

	printf("%s%s: case %s\n", dry_run ? "dry run: would be " : "",
	    outcome_name(out->kind), out->case_id ? out->case_id : "none");
	printf("  procedure: %s\n", out->procedure ? out->procedure : "none");
	printf("  tickets: %s\n", *tickets ? tickets : "none");
	printf("  command: %s\n", out->command ? out->command : "none");
	if (out->ack_to != NULL)
		printf("  acknowledgement: to %s\n", out->ack_to);
	else
		printf("  acknowledgement: none (%s)\n", out->ack_skipped ?
		    out->ack_skipped : "not needed");
	g_free(tickets);
}

static int
process_file(struct ctl *ctl, const char *file, struct envelope *env,
    gboolean dry_run)
{
	GError *error = NULL;
	struct rules *rules;
	struct store *store;
	struct message *msg;
	struct outcome out;
	char *data;
	gsize len;
	int rc = EX_OK;

	if (!g_file_get_contents(file, &data, &len, &error))
		return report("process", error, EX_NOINPUT);
	rules = rules_load(ctl->config->rules, ctl->config->templates, &error);
	if (rules == NULL)
		return report("rules", error, EX_CONFIG);
	store = store_open(ctl->config->database, STORE_READWRITE, &error);
	if (store == NULL) {
		rules_unref(&rules);
		return report("store", error, EX_UNAVAILABLE);
	}
	msg = message_parse(data, len);
	if (env->recipients[0] == NULL) {
		GPtrArray *rcpts = g_ptr_array_new();
		header_recipients(data, len, rcpts);
		g_ptr_array_add(rcpts, NULL);
		env->recipients = (char **)g_ptr_array_free(rcpts, FALSE);
	}
	if (env->sender == NULL)
		env->sender = msg->from ? msg->from : "";

	if (engine_process(rules, store, clock_now(), dry_run, env, msg, &out,
	    &error) < 0) {
		rc = report("process", error, EX_TEMPFAIL);
	} else {
		print_outcome(&out, dry_run);
		outcome_clear(&out);
	}
	message_free(&msg);
	store_close(&store);
	rules_unref(&rules);
	g_free(data);
	return rc;
}

static int
cmd_process(struct ctl *ctl, int argc, char **argv)
{
	struct envelope env = { .queue_id = "escalatorctl" };
	GPtrArray *rcpts = g_ptr_array_new_with_free_func(g_free);
	gboolean dry_run = FALSE;
	int c, rc;

	optind = 1;
	while ((c = getopt(argc, argv, "ns:r:")) != -1) {
		if (c == 'n')
			dry_run = TRUE;
		else if (c == 's')
			env.sender = optarg;
		else if (c == 'r')	/* as the milter reads RCPT TO */
			g_ptr_array_add(rcpts, text_address_normalize(optarg));
		else
			usage(EX_USAGE);
	}
	if (optind != argc - 1)
		usage(EX_USAGE);
	g_ptr_array_add(rcpts, NULL);
	env.recipients = (char **)rcpts->pdata;
	rc = process_file(ctl, argv[optind], &env, dry_run);
	if (env.recipients != (char **)rcpts->pdata)
		g_strfreev(env.recipients);
	g_ptr_array_unref(rcpts);
	return rc;
}

static struct store *
open_reader(struct ctl *ctl)
{
	GError *error = NULL;
	struct store *store = store_open(ctl->config->database,
	    STORE_READONLY, &error);

	if (store == NULL)
		report("store", error, EX_UNAVAILABLE);
	return store;
}

static gboolean
print_case_line(const struct case_record *rec, void *unused)
{
	char *opened = report_time(rec->opened);
	char *deadline = report_time(rec->deadline);
	char *subject = text_printable(rec->subject, 50);

	(void)unused;
	printf("%-18s %-10s %-16s opened %s  due %s  %s  %s\n", rec->id,
	    rec->procedure, rec->state, opened, deadline,
	    rec->complainant ? rec->complainant : "-", subject);
	g_free(opened);
	g_free(deadline);
	g_free(subject);
	return TRUE;
}

static int
cmd_cases(struct ctl *ctl)
{
	struct store *store = open_reader(ctl);
	GError *error = NULL;
	int rc = EX_OK;

	if (store == NULL)
		return EX_UNAVAILABLE;
	if (store_cases_each(store, print_case_line, NULL, &error) < 0)
		rc = report("cases", error, EX_UNAVAILABLE);
	store_close(&store);
	return rc;
}

static gboolean
print_ticket(const char *ticket, void *unused)
{
	(void)unused;
	printf("  %s\n", ticket);
	return TRUE;
}

static gboolean
print_event(const struct event_record *ev, void *unused)
{
	char *at = report_time(ev->at);
	char *detail = text_printable(ev->detail, 300);

	(void)unused;
	printf("  %s  %-16s %-28s %s\n", at, ev->kind, ev->actor, detail);
	g_free(at);
	g_free(detail);
	return TRUE;
}

static gboolean
print_outgoing(const struct outgoing *mail, void *unused)
{
	static const char *const states[] = { "queued", "sent", "failed" };
	char *created = report_time(mail->created);
	char *subject = text_printable(mail->subject, 80);

	(void)unused;
	printf("  #%" G_GINT64_FORMAT " %s %s to %s (%s, %d attempts%s%s)\n"
	    "      Subject: %s\n      Message-ID: <%s>\n", mail->id, created,
	    mail->kind, mail->recipient, states[mail->state], mail->attempts,
	    mail->last_error ? ", last error: " : "",
	    mail->last_error ? mail->last_error : "", subject,
	    mail->message_id);
	g_free(created);
	g_free(subject);
	return TRUE;
}

static int
cmd_show(struct ctl *ctl, const char *case_id)
{
	struct store *store = open_reader(ctl);
	struct case_record rec = { 0 };
	GError *error = NULL;
	int found;

	if (store == NULL)
		return EX_UNAVAILABLE;
	found = store_case_get(store, case_id, &rec, &error);
	if (found <= 0) {
		store_close(&store);
		if (found < 0)
			return report("show", error, EX_UNAVAILABLE);
		fprintf(stderr, "escalatorctl: show: no case %s\n", case_id);
		return EX_DATAERR;
	}
	print_case_line(&rec, NULL);
	printf("tickets:\n");
	store_case_tickets_each(store, case_id, print_ticket, NULL, NULL);
	printf("audit log:\n");
	store_case_events_each(store, case_id, print_event, NULL, NULL);
	printf("outgoing mail:\n");
	store_case_outbox_each(store, case_id, print_outgoing, NULL, NULL);
	case_record_clear(&rec);
	store_close(&store);
	return EX_OK;
}

static int
cmd_outbox(struct ctl *ctl, int argc, char **argv)
{
	GError *error = NULL;
	struct store *store;
	struct send_target *target;
	int rc = EX_OK, count = 0;

	if (argc < 2 || (strcmp(argv[1], "flush") == 0 && argc != 2) ||
	    (strcmp(argv[1], "retry") == 0 && argc > 3))
		usage(EX_USAGE);
	store = store_open(ctl->config->database, STORE_READWRITE, &error);
	if (store == NULL)
		return report("store", error, EX_UNAVAILABLE);
	if (strcmp(argv[1], "flush") == 0) {
		target = send_target_parse(ctl->config->send, &error);
		if (target == NULL)
			rc = report("send", error, EX_CONFIG);
		else if ((count = outbox_run(store, target, clock_now(), NULL,
		    &error)) < 0)
			rc = report("outbox", error, EX_UNAVAILABLE);
		else
			printf("outbox: %d messages tried\n", count);
		send_target_free(&target);
	} else if (strcmp(argv[1], "retry") == 0) {
		if (store_begin(store, &error) < 0 ||
		    store_outbox_requeue(store, argc > 2 ? argv[2] : NULL,
		    clock_now(), &count, &error) < 0 ||
		    store_commit(store, &error) < 0)
			rc = report("outbox", error, EX_UNAVAILABLE);
		else
			printf("outbox: %d messages due again\n", count);
	} else {
		usage(EX_USAGE);
	}
	store_close(&store);
	return rc;
}

static int
cmd_graph(struct ctl *ctl, const char *name)
{
	GError *error = NULL;
	struct rules *rules = rules_load(ctl->config->rules,
	    ctl->config->templates, &error);
	const struct procedure *proc;

	if (rules == NULL) {
		fprintf(stderr, "%s\n", error->message);
		g_error_free(error);
		return EX_CONFIG;
	}
	proc = rules_procedure(rules, name);
	if (proc == NULL) {
		fprintf(stderr, "escalatorctl: graph: no procedure %s\n", name);
		rules_unref(&rules);
		return EX_DATAERR;
	}
	report_graph(stdout, proc);
	rules_unref(&rules);
	return EX_OK;
}

static int
cmd_due(struct ctl *ctl, int argc, char **argv)
{
	struct store *store = open_reader(ctl);
	GError *error = NULL;
	time_t now = clock_now();
	long days = argc > 1 ? strtol(argv[1], NULL, 10) : 30;
	int rc = EX_OK;

	if (store == NULL)
		return EX_UNAVAILABLE;
	if (days <= 0)
		usage(EX_USAGE);
	if (report_due(stdout, store, now, now - days * 86400, &error) < 0)
		rc = report("due", error, EX_UNAVAILABLE);
	store_close(&store);
	return rc;
}

/*
 * A live copy through SQLite's backup API: the daemon may go on
 * writing. Read-only, so it works as any user who may read the store.
 */
static int
cmd_backup(struct ctl *ctl, const char *file)
{
	struct store *store = open_reader(ctl);
	GError *error = NULL;
	int rc = EX_OK;

	if (store == NULL)
		return EX_UNAVAILABLE;
	if (store_backup(store, file, &error) < 0)
		rc = report("backup", error, g_error_matches(error, ESC_ERROR,
		    ESC_ERROR_IO) ? EX_CANTCREAT : EX_UNAVAILABLE);
	else
		printf("backup: %s written from %s\n", file,
		    ctl->config->database);
	store_close(&store);
	return rc;
}

/* "YYYY-MM-DD" as local midnight; 0 if malformed. */
static time_t
parse_date(const char *text)
{
	int y, m, d, used = 0;
	GDateTime *dt;
	time_t t;

	if (sscanf(text, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 ||
	    text[used] != '\0' || !g_date_valid_dmy((GDateDay)d,
	    (GDateMonth)m, (GDateYear)y))
		return 0;
	dt = g_date_time_new_local(y, m, d, 0, 0, 0);
	t = (time_t)g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return t;
}

static int
cmd_report(struct ctl *ctl, int argc, char **argv)
{
	time_t to = clock_now(), from = to - 30 * 86400;
	struct store *store;
	GError *error = NULL;
	int rc = EX_OK;

	for (int i = 1; i < argc; i += 2) {
		time_t *which = strcmp(argv[i], "--from") == 0 ? &from :
		    strcmp(argv[i], "--to") == 0 ? &to : NULL;

		if (which == NULL || i + 1 >= argc ||
		    (*which = parse_date(argv[i + 1])) == 0)
			usage(EX_USAGE);
	}
	store = open_reader(ctl);
	if (store == NULL)
		return EX_UNAVAILABLE;
	if (report_period(stdout, store, from, to, &error) < 0)
		rc = report("report", error, EX_UNAVAILABLE);
	store_close(&store);
	return rc;
}

/* Values a preview shows where the admin gives none. */
static const char *const sample_values[][2] = {
	{ "case_id", "ESC-2026-000042" }, { "procedure", "complaint" },
	{ "state", "escalated" }, { "previous_state", "open" },
	{ "tickets", "123456, 2024-0042" },
	{ "subject", "Transfer of example.com stuck" },
	{ "complainant", "olaf@example.com" }, { "owner", "" },
	{ "assignee", "rz-liaison@example.org" }, { "function", "root-zone" },
	{ "linked_case", "" }, { "deadline", "Tue 2026-12-08 16:00 CET" },
	{ "sender", "olaf@example.com" }, { "name", "Olaf Peters" },
	{ "command", "" }, { "command_text", "" },
	{ "text", "The transfer has been pending for three weeks." },
	{ "reason", "" },
};

/*
 * Print TEMPLATE (a name in the template folder) rendered with sample
 * values, each replaced by a NAME=VALUE argument; so an admin sees an
 * edit before a reload.
 */
static int
cmd_render(struct ctl *ctl, int argc, char **argv)
{
	GHashTable *vars = g_hash_table_new_full(g_str_hash, g_str_equal,
	    g_free, g_free);
	char *file = g_strconcat(argv[1], ".txt", NULL);
	char *path = g_build_filename(ctl->config->templates, file, NULL);
	GError *error = NULL;
	struct template *tpl = template_load(path, &error);
	char *subject, *body;

	g_free(file);
	g_free(path);
	if (tpl == NULL) {
		g_hash_table_unref(vars);
		return report("render", error, EX_DATAERR);
	}
	for (size_t i = 0; i < G_N_ELEMENTS(sample_values); i++)
		g_hash_table_insert(vars, g_strdup(sample_values[i][0]),
		    g_strdup(sample_values[i][1]));
	for (int i = 2; i < argc; i++) {
		const char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i])
			usage(EX_USAGE);
		g_hash_table_insert(vars, g_strndup(argv[i], (gsize)(eq -
		    argv[i])), g_strdup(eq + 1));
	}
	template_render(tpl, vars, &subject, &body);
	printf("Subject: %s\n\n%s", subject, body);
	g_free(subject);
	g_free(body);
	template_free(&tpl);
	g_hash_table_unref(vars);
	return EX_OK;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = { NULL, CONFIG_DEFAULT_PATH };
	GError *error = NULL;
	int c, rc;

	log_init("escalatorctl", TRUE, LOG_LEVEL_WARN);
	while ((c = getopt(argc, argv, "+c:vh")) != -1) {
		if (c == 'c')
			ctl.config_path = optarg;
		else if (c == 'v')
			log_set_level(LOG_LEVEL_INFO);
		else
			usage(c == 'h' ? EX_OK : EX_USAGE);
	}
	if (optind >= argc)
		usage(EX_USAGE);
	argc -= optind;
	argv += optind;

	ctl.config = config_load(ctl.config_path, FALSE, &error);
	if (ctl.config == NULL) {
		fprintf(stderr, "%s\n", error->message);
		g_error_free(error);
		return EX_CONFIG;
	}
	if (strcmp(argv[0], "check") == 0 && argc == 1)
		rc = cmd_check(&ctl);
	else if (strcmp(argv[0], "process") == 0)
		rc = cmd_process(&ctl, argc, argv);
	else if (strcmp(argv[0], "cases") == 0 && argc == 1)
		rc = cmd_cases(&ctl);
	else if (strcmp(argv[0], "show") == 0 && argc == 2)
		rc = cmd_show(&ctl, argv[1]);
	else if (strcmp(argv[0], "outbox") == 0)
		rc = cmd_outbox(&ctl, argc, argv);
	else if (strcmp(argv[0], "graph") == 0 && argc == 2)
		rc = cmd_graph(&ctl, argv[1]);
	else if (strcmp(argv[0], "due") == 0 && argc <= 2)
		rc = cmd_due(&ctl, argc, argv);
	else if (strcmp(argv[0], "report") == 0)
		rc = cmd_report(&ctl, argc, argv);
	else if (strcmp(argv[0], "backup") == 0 && argc == 2)
		rc = cmd_backup(&ctl, argv[1]);
	else if (strcmp(argv[0], "render") == 0 && argc >= 2)
		rc = cmd_render(&ctl, argc, argv);
	else
		usage(EX_USAGE);
	config_free(&ctl.config);
	return rc;
}
