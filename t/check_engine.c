/*
 * check_engine.c: what a message does to the store, through the same
 * engine_process() call the milter makes: a complaint opens one case
 * and queues one acknowledgement; a redelivery changes nothing; a
 * complaint without tickets waits for them; automatic mail, replies to
 * our own mail, staff mail and bounces never get an answer; the rate
 * limit holds; a dry run stores nothing; a locked, read-only or full
 * store fails cleanly, and the retry goes through once the fault is
 * gone.
 */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sqlite3.h>

#include "common/error.h"
#include "common/log.h"
#include "rules/engine.h"
#include "t/testutil.h"

static struct rules *rules;
static struct store *store;
static char *dir;
static char *db_path;

/* Monday 2026-12-07 10:00 in Zurich. */
#define NOW ((time_t)1796634000)

static void
setup(void)
{
	char *path = test_path("t/rules/test-rules.yaml");
	char *templates = test_path("templates");
	GError *error = NULL;

	rules = rules_load(path, templates, &error);
	ck_assert_msg(rules != NULL, "rules: %s", error ? error->message : "");
	dir = test_tmpdir();
	db_path = g_build_filename(dir, "test.db", NULL);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store != NULL, "store: %s", error ? error->message : "");
	g_free(path);
	g_free(templates);
}

static void
teardown(void)
{
	store_close(&store);
	rules_unref(&rules);
	g_free(db_path);
	test_tmpdir_remove(dir);
}

static char *watched[] = { "escalation@example.org", NULL };
static char *emergency[] = { "root-mgmt@example.org", NULL };
static char *unwatched[] = { "someone@example.org", NULL };

/* Process TEXT (a whole message) sent from SENDER to RCPTS. */
static struct outcome
run_at(const char *text, const char *sender, char **rcpts, time_t now,
    gboolean dry_run)
{
	struct envelope env = { "TESTQ", sender, rcpts, NULL };
	struct message *msg = message_parse(text, strlen(text));
	struct outcome out;
	GError *error = NULL;

	ck_assert_msg(engine_process(rules, store, now, dry_run, &env, msg,
	    &out, &error) == 0, "engine: %s", error ? error->message : "");
	message_free(&msg);
	return out;
}

static struct outcome
run(const char *text, const char *sender, char **rcpts)
{
	return run_at(text, sender, rcpts, NOW, FALSE);
}

static char *
complaint(const char *from, const char *id, const char *subject,
    const char *body)
{
	return g_strdup_printf("From: Olaf Peters <%s>\r\n"
	    "To: escalation@example.org\r\nSubject: %s\r\n"
	    "Message-ID: <%s>\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
	    "\r\n%s\r\n", from, subject, id, body);
}

static gboolean
count_row(const struct case_record *rec, void *data)
{
	(void)rec;
	(*(int *)data)++;
	return TRUE;
}

static int
case_count(void)
{
	int n = 0;

	ck_assert_int_eq(store_cases_each(store, count_row, &n, NULL), 0);
	return n;
}

static gboolean
collect_mail(const struct outgoing *mail, void *data)
{
	GPtrArray *all = data;

	g_ptr_array_add(all, g_strdup_printf("%s|%s|%s", mail->recipient,
	    mail->subject, mail->body));
	return TRUE;
}

static GPtrArray *
mail_of(const char *case_id)
{
	GPtrArray *all = g_ptr_array_new_with_free_func(g_free);

	ck_assert_int_eq(store_case_outbox_each(store, case_id, collect_mail,
	    all, NULL), 0);
	return all;
}

START_TEST(complaint_opens_one_case_with_one_acknowledgement)
{
	char *text = complaint("olaf@example.com", "c1@example.com",
	    "Transfer of example.com", "See [IANA #123456] and "
	    "Ticket 2024-0042.");
	struct outcome out = run(text, "olaf@example.com", watched);
	struct case_record rec = { 0 };
	GPtrArray *mail;
	char *deadline;

	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_str_eq(out.case_id, "ESC-2026-000001");
	ck_assert_str_eq(out.ack_to, "olaf@example.com");
	ck_assert_int_eq(store_case_get(store, out.case_id, &rec, NULL), 1);
	ck_assert_str_eq(rec.state, "open");
	/* Two business days from Monday 10:00 is Wednesday 10:00. */
	ck_assert_int_eq(rec.deadline, NOW + 2 * 86400);

	mail = mail_of(out.case_id);
	/* The acknowledgement, then the notice to the desk. */
	ck_assert_int_eq(mail->len, 2);
	ck_assert_str_contains(mail->pdata[0], "ESC-2026-000001");
	ck_assert_str_contains(mail->pdata[0], "123456");
	ck_assert_str_contains(mail->pdata[0], "2024-0042");
	deadline = calendar_format(rules_procedure(rules,
	    "complaint")->calendar, rec.deadline);
	ck_assert_str_contains(mail->pdata[0], deadline);
	g_free(deadline);
	g_ptr_array_unref(mail);
	case_record_clear(&rec);
	outcome_clear(&out);
	g_free(text);
}
END_TEST

