/*
 * check_store.c: the SQLite store against its contract in store.h.
 * Every test gets its own temporary directory with a fresh read-write
 * store in it; tests that need a second connection (a competing writer,
 * a reader, a look at the raw file) open it on the same path.
 */
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>
#include <sqlite3.h>

#include "common/error.h"
#include "store/store.h"
#include "t/testutil.h"

static char *tmpdir;
static char *db_path;
static struct store *store;
static GError *error;

#define ERROR_TEXT (error != NULL ? error->message : "no error")

/* A call that must succeed; on failure, show the store's reason. */
#define OK(call) \
	ck_assert_msg((call) == 0, "%s: got failure (%s), want success", \
	    #call, ERROR_TEXT)

#define EXPECT_INT(got, want) do { \
	gint64 got_ = (got), want_ = (want); \
	ck_assert_msg(got_ == want_, "%s: got %" G_GINT64_FORMAT \
	    ", want %" G_GINT64_FORMAT, #got, got_, want_); \
} while (0)

#define EXPECT_STR(got, want) do { \
	const char *got_ = (got), *want_ = (want); \
	ck_assert_msg(got_ == NULL || want_ == NULL ? got_ == want_ : \
	    strcmp(got_, want_) == 0, "%s: got \"%s\", want \"%s\"", \
	    #got, got_ == NULL ? "(null)" : got_, \
	    want_ == NULL ? "(null)" : want_); \
} while (0)

/* A failure with the given error code whose text contains WANT. */
#define EXPECT_FAIL(call, want_code, want) do { \
	g_clear_error(&error); \
	EXPECT_INT((call), -1); \
	ck_assert_msg(error != NULL, "%s: got no error", #call); \
	EXPECT_INT(error->code, (want_code)); \
	ck_assert_str_contains(error->message, (want)); \
	g_clear_error(&error); \
} while (0)

static void
setup(void)
{
	tmpdir = test_tmpdir();
	db_path = g_build_filename(tmpdir, "escalator.db", NULL);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store != NULL, "store_open: got NULL (%s)", ERROR_TEXT);
}

static void
teardown(void)
{
	store_close(&store);
	g_clear_error(&error);
	g_free(db_path);
	test_tmpdir_remove(tmpdir);
}

/*
 * Helpers.
 */

static sqlite3 *
raw_open(void)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL);

	ck_assert_msg(rc == SQLITE_OK, "sqlite3_open_v2: got %s, want ok",
	    sqlite3_errstr(rc));
	return db;
}

static void
raw_exec(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	ck_assert_msg(rc == SQLITE_OK, "%s: got %s, want ok", sql,
	    sqlite3_errmsg(db));
}

/* The first column of the first row of SQL, as text; caller frees. */
static char *
raw_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt;
	char *text = NULL;

	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL),
	    SQLITE_OK);
	if (sqlite3_step(stmt) == SQLITE_ROW)
		text = g_strdup((const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	return text;
}

static void
begin(void)
{
	OK(store_begin(store, &error));
}

static void
commit(void)
{
	OK(store_commit(store, &error));
}

static void
make_case(const char *id, time_t opened)
{
	struct case_record rec = {
		.id = (char *)id,
		.procedure = "complaint",
		.state = "open",
		.complainant = "alice@example.org",
		.subject = "tickets lost",
		.opened = opened,
		.updated = opened,
	};

	OK(store_case_create(store, &rec, &error));
}

static gint64
queue_mail(const char *case_id, const char *recipient,
    const char *message_id, time_t created, time_t next)
{
	struct outgoing mail = {
		.case_id = (char *)case_id,
		.kind = "ack",
		.sender = "escalation@registry.example",
		.sender_name = "Escalation Desk",
		.recipient = (char *)recipient,
		.subject = "[ESC-2026-000001] received",
		.body = "We have your complaint.\n",
		.message_id = (char *)message_id,
		.in_reply_to = "orig@example.org",
		.references = "<orig@example.org>",
		.auto_submitted = "auto-replied",
		.created = created,
		.next_attempt = next,
	};

	OK(store_outbox_queue(store, &mail, &error));
	ck_assert_msg(mail.id > 0, "queued id: got %" G_GINT64_FORMAT
	    ", want > 0", mail.id);
	return mail.id;
}

static gboolean
count_case(const struct case_record *rec, void *data)
{
	(void)rec;
	(*(int *)data)++;
	return TRUE;
}

static gboolean
collect_case_id(const struct case_record *rec, void *data)
{
	GString *out = data;

	g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "",
	    rec->id);
	return out->len < 30;
}

static gboolean
collect_ticket(const char *ticket, void *data)
{
	GString *out = data;

	g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "",
	    ticket);
	return TRUE;
}

static gboolean
collect_event_kind(const struct event_record *rec, void *data)
{
	GString *out = data;

	g_string_append_printf(out, "%s%s", out->len > 0 ? " " : "",
	    rec->kind);
	return TRUE;
}

