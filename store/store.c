/*
 * store.c: store.h on SQLite. One connection per process, every
 * statement prepared at open and reset after each use, every value from
 * outside bound as a parameter. A recursive mutex serialises the
 * connection: store_begin() holds it until the commit or rollback, and
 * every other call holds it for its own duration, so a thread inside its
 * transaction may also list, while other threads wait their turn.
 *
 * Limits: one writer per process (by design, see DESIGN.md "Store");
 * other processes wait up to the busy timeout and then fail with
 * ESC_ERROR_BUSY. Errors read "store: <what>: <SQLite's reason>", with
 * message ids and addresses made printable first since they come from
 * mail.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/error.h"
#include "common/text.h"
#include "store/store.h"

#define STORE_FILE_MODE 0640
#define STORE_BUSY_TIMEOUT_MS 5000

enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_MESSAGE_SEEN,
	STMT_MESSAGE_RECORD,
	STMT_CASE_BY_MESSAGE_ID,
	STMT_SEQUENCE_BUMP,
	STMT_SEQUENCE_GET,
	STMT_CASE_CREATE,
	STMT_CASE_GET,
	STMT_CASE_SET_STATE,
	STMT_CASE_SAVE,
	STMT_CONTACT_SET,
	STMT_CONTACT_GET,
	STMT_CONTACT_IS,
	STMT_TIMER_ADD,
	STMT_TIMER_UPDATE,
	STMT_TIMER_NEXT_DUE,
	STMT_TIMER_EARLIEST,
	STMT_CASE_TIMERS_EACH,
	STMT_TIMERS_EACH,
	STMT_TIMERS_MISSED_EACH,
	STMT_CASES_OPENED_EACH,
	STMT_DEADLINES_COUNT,
	STMT_TICKET_ADD,
	STMT_EVENT_ADD,
	STMT_OUTBOX_QUEUE,
	STMT_OUTBOX_COUNT_TO,
	STMT_OUTBOX_COUNT_CASE,
	STMT_OUTBOX_NEXT_DUE,
	STMT_OUTBOX_SENT,
	STMT_OUTBOX_RETRY,
	STMT_OUTBOX_REQUEUE,
	STMT_OUTBOX_CLAIM,
	STMT_CASES_EACH,
	STMT_TICKETS_EACH,
	STMT_EVENTS_EACH,
	STMT_OUTBOX_EACH,
	STMT_COUNT
};

/* Column orders that the row readers below depend on. */
#define CASE_COLUMNS "id, procedure, state, complainant, subject, " \
	"opened, updated, deadline, owner, chain_step, function, " \
	"linked_case, acknowledged, responded, closed"
#define TIMER_COLUMNS "id, case_id, kind, state, armed, due, remaining, " \
	"status, ended"
#define EVENT_COLUMNS "id, case_id, at, actor, kind, detail"
#define OUTBOX_COLUMNS "id, case_id, kind, sender, sender_name, " \
	"recipient, subject, body, message_id, in_reply_to, refs, " \
	"auto_submitted, created, next_attempt, attempts, state, " \
	"last_error, sent_at, reply_to"

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SAVEPOINT] = "SAVEPOINT member",
	[STMT_RELEASE] = "RELEASE member",
	[STMT_ROLLBACK_TO] = "ROLLBACK TO member",
	[STMT_MESSAGE_SEEN] = "SELECT case_id FROM messages WHERE key = ?1",
	[STMT_MESSAGE_RECORD] = "INSERT INTO messages (key, case_id, seen_at)"
	    " VALUES (?1, ?2, ?3)",
	[STMT_CASE_BY_MESSAGE_ID] = "SELECT coalesce("
	    "(SELECT case_id FROM messages WHERE key = ?1),"
	    " (SELECT case_id FROM outbox WHERE message_id = ?1))",
	[STMT_SEQUENCE_BUMP] = "INSERT INTO sequences (procedure, year, last)"
	    " VALUES (?1, ?2, 1) ON CONFLICT (procedure, year)"
	    " DO UPDATE SET last = last + 1",
	[STMT_SEQUENCE_GET] = "SELECT last FROM sequences"
	    " WHERE procedure = ?1 AND year = ?2",
	[STMT_CASE_CREATE] = "INSERT INTO cases (" CASE_COLUMNS ")"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12,"
	    " ?13, ?14, ?15)",
	[STMT_CASE_GET] = "SELECT " CASE_COLUMNS " FROM cases WHERE id = ?1",
	[STMT_CASE_SET_STATE] = "UPDATE cases"
	    " SET state = ?2, deadline = ?3, updated = ?4 WHERE id = ?1",
	[STMT_CASE_SAVE] = "UPDATE cases SET state = ?2, updated = ?3,"
	    " deadline = ?4, owner = ?5, chain_step = ?6, function = ?7,"
	    " linked_case = ?8, acknowledged = ?9, responded = ?10,"
	    " closed = ?11 WHERE id = ?1",
	[STMT_CONTACT_SET] = "INSERT INTO case_contacts (case_id, name,"
	    " address) VALUES (?1, ?2, ?3) ON CONFLICT (case_id, name)"
	    " DO UPDATE SET address = ?3",
	[STMT_CONTACT_GET] = "SELECT address FROM case_contacts"
	    " WHERE case_id = ?1 AND name = ?2",
	[STMT_CONTACT_IS] = "SELECT name FROM case_contacts"
	    " WHERE case_id = ?1 AND address = ?2 LIMIT 1",
	[STMT_TIMER_ADD] = "INSERT INTO timers (case_id, kind, state, armed,"
	    " due, remaining, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_TIMER_UPDATE] = "UPDATE timers SET status = ?2, due = ?3,"
	    " remaining = ?4, ended = ?5 WHERE id = ?1",
	[STMT_TIMER_NEXT_DUE] = "SELECT " TIMER_COLUMNS " FROM timers"
	    " WHERE status = 'pending' AND due <= ?1 ORDER BY due, id"
	    " LIMIT 1",
	[STMT_TIMER_EARLIEST] = "SELECT min(due) FROM timers"
	    " WHERE status = 'pending'",
	[STMT_CASE_TIMERS_EACH] = "SELECT " TIMER_COLUMNS " FROM timers"
	    " WHERE case_id = ?1 AND status IN ('pending', 'suspended')"
	    " ORDER BY id",
	[STMT_TIMERS_EACH] = "SELECT " TIMER_COLUMNS " FROM timers"
	    " WHERE status = 'pending' ORDER BY due, id",
	[STMT_TIMERS_MISSED_EACH] = "SELECT " TIMER_COLUMNS " FROM timers"
	    " WHERE status = 'fired' AND kind = 'deadline' AND ended >= ?1"
	    " ORDER BY ended, id",
	[STMT_CASES_OPENED_EACH] = "SELECT " CASE_COLUMNS " FROM cases"
	    " WHERE opened >= ?1 AND opened < ?2 ORDER BY opened, id",
	/* Met: cancelled (the case moved on) before it was due. */
	[STMT_DEADLINES_COUNT] = "SELECT c.procedure,"
	    " sum(t.status = 'cancelled'), sum(t.status = 'fired')"
	    " FROM timers t JOIN cases c ON c.id = t.case_id"
	    " WHERE t.kind = 'deadline' AND t.status IN ('fired', 'cancelled')"
	    " AND t.ended >= ?1 AND t.ended < ?2"
	    " AND (t.status = 'fired' OR t.due IS NULL OR t.ended <= t.due)"
	    " GROUP BY c.procedure ORDER BY c.procedure",
	[STMT_TICKET_ADD] = "INSERT INTO case_tickets (case_id, ticket)"
	    " VALUES (?1, ?2) ON CONFLICT (case_id, ticket) DO NOTHING",
	[STMT_EVENT_ADD] = "INSERT INTO events"
	    " (case_id, at, actor, kind, detail)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)",
	[STMT_OUTBOX_QUEUE] = "INSERT INTO outbox (case_id, kind, sender,"
	    " sender_name, recipient, subject, body, message_id,"
	    " in_reply_to, refs, auto_submitted, created, next_attempt,"
	    " reply_to) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,"
	    " ?11, ?12, ?13, ?14)",
	[STMT_OUTBOX_COUNT_TO] = "SELECT count(*) FROM outbox"
	    " WHERE recipient = ?1 AND created >= ?2",
	[STMT_OUTBOX_COUNT_CASE] = "SELECT count(*) FROM outbox"
	    " WHERE case_id = ?1 AND created >= ?2 AND kind = ?3",
	[STMT_OUTBOX_NEXT_DUE] = "SELECT " OUTBOX_COLUMNS " FROM outbox"
	    " WHERE state = 'queued' AND next_attempt <= ?1"
	    " ORDER BY next_attempt, id LIMIT 1",
	[STMT_OUTBOX_SENT] = "UPDATE outbox SET state = 'sent',"
	    " sent_at = ?2, attempts = attempts + 1, last_error = NULL"
	    " WHERE id = ?1",
	[STMT_OUTBOX_RETRY] = "UPDATE outbox SET attempts = attempts + 1,"
	    " last_error = ?3,"
	    " state = CASE WHEN ?2 = 0 THEN 'failed' ELSE 'queued' END,"
	    " next_attempt = CASE WHEN ?2 = 0 THEN next_attempt ELSE ?2 END"
	    " WHERE id = ?1",
	[STMT_OUTBOX_CLAIM] = "UPDATE outbox SET next_attempt = ?3"
	    " WHERE id = ?1 AND state = 'queued' AND next_attempt <= ?2",
	[STMT_OUTBOX_REQUEUE] = "UPDATE outbox"
	    " SET state = 'queued', next_attempt = ?2, attempts = 0"
	    " WHERE state = 'failed' AND (?1 IS NULL OR case_id = ?1)",
	[STMT_CASES_EACH] = "SELECT " CASE_COLUMNS " FROM cases"
	    " ORDER BY opened, id",
	[STMT_TICKETS_EACH] = "SELECT ticket FROM case_tickets"
	    " WHERE case_id = ?1 ORDER BY id",
	[STMT_EVENTS_EACH] = "SELECT " EVENT_COLUMNS " FROM events"
	    " WHERE case_id = ?1 ORDER BY at, id",
	[STMT_OUTBOX_EACH] = "SELECT " OUTBOX_COLUMNS " FROM outbox"
	    " WHERE case_id = ?1 ORDER BY id",
};