START_TEST(redelivery_changes_nothing)
{
	char *text = complaint("olaf@example.com", "c1@example.com",
	    "Transfer", "[IANA #123456]");
	struct outcome first = run(text, "olaf@example.com", watched);
	struct outcome again = run(text, "olaf@example.com", watched);
	GPtrArray *mail = mail_of(first.case_id);

	ck_assert_int_eq(again.kind, OUTCOME_DUPLICATE);
	ck_assert_str_eq(again.case_id, first.case_id);
	ck_assert_ptr_null(again.ack_to);
	ck_assert_int_eq(case_count(), 1);
	ck_assert_int_eq(mail->len, 2);
	g_ptr_array_unref(mail);
	outcome_clear(&first);
	outcome_clear(&again);
	g_free(text);
}
END_TEST

START_TEST(redelivery_without_message_id_is_recognised_by_digest)
{
	const char *text = "From: a@example.com\r\nTo: escalation@example.org"
	    "\r\nSubject: no id\r\nDate: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
	    "\r\nTicket 2024-0042\r\n";
	struct outcome first = run(text, "a@example.com", watched);
	struct outcome again = run(text, "a@example.com", watched);

	ck_assert_int_eq(first.kind, OUTCOME_OPENED);
	ck_assert_int_eq(again.kind, OUTCOME_DUPLICATE);
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&first);
	outcome_clear(&again);
}
END_TEST

/* Postfix writes "<TIME.QUEUEID@host>" into mail without a Message-ID,
 * anew at each delivery, and a missing Date too. */
START_TEST(redelivery_with_ids_made_by_the_mta_is_recognised)
{
	const char *first_copy = "From: a@example.com\r\n"
	    "To: escalation@example.org\r\nSubject: no id\r\n"
	    "Message-ID: <20261207100000.4AbCd1@mx.example.org>\r\n"
	    "Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n\r\nTicket 2024-0042\r\n";
	const char *second_copy = "From: a@example.com\r\n"
	    "To: escalation@example.org\r\nSubject: no id\r\n"
	    "Message-ID: <20261207100500.5XyZw2@mx.example.org>\r\n"
	    "Date: Mon, 7 Dec 2026 10:05:00 +0100\r\n\r\nTicket 2024-0042\r\n";
	struct envelope env1 = { "4AbCd1", "a@example.com", watched, NULL };
	struct envelope env2 = { "5XyZw2", "a@example.com", watched, NULL };
	struct message *m1 = message_parse(first_copy, strlen(first_copy));
	struct message *m2 = message_parse(second_copy, strlen(second_copy));
	struct outcome o1, o2;

	ck_assert_int_eq(engine_process(rules, store, NOW, FALSE, &env1, m1,
	    &o1, NULL), 0);
	ck_assert_int_eq(engine_process(rules, store, NOW + 300, FALSE, &env2,
	    m2, &o2, NULL), 0);
	ck_assert_int_eq(o1.kind, OUTCOME_OPENED);
	ck_assert_int_eq(o2.kind, OUTCOME_DUPLICATE);
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&o1);
	outcome_clear(&o2);
	message_free(&m1);
	message_free(&m2);
}
END_TEST

/* Two messages whose headers and text were all cut away are not the
 * same message. */
START_TEST(messages_with_nothing_to_identify_them_are_not_duplicates)
{
	struct outcome a = run("\r\n", "a@example.com", watched);
	struct outcome b = run("\r\n", "b@example.com", watched);

	ck_assert_int_eq(a.kind, OUTCOME_OPENED);
	ck_assert_int_eq(b.kind, OUTCOME_OPENED);
	ck_assert_str_ne(a.case_id, b.case_id);
	outcome_clear(&a);
	outcome_clear(&b);
}
END_TEST