/* Copy the one outbox row of a case out, for its state and counts. */
static gboolean
copy_outgoing(const struct outgoing *mail, void *data)
{
	struct outgoing *copy = data;

	outgoing_clear(copy);
	*copy = *mail;
	copy->case_id = g_strdup(mail->case_id);
	copy->kind = g_strdup(mail->kind);
	copy->sender = g_strdup(mail->sender);
	copy->sender_name = g_strdup(mail->sender_name);
	copy->recipient = g_strdup(mail->recipient);
	copy->subject = g_strdup(mail->subject);
	copy->body = g_strdup(mail->body);
	copy->message_id = g_strdup(mail->message_id);
	copy->in_reply_to = g_strdup(mail->in_reply_to);
	copy->references = g_strdup(mail->references);
	copy->auto_submitted = g_strdup(mail->auto_submitted);
	copy->last_error = g_strdup(mail->last_error);
	return TRUE;
}

static void
outbox_row(const char *case_id, struct outgoing *mail_r)
{
	memset(mail_r, 0, sizeof(*mail_r));
	OK(store_case_outbox_each(store, case_id, copy_outgoing, mail_r,
	    &error));
	ck_assert_msg(mail_r->id != 0, "outbox of %s: got no row", case_id);
}

/*
 * Schema.
 */

START_TEST(test_store_open_to_all_users_is_refused)
{
	store_close(&store);
	ck_assert_int_eq(chmod(db_path, 0644), 0);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_ptr_null(store);
	ck_assert_ptr_nonnull(error);
	ck_assert_str_contains(error->message, "open to all users");
	g_clear_error(&error);
	ck_assert_int_eq(chmod(db_path, 0640), 0);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store != NULL, "store_open: %s", ERROR_TEXT);
}
END_TEST

START_TEST(test_open_creates_latest_schema_in_wal_mode)
{
	static const char *const tables[] = { "cases", "case_tickets",
		"messages", "events", "outbox", "sequences" };
	struct stat st;
	sqlite3 *db;
	char *text;
	mode_t old;

	/* The mode is ours even under a umask that would narrow it. */
	store_close(&store);
	ck_assert_int_eq(unlink(db_path), 0);
	old = umask(077);
	store = store_open(db_path, STORE_READWRITE, &error);
	umask(old);
	ck_assert_msg(store != NULL, "store_open: %s", ERROR_TEXT);
	ck_assert_int_eq(stat(db_path, &st), 0);
	EXPECT_INT(st.st_mode & 0777, 0640);

	db = raw_open();
	text = raw_text(db, "PRAGMA user_version");
	EXPECT_STR(text, "2");
	g_free(text);
	text = raw_text(db, "PRAGMA journal_mode");
	EXPECT_STR(text, "wal");
	g_free(text);
	for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
		char *sql = g_strdup_printf("SELECT name FROM sqlite_master"
		    " WHERE type = 'table' AND name = '%s'", tables[i]);

		text = raw_text(db, sql);
		EXPECT_STR(text, tables[i]);
		g_free(text);
		g_free(sql);
	}
	sqlite3_close(db);
}
END_TEST

START_TEST(test_reopen_keeps_data_and_does_not_migrate)
{
	struct case_record rec;
	sqlite3 *db;
	char *text;

	begin();
	make_case("ESC-2026-000001", 1000);
	commit();
	store_close(&store);

	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store != NULL, "reopen: %s", ERROR_TEXT);
	EXPECT_INT(store_case_get(store, "ESC-2026-000001", &rec, &error), 1);
	EXPECT_STR(rec.subject, "tickets lost");
	case_record_clear(&rec);

	/* An up-to-date store runs no migration at all. */
	db = raw_open();
	EXPECT_INT(schema_migrate(db, FALSE, &error), 0);
	text = raw_text(db, "PRAGMA user_version");
	EXPECT_STR(text, "2");
	g_free(text);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_newer_schema_is_refused)
{
	sqlite3 *db;

	store_close(&store);
	db = raw_open();
	raw_exec(db, "PRAGMA user_version = 99");
	sqlite3_close(db);

	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store == NULL, "store_open: got a store, want NULL");
	ck_assert_str_contains(error->message, "schema version 99 is newer");
}
END_TEST

/*
 * Messages.
 */

START_TEST(test_message_seen_after_record)
{
	static const struct {
		const char *key;
		const char *case_id;
	} messages[] = {
		{ "abc@mail.example.org", "ESC-2026-000001" },
		{ "digest:9f86d081884c7d65", NULL },
	};
	char *case_id;

	begin();
	make_case("ESC-2026-000001", 1000);
	for (size_t i = 0; i < G_N_ELEMENTS(messages); i++) {
		const char *key = messages[i].key;

		EXPECT_INT(store_message_seen(store, key, &case_id, &error),
		    0);
		EXPECT_STR(case_id, NULL);
		OK(store_message_record(store, key, messages[i].case_id,
		    1000, &error));
		EXPECT_INT(store_message_seen(store, key, &case_id, &error),
		    1);
		EXPECT_STR(case_id, messages[i].case_id);
		g_free(case_id);
		EXPECT_INT(store_message_seen(store, key, NULL, &error), 1);

		/* Recording twice means a dedupe check was skipped. */
		EXPECT_FAIL(store_message_record(store, key, NULL, 1001,
		    &error), ESC_ERROR_STORE, "UNIQUE constraint failed");
	}
	commit();
}
END_TEST