static const char *const outgoing_states[] = {
	[OUTGOING_QUEUED] = "queued",
	[OUTGOING_SENT] = "sent",
	[OUTGOING_FAILED] = "failed",
};

/* The members of one group commit and, once it is done, its outcome. */
struct batch {
	int members;		/* work done in it */
	int refs;		/* members not yet told the outcome */
	gboolean done, ok;
	char *error;		/* why it failed */
};

struct store {
	sqlite3 *db;
	enum store_mode mode;
	pthread_mutex_t lock;		/* recursive; see the top */
	pthread_cond_t committed;	/* a batch is done */
	gboolean in_transaction;	/* only read with the lock held */
	gboolean member_active;		/* its holder is inside a member */
	struct batch *batch;		/* the open one, with the lock */
	gint waiting;			/* threads waiting in store_begin */
	sqlite3_stmt *stmts[STMT_COUNT];
};

/* More members than this in one commit would make the first wait too
 * long for its milter reply. */
#define BATCH_MAX 32

/*
 * Errors.
 */

static int G_GNUC_PRINTF(4, 5)
store_fail(struct store *store, int rc, GError **error, const char *fmt,
    ...)
{
	int primary = rc & 0xff;
	int code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ?
	    ESC_ERROR_BUSY : ESC_ERROR_STORE;
	va_list ap;
	char *what;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_set_error(error, ESC_ERROR, code, "store: %s: %s", what,
	    sqlite3_errmsg(store->db));
	g_free(what);
	return -1;
}

/* The same, for a value that came from mail and may hold anything. */
static int
store_fail_text(struct store *store, int rc, GError **error,
    const char *what, const char *text)
{
	char *shown = text_printable(text, TEXT_LOG_CAP);

	store_fail(store, rc, error, "%s %s", what, shown);
	g_free(shown);
	return -1;
}

/*
 * Statements.
 */

/*
 * Bind STMT's parameters 1..n, one TYPES letter each: 's' a string
 * (NULL binds NULL), 'i' an int, 'l' a gint64, 't' a time_t, 'd' a
 * time_t where 0 means none and binds NULL. Strings are not copied: the
 * caller's must live until stmt_finish().
 */
static int
stmt_bindv(sqlite3_stmt *stmt, const char *types, va_list ap)
{
	int rc = SQLITE_OK;

	for (int i = 0; types[i] != '\0' && rc == SQLITE_OK; i++) {
		int n = i + 1;
		const char *s;
		time_t t;

		switch (types[i]) {
		case 's':
			s = va_arg(ap, const char *);
			rc = s == NULL ? sqlite3_bind_null(stmt, n) :
			    sqlite3_bind_text(stmt, n, s, -1, SQLITE_STATIC);
			break;
		case 'i':
			rc = sqlite3_bind_int(stmt, n, va_arg(ap, int));
			break;
		case 'l':
			rc = sqlite3_bind_int64(stmt, n, va_arg(ap, gint64));
			break;
		case 't':
		case 'd':
			t = va_arg(ap, time_t);
			rc = t == 0 && types[i] == 'd' ?
			    sqlite3_bind_null(stmt, n) :
			    sqlite3_bind_int64(stmt, n, (sqlite3_int64)t);
			break;
		default:
			g_error("BUG: stmt_bind: type '%c'", types[i]);
		}
	}
	return rc;
}

static int
stmt_bind(sqlite3_stmt *stmt, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = stmt_bindv(stmt, types, ap);
	va_end(ap);
	return rc;
}

/* Ready STMT for its next use and let go of the caller's strings. */
static void
stmt_finish(sqlite3_stmt *stmt)
{
	sqlite3_reset(stmt);
	sqlite3_clear_bindings(stmt);
}

/* Bind, run a statement that gives no rows, and finish it. */
static int
stmt_exec(sqlite3_stmt *stmt, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = stmt_bindv(stmt, types, ap);
	va_end(ap);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	stmt_finish(stmt);
	return rc;
}

/*
 * Locking. Every call holds the lock while it uses the connection; a
 * write also needs a member of the transaction (store_begin), and
 * holding the lock with member_active set means this thread is it.
 */