START_TEST(complaint_without_tickets_waits_for_them)
{
	char *text = complaint("olaf@example.com", "c2@example.com",
	    "Something went wrong", "No numbers here.");
	struct outcome out = run(text, "olaf@example.com", watched);
	struct case_record rec = { 0 };
	GPtrArray *mail = mail_of(out.case_id);
	char *reply, *subject;
	struct outcome follow;

	ck_assert_int_eq(store_case_get(store, out.case_id, &rec, NULL), 1);
	ck_assert_str_eq(rec.state, "waiting-tickets");
	ck_assert_int_eq(rec.deadline, 0);
	ck_assert_int_eq(mail->len, 1);
	ck_assert_str_contains(mail->pdata[0], "ticket number");
	case_record_clear(&rec);

	/* The answer with the numbers starts the clock. */
	subject = g_strdup_printf("Re: [%s] numbers", out.case_id);
	reply = complaint("olaf@example.com", "c3@example.com", subject,
	    "It is [IANA #777777].");
	follow = run_at(reply, "olaf@example.com", watched, NOW + 3600,
	    FALSE);
	ck_assert_int_eq(follow.kind, OUTCOME_FOLLOWUP);
	ck_assert_int_eq(store_case_get(store, out.case_id, &rec, NULL), 1);
	ck_assert_str_eq(rec.state, "open");
	ck_assert_int_eq(rec.deadline, NOW + 3600 + 2 * 86400);
	case_record_clear(&rec);
	g_ptr_array_unref(mail);
	outcome_clear(&out);
	outcome_clear(&follow);
	g_free(text);
	g_free(reply);
	g_free(subject);
}
END_TEST

START_TEST(unwatched_mail_is_not_touched)
{
	char *text = complaint("olaf@example.com", "c4@example.com", "Hi",
	    "[IANA #123456]");
	struct outcome out = run(text, "olaf@example.com", unwatched);

	ck_assert_int_eq(out.kind, OUTCOME_NOT_WATCHED);
	ck_assert_ptr_null(out.case_id);
	ck_assert_int_eq(case_count(), 0);
	outcome_clear(&out);
	g_free(text);
}
END_TEST

static struct outcome
run_file(const char *name, const char *sender, char **rcpts)
{
	char *relative = g_build_filename("t/messages", name, NULL);
	char *text = test_read(relative, NULL);
	struct outcome out = run(text, sender, rcpts);

	g_free(text);
	g_free(relative);
	return out;
}

START_TEST(automatic_mail_is_never_answered)
{
	struct outcome oof = run_file(
	    "07-out-of-office-with-ticket-and-keyword.eml",
	    "lena.brandt@example.net", watched);
	struct outcome helpdesk = run_file("08-helpdesk-autoack-loop.eml",
	    "support@helpdesk.example.net", watched);
	struct outcome staff = run_file("06-outlook-forward-html-tnef.eml",
	    "jonas.berg@example.org", emergency);

	ck_assert_int_eq(oof.kind, OUTCOME_IGNORED);
	ck_assert_ptr_null(oof.ack_to);
	ck_assert_int_eq(helpdesk.kind, OUTCOME_IGNORED);
	ck_assert_ptr_null(helpdesk.ack_to);
	/* Staff forwarding to the emergency desk opens a case, unanswered. */
	ck_assert_int_eq(staff.kind, OUTCOME_OPENED);
	ck_assert_str_eq(staff.procedure, "emergency");
	ck_assert_ptr_null(staff.ack_to);
	ck_assert_str_eq(staff.ack_skipped, "internal sender");
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&oof);
	outcome_clear(&helpdesk);
	outcome_clear(&staff);
}
END_TEST

static gboolean
find_event(const struct event_record *ev, void *data)
{
	if (strcmp(ev->kind, "delivery-failed") == 0)
		*(gboolean *)data = TRUE;
	return TRUE;
}