START_TEST(test_case_by_message_id_finds_seen_and_sent)
{
	static const struct {
		const char *message_id;
		int found;
		const char *case_id;
	} cases[] = {
		{ "complaint@example.org", 1, "ESC-2026-000001" },
		{ "ack.1@registry.example", 1, "ESC-2026-000002" },
		{ "caseless@example.org", 0, NULL },
		{ "unknown@example.org", 0, NULL },
	};
	char *case_id;

	begin();
	make_case("ESC-2026-000001", 1000);
	make_case("ESC-2026-000002", 1000);
	OK(store_message_record(store, "complaint@example.org",
	    "ESC-2026-000001", 1000, &error));
	OK(store_message_record(store, "caseless@example.org", NULL, 1000,
	    &error));
	queue_mail("ESC-2026-000002", "alice@example.org",
	    "ack.1@registry.example", 1000, 0);
	commit();

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int ret = store_case_by_message_id(store,
		    cases[i].message_id, &case_id, &error);

		ck_assert_msg(ret == cases[i].found, "%s: got %d, want %d",
		    cases[i].message_id, ret, cases[i].found);
		EXPECT_STR(case_id, cases[i].case_id);
		g_free(case_id);
	}
}
END_TEST

/*
 * Cases.
 */

START_TEST(test_sequence_per_procedure_and_year)
{
	static const struct {
		const char *procedure;
		int year;
		gint64 want;
	} steps[] = {
		{ "complaint", 2026, 1 },
		{ "complaint", 2026, 2 },
		{ "emergency", 2026, 1 },
		{ "complaint", 2027, 1 },
		{ "complaint", 2026, 3 },
		{ "emergency", 2026, 2 },
		{ "complaint", 2027, 2 },
	};
	gint64 number;

	begin();
	for (size_t i = 0; i < G_N_ELEMENTS(steps); i++) {
		number = 0;
		OK(store_case_next_number(store, steps[i].procedure,
		    steps[i].year, &number, &error));
		ck_assert_msg(number == steps[i].want, "step %zu (%s %d): "
		    "got %" G_GINT64_FORMAT ", want %" G_GINT64_FORMAT, i,
		    steps[i].procedure, steps[i].year, number,
		    steps[i].want);
	}
	commit();
}
END_TEST

START_TEST(test_case_create_get_and_set_state)
{
	struct case_record rec;

	begin();
	make_case("ESC-2026-000001", 1000);
	EXPECT_INT(store_case_get(store, "ESC-2026-000001", &rec, &error), 1);
	EXPECT_STR(rec.id, "ESC-2026-000001");
	EXPECT_STR(rec.procedure, "complaint");
	EXPECT_STR(rec.state, "open");
	EXPECT_STR(rec.complainant, "alice@example.org");
	EXPECT_STR(rec.subject, "tickets lost");
	EXPECT_INT(rec.opened, 1000);
	EXPECT_INT(rec.updated, 1000);
	EXPECT_INT(rec.deadline, 0);
	case_record_clear(&rec);
	EXPECT_STR(rec.id, NULL);

	OK(store_case_set_state(store, "ESC-2026-000001", "liaison", 5000,
	    2000, &error));
	EXPECT_INT(store_case_get(store, "ESC-2026-000001", &rec, &error), 1);
	EXPECT_STR(rec.state, "liaison");
	EXPECT_INT(rec.deadline, 5000);
	EXPECT_INT(rec.updated, 2000);
	EXPECT_INT(rec.opened, 1000);
	case_record_clear(&rec);

	OK(store_case_set_state(store, "ESC-2026-000001", "closed", 0, 3000,
	    &error));
	EXPECT_INT(store_case_get(store, "ESC-2026-000001", &rec, &error), 1);
	EXPECT_INT(rec.deadline, 0);
	case_record_clear(&rec);

	EXPECT_FAIL(store_case_set_state(store, "ESC-2026-999999", "open", 0,
	    3000, &error), ESC_ERROR_STORE, "ESC-2026-999999: no such row");
	EXPECT_FAIL(store_case_create(store, &(struct case_record){
	    .id = "ESC-2026-000001", .procedure = "complaint",
	    .state = "open" }, &error), ESC_ERROR_STORE,
	    "store: insert case ESC-2026-000001: UNIQUE constraint failed");
	commit();
}
END_TEST

START_TEST(test_case_get_missing_gives_0)
{
	struct case_record rec = { .id = (char *)"stale" };

	EXPECT_INT(store_case_get(store, "ESC-2026-000404", &rec, &error), 0);
	EXPECT_STR(rec.id, NULL);
	ck_assert_msg(error == NULL, "got error %s, want none", ERROR_TEXT);
}
END_TEST

START_TEST(test_cases_listed_by_opening_and_walk_stops)
{
	GString *ids = g_string_new(NULL);

	begin();
	make_case("ESC-2026-000003", 3000);
	make_case("ESC-2026-000001", 1000);
	make_case("ESC-2026-000002", 2000);
	commit();

	/* collect_case_id stops once it holds two ids (31 bytes). */
	OK(store_cases_each(store, collect_case_id, ids, &error));
	EXPECT_STR(ids->str, "ESC-2026-000001 ESC-2026-000002");
	g_string_free(ids, TRUE);
}
END_TEST