static int
store_enter(struct store *store, gboolean write, GError **error)
{
	pthread_mutex_lock(&store->lock);
	if (write && !store->member_active) {
		pthread_mutex_unlock(&store->lock);
		g_set_error(error, ESC_ERROR, ESC_ERROR_FAILED,
		    "BUG: store: write outside a transaction");
		return -1;
	}
	return 0;
}

static void
store_leave(struct store *store)
{
	pthread_mutex_unlock(&store->lock);
}

/*
 * Rows. Each reader copies one row of a statement whose columns are
 * in the matching *_COLUMNS order.
 */

static char *
column_dup(sqlite3_stmt *stmt, int col)
{
	const unsigned char *text = sqlite3_column_text(stmt, col);

	return text == NULL ? NULL : g_strdup((const char *)text);
}

static time_t
column_time(sqlite3_stmt *stmt, int col)
{
	return (time_t)sqlite3_column_int64(stmt, col);
}

static void
case_from_row(sqlite3_stmt *stmt, struct case_record *rec)
{
	rec->id = column_dup(stmt, 0);
	rec->procedure = column_dup(stmt, 1);
	rec->state = column_dup(stmt, 2);
	rec->complainant = column_dup(stmt, 3);
	rec->subject = column_dup(stmt, 4);
	rec->opened = column_time(stmt, 5);
	rec->updated = column_time(stmt, 6);
	rec->deadline = column_time(stmt, 7);
	rec->owner = column_dup(stmt, 8);
	rec->chain_step = sqlite3_column_int(stmt, 9);
	rec->function = column_dup(stmt, 10);
	rec->linked_case = column_dup(stmt, 11);
	rec->acknowledged = column_time(stmt, 12);
	rec->responded = column_time(stmt, 13);
	rec->closed = column_time(stmt, 14);
}

static const char *const timer_kinds[] = { "deadline", "warning" };
static const char *const timer_statuses[] = { "pending", "suspended",
	"fired", "cancelled" };

static int
word_find(const char *const *words, size_t n, const unsigned char *word)
{
	for (size_t i = 0; i < n; i++)
		if (word != NULL && strcmp((const char *)word, words[i]) == 0)
			return (int)i;
	/* CHECK constraints keep other words out of the table. */
	g_error("BUG: store: unexpected word \"%s\"",
	    word == NULL ? "(null)" : (const char *)word);
}

static void
timer_from_row(sqlite3_stmt *stmt, struct timer_record *t)
{
	t->id = sqlite3_column_int64(stmt, 0);
	t->case_id = column_dup(stmt, 1);
	t->kind = (enum timer_kind)word_find(timer_kinds,
	    G_N_ELEMENTS(timer_kinds), sqlite3_column_text(stmt, 2));
	t->state = column_dup(stmt, 3);
	t->armed = column_time(stmt, 4);
	t->due = column_time(stmt, 5);
	t->remaining = sqlite3_column_int64(stmt, 6);
	t->status = (enum timer_status)word_find(timer_statuses,
	    G_N_ELEMENTS(timer_statuses), sqlite3_column_text(stmt, 7));
	t->ended = column_time(stmt, 8);
}

static void
event_from_row(sqlite3_stmt *stmt, struct event_record *rec)
{
	rec->id = sqlite3_column_int64(stmt, 0);
	rec->case_id = column_dup(stmt, 1);
	rec->at = column_time(stmt, 2);
	rec->actor = column_dup(stmt, 3);
	rec->kind = column_dup(stmt, 4);
	rec->detail = column_dup(stmt, 5);
}

static enum outgoing_state
outgoing_state_parse(const unsigned char *word)
{
	for (size_t i = 0; i < G_N_ELEMENTS(outgoing_states); i++) {
		if (word != NULL &&
		    strcmp((const char *)word, outgoing_states[i]) == 0)
			return (enum outgoing_state)i;
	}

	/* The CHECK constraint keeps other words out of the table. */
	g_error("BUG: store: outbox state \"%s\"",
	    word == NULL ? "(null)" : (const char *)word);
}

static void
outgoing_from_row(sqlite3_stmt *stmt, struct outgoing *mail)
{
	mail->id = sqlite3_column_int64(stmt, 0);
	mail->case_id = column_dup(stmt, 1);
	mail->kind = column_dup(stmt, 2);
	mail->sender = column_dup(stmt, 3);
	mail->sender_name = column_dup(stmt, 4);
	mail->recipient = column_dup(stmt, 5);
	mail->subject = column_dup(stmt, 6);
	mail->body = column_dup(stmt, 7);
	mail->message_id = column_dup(stmt, 8);
	mail->in_reply_to = column_dup(stmt, 9);
	mail->references = column_dup(stmt, 10);
	mail->auto_submitted = column_dup(stmt, 11);
	mail->created = column_time(stmt, 12);
	mail->next_attempt = column_time(stmt, 13);
	mail->attempts = sqlite3_column_int(stmt, 14);
	mail->state = outgoing_state_parse(sqlite3_column_text(stmt, 15));
	mail->last_error = column_dup(stmt, 16);
	mail->sent_at = column_time(stmt, 17);
	mail->reply_to = column_dup(stmt, 18);
}

/*
 * Opening and closing.
 */

/* Create the file ourselves so its mode is ours, not the umask's. */
static int
store_create_file(const char *path, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, STORE_FILE_MODE);

	if (fd < 0 && errno == EEXIST)
		return 0;
	if (fd < 0 || fchmod(fd, STORE_FILE_MODE) < 0) {
		int saved = errno;

		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "store: %s(%s): %s", fd < 0 ? "open" : "fchmod", path,
		    g_strerror(saved));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Cases hold complainants' mail: a store others may read or write is a
 * leak or worse, so the daemon does not run on one.
 */
static int
store_check_mode(const char *path, GError **error)
{
	struct stat st;

	if (stat(path, &st) < 0 || (st.st_mode & 0007) == 0)
		return 0;
	g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
	    "store: %s: open to all users (mode %04o); chmod o-rwx it",
	    path, (unsigned)(st.st_mode & 07777));
	return -1;
}

static int
store_connect(struct store *store, const char *path, GError **error)
{
	int flags = store->mode == STORE_READONLY ? SQLITE_OPEN_READONLY :
	    SQLITE_OPEN_READWRITE;
	int rc;

	/* Never SQLITE_OPEN_CREATE: a file SQLite made would get the
	 * umask's mode, and a read-only open must not make one at all. */
	rc = sqlite3_open_v2(path, &store->db, flags, NULL);
	if (rc != SQLITE_OK) {
		if (store->db == NULL) {
			g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
			    "store: open: %s", sqlite3_errstr(rc));
			return -1;
		}
		return store_fail(store, rc, error, "open");
	}

	sqlite3_extended_result_codes(store->db, 1);
	sqlite3_busy_timeout(store->db, STORE_BUSY_TIMEOUT_MS);

	/* SQLite opens a file it may not write read-only, silently, and
	 * stays so after the mode is fixed: every message would be
	 * tempfailed until a restart. Better not to start. */
	if (store->mode == STORE_READWRITE &&
	    sqlite3_db_readonly(store->db, "main") == 1) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: open: the database is read-only for this user "
		    "(check its owner and mode, and its directory's)");
		return -1;
	}

	/* No writable_schema tricks even if an attacker gets SQL in. */
	sqlite3_db_config(store->db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	return 0;
}