START_TEST(bounce_of_our_mail_is_recorded_on_its_case)
{
	char *text = complaint("olaf@example.com", "c5@example.com",
	    "Transfer", "[IANA #123456]");
	struct outcome opened = run(text, "olaf@example.com", watched);
	struct outgoing ours = { 0 };
	struct outcome bounce;
	gboolean recorded = FALSE;

	/* Our acknowledgement, under the id the bounce quotes. */
	ours.case_id = opened.case_id;
	ours.kind = "ack";
	ours.sender = "escalation@example.org";
	ours.recipient = "olaf.peters@example.com";
	ours.subject = "x";
	ours.body = "x";
	ours.message_id = "ack-123456-1@escalation.example.org";
	ours.auto_submitted = "auto-replied";
	ours.created = NOW;
	ck_assert_int_eq(store_begin(store, NULL), 0);
	ck_assert_int_eq(store_outbox_queue(store, &ours, NULL), 0);
	ck_assert_int_eq(store_commit(store, NULL), 0);

	bounce = run_file("09-dsn-bounce-of-our-ack.eml", "", watched);
	ck_assert_int_eq(bounce.kind, OUTCOME_BOUNCE);
	ck_assert_str_eq(bounce.case_id, opened.case_id);
	ck_assert_ptr_null(bounce.ack_to);
	ck_assert_int_eq(case_count(), 1);
	store_case_events_each(store, opened.case_id, find_event, &recorded,
	    NULL);
	ck_assert(recorded);
	outcome_clear(&opened);
	outcome_clear(&bounce);
	g_free(text);
}
END_TEST

/* Our acknowledgement under the id the bounces in t/messages quote. */
static void
queue_our_ack(const char *case_id)
{
	struct outgoing ours = { 0 };

	ours.case_id = (char *)case_id;
	ours.kind = "ack";
	ours.sender = "escalation@example.org";
	ours.recipient = "olaf.peters@example.com";
	ours.subject = "x";
	ours.body = "x";
	ours.message_id = "ack-123456-1@escalation.example.org";
	ours.auto_submitted = "auto-replied";
	ours.created = NOW;
	ck_assert_int_eq(store_begin(store, NULL), 0);
	ck_assert_int_eq(store_outbox_queue(store, &ours, NULL), 0);
	ck_assert_int_eq(store_commit(store, NULL), 0);
}

/* RFC 3464 with only the headers returned, and qmail's plain text. */
static const char *const other_bounces[] = {
	"25-dsn-rfc3464-headers-only.eml",
	"26-dsn-nonstandard-qmail.eml",
};

START_TEST(bounce_in_another_form_is_recorded_on_its_case)
{
	char *text = complaint("olaf@example.com", "c8@example.com",
	    "Transfer", "[IANA #123456]");
	struct outcome opened = run(text, "olaf@example.com", watched);
	struct outcome bounce;
	gboolean recorded = FALSE;

	queue_our_ack(opened.case_id);
	bounce = run_file(other_bounces[_i], "", watched);
	ck_assert_int_eq(bounce.kind, OUTCOME_BOUNCE);
	ck_assert_str_eq(bounce.case_id, opened.case_id);
	ck_assert_ptr_null(bounce.ack_to);
	ck_assert_int_eq(case_count(), 1);
	store_case_events_each(store, opened.case_id, find_event, &recorded,
	    NULL);
	ck_assert(recorded);
	outcome_clear(&opened);
	outcome_clear(&bounce);
	g_free(text);
}
END_TEST

/* Without a Message-ID, or with two, a redelivery is still one case. */
static const char *const odd_id_files[] = {
	"29-missing-message-id.eml",
	"30-duplicated-message-ids.eml",
};

START_TEST(redelivery_with_odd_message_ids_is_recognised)
{
	struct outcome first = run_file(odd_id_files[_i],
	    "olaf.peters@example.com", watched);
	struct outcome again = run_file(odd_id_files[_i],
	    "olaf.peters@example.com", watched);

	ck_assert_int_eq(first.kind, OUTCOME_OPENED);
	ck_assert_str_eq(first.ack_to, "olaf.peters@example.com");
	ck_assert_int_eq(again.kind, OUTCOME_DUPLICATE);
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&first);
	outcome_clear(&again);
}
END_TEST

START_TEST(acknowledgements_are_rate_limited_per_sender)
{
	int acked = 0;

	for (int i = 0; i < 5; i++) {
		char *id = g_strdup_printf("rate-%d@example.com", i);
		char *text = complaint("olaf@example.com", id, "Again",
		    "[IANA #123456]");
		struct outcome out = run(text, "olaf@example.com", watched);

		ck_assert_int_eq(out.kind, OUTCOME_OPENED);
		acked += out.ack_to != NULL;
		if (i >= 3)
			ck_assert_str_eq(out.ack_skipped, "rate limit");
		outcome_clear(&out);
		g_free(text);
		g_free(id);
	}
	ck_assert_int_eq(acked, 3);
}
END_TEST