START_TEST(test_tickets_unique_per_case_in_order)
{
	static const char *const added[] = { "T-3", "T-1", "T-3", "T-2",
		"T-1" };
	GString *got = g_string_new(NULL);

	begin();
	make_case("ESC-2026-000001", 1000);
	make_case("ESC-2026-000002", 1000);
	for (size_t i = 0; i < G_N_ELEMENTS(added); i++)
		OK(store_case_add_ticket(store, "ESC-2026-000001", added[i],
		    &error));
	OK(store_case_add_ticket(store, "ESC-2026-000002", "T-1", &error));
	commit();

	OK(store_case_tickets_each(store, "ESC-2026-000001", collect_ticket,
	    got, &error));
	EXPECT_STR(got->str, "T-3 T-1 T-2");
	g_string_truncate(got, 0);
	OK(store_case_tickets_each(store, "ESC-2026-000002", collect_ticket,
	    got, &error));
	EXPECT_STR(got->str, "T-1");
	g_string_free(got, TRUE);
}
END_TEST

START_TEST(test_events_listed_in_time_order)
{
	static const struct {
		time_t at;
		const char *kind;
	} added[] = {
		{ 300, "d" }, { 100, "a" }, { 200, "b" }, { 200, "c" },
	};
	GString *got = g_string_new(NULL);

	begin();
	make_case("ESC-2026-000001", 100);
	make_case("ESC-2026-000002", 100);
	for (size_t i = 0; i < G_N_ELEMENTS(added); i++)
		OK(store_event_add(store, "ESC-2026-000001", added[i].at,
		    "escalator", added[i].kind, NULL, &error));
	OK(store_event_add(store, "ESC-2026-000002", 150, "escalator",
	    "other", "not this case", &error));
	commit();

	/* Same time: the order they were added in. */
	OK(store_case_events_each(store, "ESC-2026-000001",
	    collect_event_kind, got, &error));
	EXPECT_STR(got->str, "a b c d");
	g_string_free(got, TRUE);
}
END_TEST

START_TEST(test_foreign_keys_are_enforced)
{
	begin();
	EXPECT_FAIL(store_event_add(store, "ESC-2026-000404", 100, "x",
	    "opened", NULL, &error), ESC_ERROR_STORE,
	    "FOREIGN KEY constraint failed");
	store_rollback(store);
}
END_TEST

/*
 * Outbox.
 */

START_TEST(test_outbox_due_respects_next_attempt_and_sent)
{
	struct outgoing mail;
	gint64 first, second;

	begin();
	make_case("ESC-2026-000001", 100);
	make_case("ESC-2026-000002", 100);
	first = queue_mail("ESC-2026-000001", "alice@example.org",
	    "ack.1@registry.example", 100, 0);
	second = queue_mail("ESC-2026-000002", "bob@example.org",
	    "ack.2@registry.example", 50, 500);
	commit();

	EXPECT_INT(store_outbox_next_due(store, 99, &mail, &error), 0);
	EXPECT_INT(store_outbox_next_due(store, 100, &mail, &error), 1);
	EXPECT_INT(mail.id, first);
	EXPECT_STR(mail.case_id, "ESC-2026-000001");
	EXPECT_STR(mail.kind, "ack");
	EXPECT_STR(mail.sender, "escalation@registry.example");
	EXPECT_STR(mail.sender_name, "Escalation Desk");
	EXPECT_STR(mail.recipient, "alice@example.org");
	EXPECT_STR(mail.subject, "[ESC-2026-000001] received");
	EXPECT_STR(mail.body, "We have your complaint.\n");
	EXPECT_STR(mail.message_id, "ack.1@registry.example");
	EXPECT_STR(mail.in_reply_to, "orig@example.org");
	EXPECT_STR(mail.references, "<orig@example.org>");
	EXPECT_STR(mail.auto_submitted, "auto-replied");
	EXPECT_INT(mail.created, 100);
	EXPECT_INT(mail.next_attempt, 100);
	EXPECT_INT(mail.attempts, 0);
	EXPECT_INT(mail.state, OUTGOING_QUEUED);
	EXPECT_STR(mail.last_error, NULL);
	outgoing_clear(&mail);

	begin();
	OK(store_outbox_mark_sent(store, first, 150, &error));
	commit();
	EXPECT_INT(store_outbox_next_due(store, 400, &mail, &error), 0);
	EXPECT_INT(store_outbox_next_due(store, 500, &mail, &error), 1);
	EXPECT_INT(mail.id, second);
	outgoing_clear(&mail);

	outbox_row("ESC-2026-000001", &mail);
	EXPECT_INT(mail.state, OUTGOING_SENT);
	EXPECT_INT(mail.sent_at, 150);
	EXPECT_INT(mail.attempts, 1);
	outgoing_clear(&mail);

	begin();
	EXPECT_FAIL(store_outbox_mark_sent(store, 4040, 150, &error),
	    ESC_ERROR_STORE, "mark outbox row 4040 sent: no such row");
	store_rollback(store);
}
END_TEST