static int
store_journal_wal(struct store *store, GError **error)
{
	sqlite3_stmt *stmt;
	const unsigned char *mode;
	gboolean wal;
	int rc;

	rc = sqlite3_prepare_v2(store->db, "PRAGMA journal_mode = WAL", -1,
	    &stmt, NULL);
	if (rc != SQLITE_OK)
		return store_fail(store, rc, error, "set journal mode");

	/* The pragma answers with the mode in force, which stays the old
	 * one where WAL cannot work (no shared memory, say). */
	rc = sqlite3_step(stmt);
	mode = rc == SQLITE_ROW ? sqlite3_column_text(stmt, 0) : NULL;
	wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	if (rc == SQLITE_ROW && !wal)
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: journal mode: got %s, want wal",
		    mode == NULL ? "(none)" : (const char *)mode);
	else if (rc != SQLITE_ROW)
		store_fail(store, rc, error, "set journal mode");
	sqlite3_finalize(stmt);
	return wal ? 0 : -1;
}

static int
store_configure(struct store *store, GError **error)
{
	int rc;

	rc = sqlite3_exec(store->db, "PRAGMA foreign_keys = ON", NULL, NULL,
	    NULL);
	if (rc != SQLITE_OK)
		return store_fail(store, rc, error, "enable foreign keys");

	/* Journal mode is a property of the file: a reader just uses it. */
	if (store->mode == STORE_READONLY)
		return 0;
	if (store_journal_wal(store, error) < 0)
		return -1;
	return store_set_synchronous(store, STORE_SYNC_FULL, error);
}

static int
store_prepare(struct store *store, GError **error)
{
	for (int i = 0; i < STMT_COUNT; i++) {
		int rc = sqlite3_prepare_v3(store->db, stmt_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &store->stmts[i], NULL);

		if (rc != SQLITE_OK)
			return store_fail(store, rc, error,
			    "prepare statement %d", i);
	}
	return 0;
}

struct store *
store_open(const char *path, enum store_mode mode, GError **error)
{
	struct store *store;
	pthread_mutexattr_t attr;

	if (sqlite3_threadsafe() == 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: SQLite was built without thread support");
		return NULL;
	}
	if (mode == STORE_READWRITE && (store_create_file(path, error) < 0 ||
	    store_check_mode(path, error) < 0))
		return NULL;

	store = g_new0(struct store, 1);
	store->mode = mode;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&store->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_cond_init(&store->committed, NULL);

	if (store_connect(store, path, error) < 0 ||
	    store_configure(store, error) < 0 ||
	    schema_migrate(store->db, mode == STORE_READONLY, error) < 0 ||
	    store_prepare(store, error) < 0) {
		g_prefix_error(error, "%s: ", path);
		store_close(&store);
		return NULL;
	}
	return store;
}

void
store_close(struct store **storep)
{
	struct store *store = *storep;

	if (store == NULL)
		return;

	/* A transaction left open is a caller's bug; do not commit it. */
	if (store->member_active)
		store_rollback(store);

	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(store->stmts[i]);
	sqlite3_close(store->db);
	pthread_mutex_destroy(&store->lock);
	pthread_cond_destroy(&store->committed);
	g_free(store);
	*storep = NULL;
}

/*
 * Settings.
 */

static const char *const sync_words[] = {
	[STORE_SYNC_FULL] = "full",
	[STORE_SYNC_NORMAL] = "normal",
	[STORE_SYNC_OFF] = "off",
};

static const char *const sync_pragmas[] = {
	[STORE_SYNC_FULL] = "PRAGMA synchronous = FULL",
	[STORE_SYNC_NORMAL] = "PRAGMA synchronous = NORMAL",
	[STORE_SYNC_OFF] = "PRAGMA synchronous = OFF",
};

int
store_sync_parse(const char *word)
{
	for (size_t i = 0; i < G_N_ELEMENTS(sync_words); i++) {
		if (g_ascii_strcasecmp(word, sync_words[i]) == 0)
			return (int)i;
	}
	return -1;
}

int
store_set_synchronous(struct store *store, enum store_sync sync,
    GError **error)
{
	int ret = 0;
	int rc;

	g_return_val_if_fail(sync < G_N_ELEMENTS(sync_pragmas), -1);

	/* SQLite ignores the change inside a transaction; say so. */
	pthread_mutex_lock(&store->lock);
	if (store->in_transaction) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_FAILED,
		    "BUG: store: synchronous changed inside a transaction");
		ret = -1;
	} else {
		rc = sqlite3_exec(store->db, sync_pragmas[sync], NULL, NULL,
		    NULL);
		if (rc != SQLITE_OK)
			ret = store_fail(store, rc, error,
			    "set synchronous %s", sync_words[sync]);
	}
	pthread_mutex_unlock(&store->lock);
	return ret;
}

void
store_set_busy_timeout(struct store *store, int ms)
{
	pthread_mutex_lock(&store->lock);
	sqlite3_busy_timeout(store->db, ms);
	pthread_mutex_unlock(&store->lock);
}

/*
 * Transactions.
 */

/*
 * Group commit. Each store_begin() is a member: the first opens the
 * transaction, each works inside a savepoint of its own. A member done
 * while other threads wait to begin leaves the commit to them and
 * waits; the last one commits for all (one fsync for many messages),
 * and every member learns the outcome of that commit: a message is
 * never acknowledged before the commit that holds it. An error that
 * undoes the whole transaction fails every member of the batch.
 */
static struct batch *
batch_join(struct store *store)
{
	if (store->batch == NULL)
		store->batch = g_new0(struct batch, 1);
	store->batch->refs++;
	return store->batch;
}

static void
batch_leave(struct batch *batch)
{
	if (--batch->refs > 0)
		return;
	g_free(batch->error);
	g_free(batch);
}

/* Commit (or, if it is gone, fail) the batch for all its members. */
static void
batch_end(struct store *store, struct batch *batch)
{
	int rc = SQLITE_OK;

	if (sqlite3_get_autocommit(store->db)) {
		batch->error = g_strdup("store: the transaction was undone: "
		    "an earlier error");
		rc = SQLITE_ABORT;
	} else if ((rc = stmt_exec(store->stmts[STMT_COMMIT], "")) !=
	    SQLITE_OK) {
		batch->error = g_strdup_printf("store: commit: %s",
		    sqlite3_errmsg(store->db));
		if (!sqlite3_get_autocommit(store->db))
			stmt_exec(store->stmts[STMT_ROLLBACK], "");
	}
	batch->ok = rc == SQLITE_OK;
	batch->done = TRUE;
	store->batch = NULL;
	store->in_transaction = FALSE;
	pthread_cond_broadcast(&store->committed);
}

/* End this member's part: wait for others to commit, or commit. */
static int
member_end(struct store *store, GError **error)
{
	struct batch *batch = store->batch;
	int ret = 0;

	batch->members++;
	store->member_active = FALSE;
	if (!sqlite3_get_autocommit(store->db) &&
	    g_atomic_int_get(&store->waiting) > 0 &&
	    batch->members < BATCH_MAX) {
		/* The lock is held once here: waiting lets it go. */
		while (!batch->done)
			pthread_cond_wait(&store->committed, &store->lock);
	} else {
		batch_end(store, batch);
	}
	if (!batch->ok) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE, "%s",
		    batch->error);
		ret = -1;
	}
	batch_leave(batch);
	pthread_mutex_unlock(&store->lock);
	return ret;
}