START_TEST(dry_run_stores_nothing)
{
	char *text = complaint("olaf@example.com", "c6@example.com",
	    "Transfer", "[IANA #123456]");
	struct outcome dry = run_at(text, "olaf@example.com", watched, NOW,
	    TRUE);
	struct outcome real = run(text, "olaf@example.com", watched);

	ck_assert_int_eq(dry.kind, OUTCOME_OPENED);
	ck_assert_int_eq(real.kind, OUTCOME_OPENED);
	ck_assert_str_eq(real.case_id, dry.case_id);
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&dry);
	outcome_clear(&real);
	g_free(text);
}
END_TEST

START_TEST(locked_store_fails_and_keeps_nothing)
{
	char *text = complaint("olaf@example.com", "c7@example.com",
	    "Transfer", "[IANA #123456]");
	struct envelope env = { "TESTQ", "olaf@example.com", watched, NULL };
	struct message *msg = message_parse(text, strlen(text));
	struct outcome out;
	GError *error = NULL;
	sqlite3 *other;

	/* Another process holds the write lock. */
	ck_assert_int_eq(sqlite3_open(db_path, &other), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
	    NULL), SQLITE_OK);
	store_set_busy_timeout(store, 20);
	ck_assert_int_eq(engine_process(rules, store, NOW, FALSE, &env, msg,
	    &out, &error), -1);
	ck_assert(g_error_matches(error, ESC_ERROR, ESC_ERROR_BUSY));
	g_clear_error(&error);
	sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(other);

	/* The MTA's retry then goes through. */
	ck_assert_int_eq(engine_process(rules, store, NOW, FALSE, &env, msg,
	    &out, &error), 0);
	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	outcome_clear(&out);
	message_free(&msg);
	g_free(text);
}
END_TEST

/* Process TEXT expecting the store to fail with CODE and WANT. */
static void
run_fails(const char *text, int code, const char *want)
{
	struct envelope env = { "TESTQ", "olaf@example.com", watched, NULL };
	struct message *msg = message_parse(text, strlen(text));
	struct outcome out;
	GError *error = NULL;

	ck_assert_int_eq(engine_process(rules, store, NOW, FALSE, &env, msg,
	    &out, &error), -1);
	ck_assert_msg(g_error_matches(error, ESC_ERROR, code),
	    "got error %d \"%s\", want %d", error ? error->code : -1,
	    error ? error->message : "none", code);
	ck_assert_str_contains(error->message, want);
	g_error_free(error);
	message_free(&msg);
}

/*
 * A store that cannot be written to (opened read-only, as after a
 * remount) fails each message with ESC_ERROR_STORE, which the milter
 * tempfails; once it can be written to again the MTA's retry opens the
 * case.
 */
START_TEST(read_only_store_fails_then_the_retry_goes_through)
{
	char *text = complaint("olaf@example.com", "ro1@example.com",
	    "Transfer", "[IANA #123456]");
	struct outcome out;
	GError *error = NULL;

	store_close(&store);
	store = store_open(db_path, STORE_READONLY, &error);
	ck_assert_msg(store != NULL, "read-only: %s", error ? error->message :
	    "");
	run_fails(text, ESC_ERROR_STORE, "read-only");
	ck_assert_int_eq(case_count(), 0);

	store_close(&store);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_ptr_nonnull(store);
	out = run(text, "olaf@example.com", watched);
	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_str_eq(out.ack_to, "olaf@example.com");
	ck_assert_int_eq(case_count(), 1);
	outcome_clear(&out);
	g_free(text);
}
END_TEST

/*
 * A database file the daemon's user may not write: SQLite would open it
 * read-only without a word and stay so after a chmod, tempfailing every
 * message until a restart. Opening it fails instead, saying why. Root
 * writes any file, so the check runs as nobody, in a child.
 */