START_TEST(test_outbox_retry_backs_off_fails_and_requeues)
{
	struct outgoing mail;
	gint64 id, other;
	int count = -1;

	begin();
	make_case("ESC-2026-000001", 100);
	make_case("ESC-2026-000002", 100);
	id = queue_mail("ESC-2026-000001", "alice@example.org",
	    "ack.1@registry.example", 100, 0);
	other = queue_mail("ESC-2026-000002", "bob@example.org",
	    "ack.2@registry.example", 100, 0);
	OK(store_outbox_mark_retry(store, other, 0, "refused", &error));

	/* Back-off: not due until the time given. */
	OK(store_outbox_mark_retry(store, id, 400, "timeout", &error));
	EXPECT_INT(store_outbox_next_due(store, 399, &mail, &error), 0);
	EXPECT_INT(store_outbox_next_due(store, 400, &mail, &error), 1);
	EXPECT_INT(mail.id, id);
	EXPECT_INT(mail.attempts, 1);
	EXPECT_STR(mail.last_error, "timeout");
	outgoing_clear(&mail);

	/* Next of 0: given up on, visible only in the listing. */
	OK(store_outbox_mark_retry(store, id, 0, "refused", &error));
	EXPECT_INT(store_outbox_next_due(store, 1000000, &mail, &error), 0);
	outbox_row("ESC-2026-000001", &mail);
	EXPECT_INT(mail.state, OUTGOING_FAILED);
	EXPECT_INT(mail.attempts, 2);
	EXPECT_STR(mail.last_error, "refused");
	outgoing_clear(&mail);

	/* Requeue one case: only its row comes back, due now. */
	OK(store_outbox_requeue(store, "ESC-2026-000001", 2000, &count,
	    &error));
	EXPECT_INT(count, 1);
	EXPECT_INT(store_outbox_next_due(store, 1999, &mail, &error), 0);
	EXPECT_INT(store_outbox_next_due(store, 2000, &mail, &error), 1);
	EXPECT_INT(mail.id, id);
	EXPECT_INT(mail.state, OUTGOING_QUEUED);
	EXPECT_INT(mail.attempts, 0);
	outgoing_clear(&mail);

	/* Requeue all: the other case's row too. */
	OK(store_outbox_requeue(store, NULL, 3000, &count, &error));
	EXPECT_INT(count, 1);
	OK(store_outbox_requeue(store, NULL, 3000, &count, &error));
	EXPECT_INT(count, 0);
	commit();
}
END_TEST

START_TEST(test_outbox_count_to_by_recipient_and_time)
{
	static const struct {
		const char *recipient;
		time_t since;
		int want;
	} cases[] = {
		{ "alice@example.org", 0, 3 },
		{ "alice@example.org", 200, 2 },
		{ "alice@example.org", 300, 1 },
		{ "alice@example.org", 301, 0 },
		{ "bob@example.org", 0, 1 },
		{ "carol@example.org", 0, 0 },
	};
	gint64 sent, failed;

	begin();
	make_case("ESC-2026-000001", 100);
	sent = queue_mail("ESC-2026-000001", "alice@example.org", "m1@r", 100,
	    0);
	failed = queue_mail("ESC-2026-000001", "alice@example.org", "m2@r",
	    200, 0);
	queue_mail("ESC-2026-000001", "alice@example.org", "m3@r", 300, 0);
	queue_mail("ESC-2026-000001", "bob@example.org", "m4@r", 250, 0);
	OK(store_outbox_mark_sent(store, sent, 110, &error));
	OK(store_outbox_mark_retry(store, failed, 0, "refused", &error));
	commit();

	/* Every state counts: a failed ack was still an attempt to write. */
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int count = -1;

		OK(store_outbox_count_to(store, cases[i].recipient,
		    cases[i].since, &count, &error));
		ck_assert_msg(count == cases[i].want, "%s since %ld: got %d,"
		    " want %d", cases[i].recipient, (long)cases[i].since,
		    count, cases[i].want);
	}
}
END_TEST

/*
 * Transactions and connections.
 */

START_TEST(test_begin_busy_while_other_connection_writes)
{
	sqlite3 *db = raw_open();

	raw_exec(db, "BEGIN IMMEDIATE");
	store_set_busy_timeout(store, 20);
	EXPECT_FAIL(store_begin(store, &error), ESC_ERROR_BUSY,
	    "store: begin: database is locked");

	/* The failed begin let go of the mutex: the next one works. */
	raw_exec(db, "COMMIT");
	sqlite3_close(db);
	begin();
	make_case("ESC-2026-000001", 100);
	commit();
}
END_TEST

#define WRITER_THREADS 4
#define WRITES_PER_THREAD 25

/* One writer's share: whole transactions, each opening a case under
 * the next number, with a listing inside to show the lock nests. */
static void *
writer_thread(void *arg)
{
	GError **failure = arg;
	GError *err = NULL;
	int count;

	for (int i = 0; i < WRITES_PER_THREAD && err == NULL; i++) {
		gint64 number = 0;
		char *id = NULL;

		if (store_begin(store, &err) < 0)
			break;
		if (store_case_next_number(store, "complaint", 2026, &number,
		    &err) == 0) {
			id = g_strdup_printf("ESC-2026-%06" G_GINT64_FORMAT,
			    number);
			store_case_create(store, &(struct case_record){
			    .id = id, .procedure = "complaint",
			    .state = "open", .opened = number,
			    .updated = number }, &err);
		}
		if (err == NULL)
			store_cases_each(store, count_case, &count, &err);
		if (err == NULL)
			store_commit(store, &err);
		else
			store_rollback(store);
		g_free(id);
	}
	*failure = err;
	return NULL;
}