int
store_begin(struct store *store, GError **error)
{
	int rc = SQLITE_OK;

	/* Held from here until store_commit() or store_rollback(). */
	g_atomic_int_inc(&store->waiting);
	pthread_mutex_lock(&store->lock);
	g_atomic_int_dec_and_test(&store->waiting);

	if (store->mode == STORE_READONLY || store->member_active) {
		/* The lock is recursive: an active member is this thread. */
		g_set_error(error, ESC_ERROR, store->member_active ?
		    ESC_ERROR_FAILED : ESC_ERROR_STORE, "store: begin: %s",
		    store->member_active ? "BUG: a transaction is open" :
		    "store opened read-only");
		pthread_mutex_unlock(&store->lock);
		return -1;
	}
	if (!store->in_transaction) {
		rc = stmt_exec(store->stmts[STMT_BEGIN], "");
		if (rc != SQLITE_OK) {
			store_fail(store, rc, error, "begin");
			pthread_mutex_unlock(&store->lock);
			return -1;
		}
		store->in_transaction = TRUE;
	}
	batch_join(store);
	rc = stmt_exec(store->stmts[STMT_SAVEPOINT], "");
	if (rc != SQLITE_OK) {
		/* Others may wait on this batch: end it for them. */
		store_fail(store, rc, error, "begin");
		member_end(store, NULL);
		return -1;
	}
	store->member_active = TRUE;
	return 0;
}

int
store_commit(struct store *store, GError **error)
{
	int rc;

	pthread_mutex_lock(&store->lock);
	if (!store->member_active) {
		pthread_mutex_unlock(&store->lock);
		g_set_error(error, ESC_ERROR, ESC_ERROR_FAILED,
		    "BUG: store: write outside a transaction");
		return -1;
	}
	pthread_mutex_unlock(&store->lock);	/* held by store_begin */

	rc = stmt_exec(store->stmts[STMT_RELEASE], "");
	if (rc != SQLITE_OK) {
		GError *mine = NULL;

		store_fail(store, rc, &mine, "commit");
		if (!sqlite3_get_autocommit(store->db))
			stmt_exec(store->stmts[STMT_ROLLBACK_TO], "");
		member_end(store, NULL);
		g_propagate_error(error, mine);
		return -1;
	}
	return member_end(store, error);
}

void
store_rollback(struct store *store)
{
	pthread_mutex_lock(&store->lock);
	if (!store->member_active) {
		pthread_mutex_unlock(&store->lock);
		return;
	}
	pthread_mutex_unlock(&store->lock);	/* held by store_begin */

	/* Undo this member's part only; the others' stays to commit. */
	if (!sqlite3_get_autocommit(store->db)) {
		stmt_exec(store->stmts[STMT_ROLLBACK_TO], "");
		stmt_exec(store->stmts[STMT_RELEASE], "");
	}
	member_end(store, NULL);
}

/*
 * Messages.
 */

/* Run a one-column text lookup bound to KEY: 1 found, 0 not, -1. */
static int
store_lookup_text(struct store *store, enum stmt_id id, const char *key,
    char **value_r, GError **error, const char *what)
{
	sqlite3_stmt *stmt = store->stmts[id];
	char *value = NULL;
	int rc;

	if (store_enter(store, FALSE, error) < 0)
		return -1;

	rc = stmt_bind(stmt, "s", key);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		value = column_dup(stmt, 0);
	stmt_finish(stmt);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		store_fail_text(store, rc, error, what, key);
	store_leave(store);

	if (value_r != NULL)
		*value_r = value;
	else
		g_free(value);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -1;
	return rc == SQLITE_ROW;
}

int
store_message_seen(struct store *store, const char *key,
    char **case_id_r, GError **error)
{
	return store_lookup_text(store, STMT_MESSAGE_SEEN, key, case_id_r,
	    error, "look up message");
}

int
store_message_record(struct store *store, const char *key,
    const char *case_id, time_t at, GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_MESSAGE_RECORD], "sst", key,
	    case_id, at);
	if (rc != SQLITE_OK)
		ret = store_fail_text(store, rc, error, "record message", key);
	store_leave(store);
	return ret;
}

int
store_case_by_message_id(struct store *store, const char *message_id,
    char **case_id_r, GError **error)
{
	char *case_id = NULL;
	int ret;

	/* The query always gives one row; NULL in it means no case. */
	ret = store_lookup_text(store, STMT_CASE_BY_MESSAGE_ID, message_id,
	    &case_id, error, "find case of message");
	if (ret > 0 && case_id == NULL)
		ret = 0;

	if (case_id_r != NULL)
		*case_id_r = case_id;
	else
		g_free(case_id);
	return ret;
}

/*
 * Cases.
 */

int
store_case_next_number(struct store *store, const char *procedure,
    int year, gint64 *number_r, GError **error)
{
	sqlite3_stmt *stmt = store->stmts[STMT_SEQUENCE_GET];
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_SEQUENCE_BUMP], "si", procedure,
	    year);
	if (rc == SQLITE_OK)
		rc = stmt_bind(stmt, "si", procedure, year);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*number_r = sqlite3_column_int64(stmt, 0);
	stmt_finish(stmt);

	if (rc != SQLITE_ROW)
		ret = store_fail(store, rc, error, "next %s number for %d",
		    procedure, year);
	store_leave(store);
	return ret;
}

int
store_case_create(struct store *store, const struct case_record *rec,
    GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_CASE_CREATE], "sssssttdsisdddd",
	    rec->id, rec->procedure, rec->state, rec->complainant,
	    rec->subject, rec->opened, rec->updated, rec->deadline,
	    rec->owner, rec->chain_step, rec->function, rec->linked_case,
	    rec->acknowledged, rec->responded, rec->closed);
	if (rc != SQLITE_OK)
		ret = store_fail(store, rc, error, "insert case %s", rec->id);
	store_leave(store);
	return ret;
}

int
store_case_get(struct store *store, const char *case_id,
    struct case_record *rec_r, GError **error)
{
	sqlite3_stmt *stmt = store->stmts[STMT_CASE_GET];
	int ret;
	int rc;

	memset(rec_r, 0, sizeof(*rec_r));
	if (store_enter(store, FALSE, error) < 0)
		return -1;

	rc = stmt_bind(stmt, "s", case_id);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		case_from_row(stmt, rec_r);
	stmt_finish(stmt);

	ret = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_fail(store, rc, error, "get case %s", case_id);
	store_leave(store);
	return ret;
}

/* After an UPDATE meant for one row: 0 if it changed exactly one. */
static int G_GNUC_PRINTF(4, 5)
store_updated_one(struct store *store, int rc, GError **error,
    const char *fmt, ...)
{
	va_list ap;
	char *what;

	if (rc == SQLITE_OK && sqlite3_changes(store->db) == 1)
		return 0;

	va_start(ap, fmt);
	what = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	if (rc == SQLITE_OK)
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: %s: no such row", what);
	else
		store_fail(store, rc, error, "%s", what);
	g_free(what);
	return -1;
}