START_TEST(database_file_without_write_permission_is_refused)
{
	char *path = g_build_filename(dir, "ro.db", NULL);
	struct store *ro;
	GError *error = NULL;
	pid_t pid;
	int status;

	ck_assert_int_eq(chmod(dir, 0777), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (getuid() == 0 && (setgid(65534) != 0 ||
		    setuid(65534) != 0))
			_exit(2);
		ro = store_open(path, STORE_READWRITE, NULL);
		store_close(&ro);
		if (chmod(path, 0440) != 0)
			_exit(3);
		ro = store_open(path, STORE_READWRITE, &error);
		if (ro != NULL)
			_exit(4);
		if (!g_error_matches(error, ESC_ERROR, ESC_ERROR_STORE) ||
		    strstr(error->message, "read-only") == NULL)
			_exit(5);
		g_error_free(error);
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child: got status %d, want 0 (2: setuid, 3: chmod, 4: opened, "
	    "5: wrong error)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	g_free(path);
}
END_TEST

/*
 * A full database (its size limit standing in for a full disk) fails
 * the message that does not fit, keeps nothing of it, and takes the
 * same message once there is room.
 */
START_TEST(full_store_fails_then_the_retry_goes_through)
{
	GError *error = NULL;
	struct outcome out;
	char *text = NULL, *log = NULL;
	int opened = 0;
	int rc = 0;

	/* No room beyond the pages the schema uses: fill what is left. */
	ck_assert_int_eq(store_set_max_size(store, 1, &error), 0);
	for (int i = 0; rc == 0 && i < 1000; i++) {
		char *id = g_strdup_printf("full-%d@example.com", i);
		struct envelope env = { "TESTQ", "olaf@example.com", watched,
			NULL };
		struct message *msg;

		g_free(text);
		text = complaint("olaf@example.com", id, "Transfer",
		    "[IANA #123456] and a long text to fill the pages up.");
		msg = message_parse(text, strlen(text));
		g_free(log);
		log_capture_start();
		rc = engine_process(rules, store, NOW + i, FALSE, &env, msg,
		    &out, &error);
		log = log_capture_stop();
		if (rc == 0) {
			opened++;
			outcome_clear(&out);
		}
		message_free(&msg);
		g_free(id);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_msg(g_error_matches(error, ESC_ERROR, ESC_ERROR_STORE),
	    "got \"%s\", want a store error", error->message);
	ck_assert_str_contains(error->message, "full");
	g_clear_error(&error);
	ck_assert_int_eq(case_count(), opened);
	/* Nothing of the failed message happened, and the log says none
	 * of it (the milter logs the tempfail). */
	ck_assert_msg(strstr(log, "TESTQ: case=") == NULL, "logged for the "
	    "failed message:\n%s", log);
	g_free(log);

	/* Room again: the MTA's retry of the same message goes through. */
	ck_assert_int_eq(store_set_max_size(store, 0, &error), 0);
	out = run_at(text, "olaf@example.com", watched, NOW + 2000, FALSE);
	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_int_eq(case_count(), opened + 1);
	outcome_clear(&out);
	g_free(text);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("engine");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, complaint_opens_one_case_with_one_acknowledgement);
	tcase_add_test(tc, redelivery_changes_nothing);
	tcase_add_test(tc,
	    redelivery_without_message_id_is_recognised_by_digest);
	tcase_add_test(tc,
	    redelivery_with_ids_made_by_the_mta_is_recognised);
	tcase_add_test(tc,
	    messages_with_nothing_to_identify_them_are_not_duplicates);
	tcase_add_test(tc, complaint_without_tickets_waits_for_them);
	tcase_add_test(tc, unwatched_mail_is_not_touched);
	tcase_add_test(tc, automatic_mail_is_never_answered);
	tcase_add_test(tc, bounce_of_our_mail_is_recorded_on_its_case);
	tcase_add_loop_test(tc, bounce_in_another_form_is_recorded_on_its_case,
	    0, G_N_ELEMENTS(other_bounces));
	tcase_add_loop_test(tc, redelivery_with_odd_message_ids_is_recognised,
	    0, G_N_ELEMENTS(odd_id_files));
	tcase_add_test(tc, acknowledgements_are_rate_limited_per_sender);
	tcase_add_test(tc, dry_run_stores_nothing);
	tcase_add_test(tc, locked_store_fails_and_keeps_nothing);
	tcase_add_test(tc, read_only_store_fails_then_the_retry_goes_through);
	tcase_add_test(tc, database_file_without_write_permission_is_refused);
	tcase_add_test(tc, full_store_fails_then_the_retry_goes_through);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