START_TEST(test_threads_share_the_writer_in_turn)
{
	pthread_t threads[WRITER_THREADS];
	GError *failures[WRITER_THREADS] = { NULL };
	GString *ids = g_string_new(NULL);
	int count = 0;

	OK(store_set_synchronous(store, STORE_SYNC_OFF, &error));
	for (int i = 0; i < WRITER_THREADS; i++)
		ck_assert_int_eq(pthread_create(&threads[i], NULL,
		    writer_thread, &failures[i]), 0);
	for (int i = 0; i < WRITER_THREADS; i++) {
		pthread_join(threads[i], NULL);
		ck_assert_msg(failures[i] == NULL, "thread %d: got \"%s\", "
		    "want no error", i, failures[i]->message);
	}

	/* Every case made it, each under its own number. */
	OK(store_cases_each(store, count_case, &count, &error));
	EXPECT_INT(count, WRITER_THREADS * WRITES_PER_THREAD);
	OK(store_cases_each(store, collect_case_id, ids, &error));
	EXPECT_STR(ids->str, "ESC-2026-000001 ESC-2026-000002");
	g_string_free(ids, TRUE);
}
END_TEST

/*
 * Backup. A writer thread keeps committing cases, each with its ticket
 * in the same transaction, while another connection (escalatorctl's)
 * backs the store up.
 */
struct backup_load {
	gint committed;		/* cases committed so far */
	gint stop;
	GError *failure;
};

static gpointer
backup_writer(gpointer data)
{
	struct backup_load *load = data;

	for (int i = 1; !g_atomic_int_get(&load->stop) &&
	    load->failure == NULL; i++) {
		char *id = g_strdup_printf("ESC-2026-%06d", i);
		char *ticket = g_strdup_printf("T-%d", i);
		struct case_record rec = { .id = id, .procedure = "complaint",
			.state = "open", .complainant = "a@example.org",
			.subject = "load", .opened = i, .updated = i };

		if (store_begin(store, &load->failure) == 0 &&
		    (store_case_create(store, &rec, &load->failure) < 0 ||
		    store_case_add_ticket(store, id, ticket,
		    &load->failure) < 0 ||
		    store_commit(store, &load->failure) < 0))
			store_rollback(store);
		if (load->failure == NULL)
			g_atomic_int_inc(&load->committed);
		g_free(ticket);
		g_free(id);
	}
	return NULL;
}

static gboolean
count_tickets(const char *ticket, void *data)
{
	(void)ticket;
	(*(int *)data)++;
	return TRUE;
}

/* Each case of the copy (DATA) cites exactly its one ticket. */
static gboolean
check_case_whole(const struct case_record *rec, void *data)
{
	struct store *copy = data;
	int tickets = 0;

	OK(store_case_tickets_each(copy, rec->id, count_tickets, &tickets,
	    &error));
	ck_assert_msg(tickets == 1, "%s in the copy: got %d tickets, "
	    "want 1", rec->id, tickets);
	return TRUE;
}

START_TEST(test_backup_under_write_load_is_one_snapshot)
{
	struct backup_load load = { 0 };
	char *copy_path = g_build_filename(tmpdir, "backup.db", NULL);
	struct store *reader;
	struct store *copy;
	GThread *writer;
	struct stat st;
	int before, in_copy = 0;

	OK(store_set_synchronous(store, STORE_SYNC_OFF, &error));
	writer = g_thread_new("writer", backup_writer, &load);
	while (g_atomic_int_get(&load.committed) < 300 && load.failure == NULL)
		g_usleep(1000);
	reader = store_open(db_path, STORE_READONLY, &error);
	ck_assert_msg(reader != NULL, "reader: %s", ERROR_TEXT);

	before = g_atomic_int_get(&load.committed);
	OK(store_backup(reader, copy_path, &error));
	/* The writer went on during the backup and after it. */
	while (g_atomic_int_get(&load.committed) < before + 100 &&
	    load.failure == NULL)
		g_usleep(1000);
	g_atomic_int_set(&load.stop, 1);
	g_thread_join(writer);
	ck_assert_msg(load.failure == NULL, "writer: %s",
	    load.failure ? load.failure->message : "");

	/* The copy opens as a store, mode 0640, whole cases only. */
	ck_assert_int_eq(stat(copy_path, &st), 0);
	EXPECT_INT(st.st_mode & 07777, 0640);
	copy = store_open(copy_path, STORE_READONLY, &error);
	ck_assert_msg(copy != NULL, "copy: %s", ERROR_TEXT);
	OK(store_cases_each(copy, count_case, &in_copy, &error));
	ck_assert_int_ge(in_copy, before);
	ck_assert_int_lt(in_copy, g_atomic_int_get(&load.committed));
	OK(store_cases_each(copy, check_case_whole, copy, &error));
	store_close(&copy);
	store_close(&reader);
	g_free(copy_path);
}
END_TEST