int
store_case_set_state(struct store *store, const char *case_id,
    const char *state, time_t deadline, time_t at, GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_CASE_SET_STATE], "ssdt", case_id,
	    state, deadline, at);
	ret = store_updated_one(store, rc, error, "set state of case %s",
	    case_id);
	store_leave(store);
	return ret;
}

/*
 * Run statement ID, bound per TYPES, for at most one row: READ copies it
 * into OUT. 1 found, 0 not, -1 failed (WHAT names the lookup).
 */
static int
store_get_one(struct store *store, enum stmt_id id,
    void (*read)(sqlite3_stmt *, void *), void *out, const char *what,
    GError **error, const char *types, ...)
{
	sqlite3_stmt *stmt = store->stmts[id];
	va_list ap;
	int ret;
	int rc;

	if (store_enter(store, FALSE, error) < 0)
		return -1;

	va_start(ap, types);
	rc = stmt_bindv(stmt, types, ap);
	va_end(ap);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW && read != NULL)
		read(stmt, out);
	stmt_finish(stmt);

	ret = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_fail(store, rc, error, "%s", what);
	store_leave(store);
	return ret;
}

static void
read_text(sqlite3_stmt *stmt, void *out)
{
	*(char **)out = column_dup(stmt, 0);
}

static void
read_int(sqlite3_stmt *stmt, void *out)
{
	*(int *)out = sqlite3_column_int(stmt, 0);
}

static void
read_time(sqlite3_stmt *stmt, void *out)
{
	*(time_t *)out = column_time(stmt, 0);
}

static void
read_timer(sqlite3_stmt *stmt, void *out)
{
	timer_from_row(stmt, out);
}

int
store_case_save(struct store *store, const struct case_record *rec,
    GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_CASE_SAVE], "sstdsissddd", rec->id,
	    rec->state, rec->updated, rec->deadline, rec->owner,
	    rec->chain_step, rec->function, rec->linked_case,
	    rec->acknowledged, rec->responded, rec->closed);
	ret = store_updated_one(store, rc, error, "save case %s", rec->id);
	store_leave(store);
	return ret;
}

int
store_case_contact_set(struct store *store, const char *case_id,
    const char *name, const char *address, GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_CONTACT_SET], "sss", case_id, name,
	    address);
	if (rc != SQLITE_OK)
		ret = store_fail(store, rc, error, "set contact %s of case %s",
		    name, case_id);
	store_leave(store);
	return ret;
}

int
store_case_contact_get(struct store *store, const char *case_id,
    const char *name, char **address_r, GError **error)
{
	*address_r = NULL;
	return store_get_one(store, STMT_CONTACT_GET, read_text, address_r,
	    "get a contact of a case", error, "ss", case_id, name);
}

int
store_case_contact_is(struct store *store, const char *case_id,
    const char *address, GError **error)
{
	return store_get_one(store, STMT_CONTACT_IS, NULL, NULL,
	    "look up the contacts of a case", error, "ss", case_id, address);
}

/*
 * Timers.
 */

int
store_timer_add(struct store *store, struct timer_record *t,
    GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_TIMER_ADD], "ssstdls", t->case_id,
	    timer_kinds[t->kind], t->state, t->armed, t->due, t->remaining,
	    timer_statuses[t->status]);
	if (rc == SQLITE_OK)
		t->id = sqlite3_last_insert_rowid(store->db);
	else
		ret = store_fail(store, rc, error, "add timer to case %s",
		    t->case_id);
	store_leave(store);
	return ret;
}

int
store_timer_update(struct store *store, const struct timer_record *t,
    GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_TIMER_UPDATE], "lsdld", t->id,
	    timer_statuses[t->status], t->due, t->remaining, t->ended);
	ret = store_updated_one(store, rc, error, "update timer %"
	    G_GINT64_FORMAT, t->id);
	store_leave(store);
	return ret;
}

int
store_timer_next_due(struct store *store, time_t now,
    struct timer_record *t_r, GError **error)
{
	memset(t_r, 0, sizeof(*t_r));
	return store_get_one(store, STMT_TIMER_NEXT_DUE, read_timer, t_r,
	    "find due timer", error, "t", now);
}

int
store_timer_earliest(struct store *store, time_t *due_r, GError **error)
{
	int rc;

	/* min() gives one row, NULL (read as 0) when there is no timer. */
	*due_r = 0;
	rc = store_get_one(store, STMT_TIMER_EARLIEST, read_time, due_r,
	    "find next timer", error, "");
	return rc < 0 ? -1 : *due_r != 0;
}

int
store_case_add_ticket(struct store *store, const char *case_id,
    const char *ticket, GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_TICKET_ADD], "ss", case_id, ticket);
	if (rc != SQLITE_OK)
		ret = store_fail(store, rc, error, "add ticket to case %s",
		    case_id);
	store_leave(store);
	return ret;
}

int
store_event_add(struct store *store, const char *case_id, time_t at,
    const char *actor, const char *kind, const char *detail,
    GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_EVENT_ADD], "stsss", case_id, at,
	    actor, kind, detail);
	if (rc != SQLITE_OK)
		ret = store_fail(store, rc, error, "add %s event to case %s",
		    kind, case_id == NULL ? "(none)" : case_id);
	store_leave(store);
	return ret;
}

/*
 * Outbox.
 */

int
store_outbox_queue(struct store *store, struct outgoing *mail,
    GError **error)
{
	time_t next = mail->next_attempt != 0 ? mail->next_attempt :
	    mail->created;
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_OUTBOX_QUEUE], "ssssssssssstts",
	    mail->case_id, mail->kind, mail->sender, mail->sender_name,
	    mail->recipient, mail->subject, mail->body, mail->message_id,
	    mail->in_reply_to, mail->references, mail->auto_submitted,
	    mail->created, next, mail->reply_to);
	if (rc == SQLITE_OK) {
		mail->id = sqlite3_last_insert_rowid(store->db);
		mail->next_attempt = next;
		mail->attempts = 0;
		mail->state = OUTGOING_QUEUED;
	} else {
		ret = store_fail_text(store, rc, error, "queue mail to",
		    mail->recipient);
	}
	store_leave(store);
	return ret;
}

int
store_outbox_count_to(struct store *store, const char *recipient,
    time_t since, int *count_r, GError **error)
{
	*count_r = 0;
	return store_get_one(store, STMT_OUTBOX_COUNT_TO, read_int, count_r,
	    "count mail to a recipient", error, "st", recipient, since) < 0 ?
	    -1 : 0;
}

int
store_outbox_count_case(struct store *store, const char *case_id,
    const char *kind, time_t since, int *count_r, GError **error)
{
	*count_r = 0;
	return store_get_one(store, STMT_OUTBOX_COUNT_CASE, read_int, count_r,
	    "count mail of a case", error, "sts", case_id, since, kind) < 0 ?
	    -1 : 0;
}

int
store_outbox_next_due(struct store *store, time_t now,
    struct outgoing *mail_r, GError **error)
{
	sqlite3_stmt *stmt = store->stmts[STMT_OUTBOX_NEXT_DUE];
	int ret;
	int rc;

	memset(mail_r, 0, sizeof(*mail_r));
	if (store_enter(store, FALSE, error) < 0)
		return -1;

	rc = stmt_bind(stmt, "t", now);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		outgoing_from_row(stmt, mail_r);
	stmt_finish(stmt);