START_TEST(test_backup_never_overwrites)
{
	char *copy_path = g_build_filename(tmpdir, "backup.db", NULL);
	char *link_path = g_build_filename(tmpdir, "link.db", NULL);
	char *target = g_build_filename(tmpdir, "elsewhere", NULL);
	char *kept;
	struct stat st;

	begin();
	make_case("ESC-2026-000001", 1000);
	commit();
	ck_assert(g_file_set_contents(copy_path, "precious", -1, NULL));
	EXPECT_FAIL(store_backup(store, copy_path, &error), ESC_ERROR_IO,
	    "exists; not overwritten");
	ck_assert(g_file_get_contents(copy_path, &kept, NULL, NULL));
	EXPECT_STR(kept, "precious");
	g_free(kept);

	/* Nor is a symbolic link followed to a file it would make. */
	ck_assert_int_eq(symlink(target, link_path), 0);
	EXPECT_FAIL(store_backup(store, link_path, &error), ESC_ERROR_IO,
	    "exists");
	ck_assert_int_ne(stat(target, &st), 0);

	/* A directory that is not there: a clear error, nothing left. */
	g_free(copy_path);
	copy_path = g_build_filename(tmpdir, "no", "backup.db", NULL);
	EXPECT_FAIL(store_backup(store, copy_path, &error), ESC_ERROR_IO,
	    "No such file");
	g_free(copy_path);
	g_free(link_path);
	g_free(target);
}
END_TEST

START_TEST(test_rollback_leaves_no_trace)
{
	struct case_record rec;
	struct outgoing mail;
	gint64 number;
	int count = 0;

	begin();
	OK(store_case_next_number(store, "complaint", 2026, &number, &error));
	make_case("ESC-2026-000001", 100);
	OK(store_case_add_ticket(store, "ESC-2026-000001", "T-1", &error));
	OK(store_event_add(store, "ESC-2026-000001", 100, "escalator",
	    "opened", NULL, &error));
	OK(store_message_record(store, "m@example.org", "ESC-2026-000001",
	    100, &error));
	queue_mail("ESC-2026-000001", "alice@example.org", "ack@r", 100, 0);
	store_rollback(store);

	EXPECT_INT(store_case_get(store, "ESC-2026-000001", &rec, &error), 0);
	EXPECT_INT(store_message_seen(store, "m@example.org", NULL, &error),
	    0);
	EXPECT_INT(store_outbox_next_due(store, 1000, &mail, &error), 0);
	OK(store_cases_each(store, count_case, &count, &error));
	EXPECT_INT(count, 0);

	begin();
	OK(store_case_next_number(store, "complaint", 2026, &number, &error));
	EXPECT_INT(number, 1);
	commit();
}
END_TEST

/*
 * Group commit: 8 threads each open 40 cases, one transaction per case,
 * rolling every fifth back. Every committed case is there, no rolled
 * back one is, and nobody waits forever for a commit.
 */
struct writer { struct store *store; int n; int failures; };

static gpointer
writer_run(gpointer data)
{
	struct writer *w = data;

	for (int i = 0; i < 40; i++) {
		struct case_record rec = { 0 };
		char *id = g_strdup_printf("T%d-%d", w->n, i);
		GError *err = NULL;

		rec.id = id;
		rec.procedure = "complaint";
		rec.state = "open";
		rec.opened = rec.updated = 1000;
		if (store_begin(w->store, &err) < 0 ||
		    store_case_create(w->store, &rec, &err) < 0)
			w->failures++;
		else if (i % 5 == 4)
			store_rollback(w->store);
		else if (store_commit(w->store, &err) < 0)
			w->failures++;
		g_clear_error(&err);
		g_free(id);
	}
	return NULL;
}

START_TEST(test_group_commit_keeps_each_members_outcome)
{
	struct writer w[8];
	GThread *threads[8];
	int count = 0;

	for (int i = 0; i < 8; i++) {
		w[i] = (struct writer){ store, i, 0 };
		threads[i] = g_thread_new("writer", writer_run, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		g_thread_join(threads[i]);
		EXPECT_INT(w[i].failures, 0);
	}
	OK(store_cases_each(store, count_case, &count, &error));
	EXPECT_INT(count, 8 * 32);
	EXPECT_INT(store_case_get(store, "T3-4", &(struct case_record){ 0 },
	    &error), 0);
}
END_TEST

START_TEST(test_write_outside_transaction_fails)
{
	EXPECT_FAIL(store_event_add(store, NULL, 100, "escalator", "x", NULL,
	    &error), ESC_ERROR_FAILED, "write outside a transaction");
	EXPECT_FAIL(store_commit(store, &error), ESC_ERROR_FAILED,
	    "write outside a transaction");
	begin();
	EXPECT_FAIL(store_begin(store, &error), ESC_ERROR_FAILED,
	    "a transaction is open");
	store_rollback(store);
	store_rollback(store);
}
END_TEST

START_TEST(test_readonly_store_lists_but_cannot_begin)
{
	struct store *reader;
	struct case_record rec;
	char *missing;
	int count = 0;

	begin();
	make_case("ESC-2026-000001", 100);
	commit();

	/* The writer stays open, as the daemon would be. */
	reader = store_open(db_path, STORE_READONLY, &error);
	ck_assert_msg(reader != NULL, "store_open: %s", ERROR_TEXT);
	OK(store_cases_each(reader, count_case, &count, &error));
	EXPECT_INT(count, 1);
	EXPECT_INT(store_case_get(reader, "ESC-2026-000001", &rec, &error),
	    1);
	case_record_clear(&rec);
	EXPECT_FAIL(store_begin(reader, &error), ESC_ERROR_STORE,
	    "store: begin: store opened read-only");
	store_close(&reader);

	/* Read-only never creates a store. */
	missing = g_build_filename(tmpdir, "missing.db", NULL);
	reader = store_open(missing, STORE_READONLY, &error);
	ck_assert_msg(reader == NULL, "store_open: got a store, want NULL");
	ck_assert_msg(!g_file_test(missing, G_FILE_TEST_EXISTS),
	    "%s: got a file, want none", missing);
	g_clear_error(&error);
	g_free(missing);
}
END_TEST

START_TEST(test_hostile_text_round_trips)
{
	static const char *const fixed[] = {
		"O'Brien said \"hello\"",
		"'); DROP TABLE cases;--",
		"\"; DELETE FROM outbox; --",
		"%s%n%x ?1 :name @p $v",
		"line\r\nBcc: victim@example.org",
	};
	char binary[256];
	const char *texts[G_N_ELEMENTS(fixed) + 1];
	struct case_record rec;
	struct outgoing mail;

	/* Every byte but NUL, invalid UTF-8 included. */
	for (int i = 0; i < 255; i++)
		binary[i] = (char)(255 - i);
	binary[255] = '\0';
	memcpy(texts, fixed, sizeof(fixed));
	texts[G_N_ELEMENTS(fixed)] = binary;

	for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
		char *id = g_strdup_printf("ESC-2026-%06zu", i + 1);
		struct case_record in = { .id = id, .procedure = "complaint",
			.state = "open", .complainant = (char *)texts[i],
			.subject = (char *)texts[i], .opened = 1 };
		char *case_id = NULL;

		begin();
		OK(store_case_create(store, &in, &error));
		OK(store_message_record(store, texts[i], id, 1, &error));
		queue_mail(id, texts[i], texts[i], 1, 0);
		commit();

		EXPECT_INT(store_case_get(store, id, &rec, &error), 1);
		EXPECT_STR(rec.subject, texts[i]);
		EXPECT_STR(rec.complainant, texts[i]);
		case_record_clear(&rec);
		EXPECT_INT(store_message_seen(store, texts[i], &case_id,
		    &error), 1);
		EXPECT_STR(case_id, id);
		g_free(case_id);
		EXPECT_INT(store_outbox_next_due(store, 1, &mail, &error), 1);
		EXPECT_STR(mail.recipient, texts[i]);
		EXPECT_STR(mail.message_id, texts[i]);

		begin();
		OK(store_outbox_mark_sent(store, mail.id, 2, &error));
		commit();
		outgoing_clear(&mail);
		g_free(id);
	}

	/* And the tables are all still there. */
	begin();
	make_case("ESC-2026-999999", 1);
	commit();
}
END_TEST

START_TEST(test_sync_words_parse)
{
	static const struct {
		const char *word;
		int want;
	} cases[] = {
		{ "full", STORE_SYNC_FULL },
		{ "NORMAL", STORE_SYNC_NORMAL },
		{ "off", STORE_SYNC_OFF },
		{ "extra", -1 },
		{ "", -1 },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		int got = store_sync_parse(cases[i].word);

		ck_assert_msg(got == cases[i].want, "\"%s\": got %d, want %d",
		    cases[i].word, got, cases[i].want);
	}
	OK(store_set_synchronous(store, STORE_SYNC_NORMAL, &error));
	begin();
	EXPECT_FAIL(store_set_synchronous(store, STORE_SYNC_OFF, &error),
	    ESC_ERROR_FAILED, "inside a transaction");
	store_rollback(store);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *suite = suite_create("store");
	TCase *tc = tcase_create("sqlite");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_open_creates_latest_schema_in_wal_mode);
	tcase_add_test(tc, test_store_open_to_all_users_is_refused);
	tcase_add_test(tc, test_reopen_keeps_data_and_does_not_migrate);
	tcase_add_test(tc, test_newer_schema_is_refused);
	tcase_add_test(tc, test_message_seen_after_record);
	tcase_add_test(tc, test_case_by_message_id_finds_seen_and_sent);
	tcase_add_test(tc, test_sequence_per_procedure_and_year);
	tcase_add_test(tc, test_case_create_get_and_set_state);
	tcase_add_test(tc, test_case_get_missing_gives_0);
	tcase_add_test(tc, test_cases_listed_by_opening_and_walk_stops);
	tcase_add_test(tc, test_tickets_unique_per_case_in_order);
	tcase_add_test(tc, test_events_listed_in_time_order);
	tcase_add_test(tc, test_foreign_keys_are_enforced);
	tcase_add_test(tc, test_outbox_due_respects_next_attempt_and_sent);
	tcase_add_test(tc, test_outbox_retry_backs_off_fails_and_requeues);
	tcase_add_test(tc, test_outbox_count_to_by_recipient_and_time);
	tcase_add_test(tc, test_begin_busy_while_other_connection_writes);
	tcase_add_test(tc, test_threads_share_the_writer_in_turn);
	tcase_add_test(tc, test_rollback_leaves_no_trace);
	tcase_add_test(tc, test_write_outside_transaction_fails);
	tcase_add_test(tc, test_group_commit_keeps_each_members_outcome);
	tcase_add_test(tc, test_readonly_store_lists_but_cannot_begin);
	tcase_add_test(tc, test_hostile_text_round_trips);
	tcase_add_test(tc, test_sync_words_parse);
	tcase_add_test(tc, test_backup_under_write_load_is_one_snapshot);
	tcase_add_test(tc, test_backup_never_overwrites);
	suite_add_tcase(suite, tc);
	return suite;
}

int
main(void)
{
	return test_run_suite(store_suite());
}