	ret = rc == SQLITE_ROW;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		ret = store_fail(store, rc, error, "find due mail");
	store_leave(store);
	return ret;
}

int
store_outbox_mark_sent(struct store *store, gint64 id, time_t at,
    GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_OUTBOX_SENT], "lt", id, at);
	ret = store_updated_one(store, rc, error,
	    "mark outbox row %" G_GINT64_FORMAT " sent", id);
	store_leave(store);
	return ret;
}

int
store_outbox_mark_retry(struct store *store, gint64 id, time_t next,
    const char *reason, GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_OUTBOX_RETRY], "lts", id, next,
	    reason);
	ret = store_updated_one(store, rc, error,
	    "mark outbox row %" G_GINT64_FORMAT " for retry", id);
	store_leave(store);
	return ret;
}

int
store_outbox_claim(struct store *store, gint64 id, time_t now,
    time_t until, GError **error)
{
	int ret;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_OUTBOX_CLAIM], "ltt", id, now,
	    until);
	if (rc == SQLITE_OK)
		ret = sqlite3_changes(store->db) == 1 ? 1 : 0;
	else
		ret = store_fail(store, rc, error, "claim outbox row %"
		    G_GINT64_FORMAT, id);
	store_leave(store);
	return ret;
}

int
store_outbox_release(struct store *store, gint64 id, time_t until,
    time_t now, GError **error)
{
	/* A claim the other way round: due at NOW if still ours. */
	return store_outbox_claim(store, id, until, now, error) < 0 ? -1 : 0;
}

int
store_outbox_requeue(struct store *store, const char *case_id,
    time_t now, int *count_r, GError **error)
{
	int ret = 0;
	int rc;

	if (store_enter(store, TRUE, error) < 0)
		return -1;

	rc = stmt_exec(store->stmts[STMT_OUTBOX_REQUEUE], "st", case_id,
	    now);
	if (rc == SQLITE_OK && count_r != NULL)
		*count_r = sqlite3_changes(store->db);
	if (rc != SQLITE_OK)
		ret = store_fail(store, rc, error, "requeue mail of %s",
		    case_id == NULL ? "all cases" : case_id);
	store_leave(store);
	return ret;
}

/*
 * Listings. A walk steps one statement and hands each row, copied into
 * a record, to a visitor that calls the caller's callback.
 */

typedef gboolean (*row_visit_fn)(sqlite3_stmt *stmt, void *walk);

struct case_walk { store_case_cb cb; void *data; };
struct ticket_walk { store_ticket_cb cb; void *data; };
struct event_walk { store_event_cb cb; void *data; };
struct outgoing_walk { store_outgoing_cb cb; void *data; };
struct timer_walk { store_timer_cb cb; void *data; };
struct deadline_walk { store_deadline_count_cb cb; void *data; };

/* Walk statement ID with its parameters bound per TYPES (see stmt_bind). */
static int
store_walk_bound(struct store *store, enum stmt_id id, row_visit_fn visit,
    void *walk, GError **error, const char *types, ...)
{
	sqlite3_stmt *stmt = store->stmts[id];
	va_list ap;
	int rc;

	if (store_enter(store, FALSE, error) < 0)
		return -1;
	/* A callback restarting its own walk would reset it under us. */
	if (sqlite3_stmt_busy(stmt)) {
		store_leave(store);
		g_set_error(error, ESC_ERROR, ESC_ERROR_FAILED,
		    "BUG: store: listing started inside itself");
		return -1;
	}

	va_start(ap, types);
	rc = stmt_bindv(stmt, types, ap);
	va_end(ap);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		rc = sqlite3_step(stmt);
		if (rc == SQLITE_ROW && !visit(stmt, walk))
			rc = SQLITE_DONE;
	}
	stmt_finish(stmt);

	if (rc != SQLITE_DONE)
		store_fail(store, rc, error, "listing");
	store_leave(store);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Walk a listing of one case (CASE_ID), or of all (NULL). */
static int
store_walk(struct store *store, enum stmt_id id, const char *case_id,
    row_visit_fn visit, void *walk, GError **error)
{
	if (case_id == NULL)
		return store_walk_bound(store, id, visit, walk, error, "");
	return store_walk_bound(store, id, visit, walk, error, "s", case_id);
}

static gboolean
case_visit(sqlite3_stmt *stmt, void *walk)
{
	struct case_walk *w = walk;
	struct case_record rec;
	gboolean more;

	case_from_row(stmt, &rec);
	more = w->cb(&rec, w->data);
	case_record_clear(&rec);
	return more;
}

static gboolean
ticket_visit(sqlite3_stmt *stmt, void *walk)
{
	struct ticket_walk *w = walk;
	char *ticket = column_dup(stmt, 0);
	gboolean more;

	more = w->cb(ticket, w->data);
	g_free(ticket);
	return more;
}

static gboolean
event_visit(sqlite3_stmt *stmt, void *walk)
{
	struct event_walk *w = walk;
	struct event_record rec;
	gboolean more;

	event_from_row(stmt, &rec);
	more = w->cb(&rec, w->data);
	g_free(rec.case_id);
	g_free(rec.actor);
	g_free(rec.kind);
	g_free(rec.detail);
	return more;
}

static gboolean
outgoing_visit(sqlite3_stmt *stmt, void *walk)
{
	struct outgoing_walk *w = walk;
	struct outgoing mail;
	gboolean more;

	outgoing_from_row(stmt, &mail);
	more = w->cb(&mail, w->data);
	outgoing_clear(&mail);
	return more;
}

int
store_cases_each(struct store *store, store_case_cb cb, void *data,
    GError **error)
{
	struct case_walk walk = { cb, data };

	return store_walk(store, STMT_CASES_EACH, NULL, case_visit, &walk,
	    error);
}

int
store_case_tickets_each(struct store *store, const char *case_id,
    store_ticket_cb cb, void *data, GError **error)
{
	struct ticket_walk walk = { cb, data };

	return store_walk(store, STMT_TICKETS_EACH, case_id, ticket_visit,
	    &walk, error);
}

int
store_case_events_each(struct store *store, const char *case_id,
    store_event_cb cb, void *data, GError **error)
{
	struct event_walk walk = { cb, data };

	return store_walk(store, STMT_EVENTS_EACH, case_id, event_visit,
	    &walk, error);
}

int
store_case_outbox_each(struct store *store, const char *case_id,
    store_outgoing_cb cb, void *data, GError **error)
{
	struct outgoing_walk walk = { cb, data };

	return store_walk(store, STMT_OUTBOX_EACH, case_id, outgoing_visit,
	    &walk, error);
}

static gboolean
timer_visit(sqlite3_stmt *stmt, void *walk)
{
	struct timer_walk *w = walk;
	struct timer_record t;
	gboolean more;

	timer_from_row(stmt, &t);
	more = w->cb(&t, w->data);
	timer_record_clear(&t);
	return more;
}

static gboolean
deadline_visit(sqlite3_stmt *stmt, void *walk)
{
	struct deadline_walk *w = walk;

	return w->cb((const char *)sqlite3_column_text(stmt, 0),
	    sqlite3_column_int(stmt, 1), sqlite3_column_int(stmt, 2),
	    w->data);
}

int
store_case_timers_each(struct store *store, const char *case_id,
    store_timer_cb cb, void *data, GError **error)
{
	struct timer_walk walk = { cb, data };

	return store_walk_bound(store, STMT_CASE_TIMERS_EACH, timer_visit,
	    &walk, error, "s", case_id);
}

int
store_timers_each(struct store *store, store_timer_cb cb, void *data,
    GError **error)
{
	struct timer_walk walk = { cb, data };

	return store_walk_bound(store, STMT_TIMERS_EACH, timer_visit, &walk,
	    error, "");
}

int
store_timers_missed_each(struct store *store, time_t since,
    store_timer_cb cb, void *data, GError **error)
{
	struct timer_walk walk = { cb, data };

	return store_walk_bound(store, STMT_TIMERS_MISSED_EACH, timer_visit,
	    &walk, error, "t", since);
}

int
store_cases_opened_each(struct store *store, time_t from, time_t to,
    store_case_cb cb, void *data, GError **error)
{
	struct case_walk walk = { cb, data };

	return store_walk_bound(store, STMT_CASES_OPENED_EACH, case_visit,
	    &walk, error, "tt", from, to);
}

int
store_deadlines_count(struct store *store, time_t from, time_t to,
    store_deadline_count_cb cb, void *data, GError **error)
{
	struct deadline_walk walk = { cb, data };

	return store_walk_bound(store, STMT_DEADLINES_COUNT, deadline_visit,
	    &walk, error, "tt", from, to);
}

/*
 * Records.
 */

void
case_record_clear(struct case_record *rec)
{
	g_free(rec->id);
	g_free(rec->procedure);
	g_free(rec->state);
	g_free(rec->complainant);
	g_free(rec->subject);
	g_free(rec->owner);
	g_free(rec->function);
	g_free(rec->linked_case);
	memset(rec, 0, sizeof(*rec));
}

void
timer_record_clear(struct timer_record *t)
{
	g_free(t->case_id);
	g_free(t->state);
	memset(t, 0, sizeof(*t));
}

void
outgoing_clear(struct outgoing *mail)
{
	g_free(mail->case_id);
	g_free(mail->kind);
	g_free(mail->sender);
	g_free(mail->sender_name);
	g_free(mail->recipient);
	g_free(mail->subject);
	g_free(mail->body);
	g_free(mail->message_id);
	g_free(mail->in_reply_to);
	g_free(mail->references);
	g_free(mail->auto_submitted);
	g_free(mail->last_error);
	g_free(mail->reply_to);
	memset(mail, 0, sizeof(*mail));
}

/*
 * Backup.
 */

#define BACKUP_FILE_MODE 0640
#define BACKUP_RETRY_MS 50

/* Make PATH, which must not exist, with our mode; it is then ours. */
static int
backup_create_file(const char *path, GError **error)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, BACKUP_FILE_MODE);

	if (fd < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "store: backup to %s: %s", path, errno == EEXIST ?
		    "exists; not overwritten" : g_strerror(errno));
		return -1;
	}
	if (fchmod(fd, BACKUP_FILE_MODE) < 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "store: backup to %s: fchmod: %s", path,
		    g_strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * Copy every page in one step, so the copy is one snapshot of the
 * store: in WAL mode the step reads under one read transaction, which
 * blocks no writer. A writer of this connection holding its lock is
 * waited for, as is a checkpoint of another one, up to the busy
 * timeout.
 */
static int
backup_copy(struct store *store, sqlite3 *dest, GError **error)
{
	sqlite3_backup *backup = sqlite3_backup_init(dest, "main", store->db,
	    "main");
	int waited = 0;
	int rc;

	if (backup == NULL) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: backup: %s", sqlite3_errmsg(dest));
		return -1;
	}
	do {
		rc = sqlite3_backup_step(backup, -1);
		if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
			sqlite3_sleep(BACKUP_RETRY_MS);
			waited += BACKUP_RETRY_MS;
		}
	} while ((rc == SQLITE_BUSY || rc == SQLITE_LOCKED) &&
	    waited < STORE_BUSY_TIMEOUT_MS);
	sqlite3_backup_finish(backup);
	if (rc == SQLITE_DONE)
		rc = sqlite3_errcode(dest);
	if (rc == SQLITE_DONE || rc == SQLITE_OK)
		return 0;
	return store_fail(store, rc, error, "backup");
}

/* "ok" from a quick check of the copy, or fail. */
static int
backup_verify(sqlite3 *dest, GError **error)
{
	sqlite3_stmt *stmt;
	const unsigned char *answer;
	int rc = sqlite3_prepare_v2(dest, "PRAGMA quick_check", -1, &stmt,
	    NULL);
	int ok = 0;

	if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
		answer = sqlite3_column_text(stmt, 0);
		ok = answer != NULL && strcmp((const char *)answer, "ok") == 0;
	}
	sqlite3_finalize(stmt);
	if (ok)
		return 0;
	g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
	    "store: backup: the copy fails its check: %s",
	    sqlite3_errmsg(dest));
	return -1;
}

int
store_backup(struct store *store, const char *path, GError **error)
{
	sqlite3 *dest = NULL;
	int rc;

	if (backup_create_file(path, error) < 0)
		return -1;
	rc = sqlite3_open_v2(path, &dest, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: backup to %s: open: %s", path, dest != NULL ?
		    sqlite3_errmsg(dest) : sqlite3_errstr(rc));
	} else {
		sqlite3_extended_result_codes(dest, 1);
		pthread_mutex_lock(&store->lock);
		rc = backup_copy(store, dest, error);
		pthread_mutex_unlock(&store->lock);
		if (rc == 0)
			rc = backup_verify(dest, error);
	}
	if (dest != NULL && sqlite3_close(dest) != SQLITE_OK && rc == 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: backup to %s: close failed", path);
		rc = -1;
	}
	if (rc != 0) {
		/* A partial copy must not pass for a backup. */
		unlink(path);
		return -1;
	}
	return 0;
}

/*
 * Size.
 */

int
store_set_max_size(struct store *store, gint64 bytes, GError **error)
{
	sqlite3_stmt *stmt;
	gint64 page_size = 0;
	gint64 pages;
	char *sql;
	int rc;

	pthread_mutex_lock(&store->lock);
	rc = sqlite3_prepare_v2(store->db, "PRAGMA page_size", -1, &stmt,
	    NULL);
	if (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW)
		page_size = sqlite3_column_int64(stmt, 0);
	sqlite3_finalize(stmt);
	if (page_size <= 0) {
		pthread_mutex_unlock(&store->lock);
		return store_fail(store, rc, error, "page size");
	}

	/* SQLite's own ceiling stands for "no limit"; it never goes below
	 * the pages in use, so a store over the limit only stops growing. */
	pages = bytes > 0 ? MAX(bytes / page_size, 1) : G_MAXUINT32 - 1;
	/* A pragma takes no parameters; PAGES is a number we made. */
	sql = g_strdup_printf("PRAGMA max_page_count = %" G_GINT64_FORMAT,
	    pages);
	stmt = NULL;
	rc = sqlite3_prepare_v2(store->db, sql, -1, &stmt, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW)
		rc = SQLITE_OK;
	sqlite3_finalize(stmt);
	g_free(sql);
	pthread_mutex_unlock(&store->lock);
	if (rc != SQLITE_OK)
		return store_fail(store, rc, error, "set maximum size");
	return 0;
}
