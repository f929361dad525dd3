/*
 * schema.c: the SQLite schema and its migrations. The schema version is
 * PRAGMA user_version; migration N takes a store from version N-1 to N,
 * and all pending ones run in one immediate transaction, so a store is
 * never left half-migrated and two processes opening it at once migrate
 * it once. Migrations only ever go forward: a store written by a newer
 * build is refused rather than guessed at.
 *
 * Times are Unix seconds in INTEGER columns; a case without a deadline
 * has NULL there, so the partial index holds only cases a timer needs.
 * Every lookup in store.c is served by an index; cases_opened lets the
 * listing of all cases stream in order instead of sorting them all.
 */
#include <sqlite3.h>

#include "common/error.h"
#include "store/store.h"

/* Index N-1 takes the schema to version N. Append; never edit. */
static const char *const migrations[] = {
	/* 1: everything. */
	"CREATE TABLE cases ("
	"  id TEXT PRIMARY KEY NOT NULL,"
	"  procedure TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  complainant TEXT,"
	"  subject TEXT,"
	"  opened INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  deadline INTEGER"
	");"
	"CREATE INDEX cases_deadline ON cases (deadline)"
	"  WHERE deadline IS NOT NULL;"
	"CREATE INDEX cases_opened ON cases (opened, id);"
	"CREATE TABLE case_tickets ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id TEXT NOT NULL REFERENCES cases (id),"
	"  ticket TEXT NOT NULL,"
	"  UNIQUE (case_id, ticket)"
	");"
	"CREATE TABLE messages ("
	"  key TEXT PRIMARY KEY NOT NULL,"
	"  case_id TEXT REFERENCES cases (id),"
	"  seen_at INTEGER NOT NULL"
	");"
	"CREATE TABLE events ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id TEXT REFERENCES cases (id),"
	"  at INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  kind TEXT NOT NULL,"
	"  detail TEXT"
	");"
	"CREATE INDEX events_case_at ON events (case_id, at);"
	/* refs holds the References header: the word is reserved in SQL. */
	"CREATE TABLE outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id TEXT REFERENCES cases (id),"
	"  kind TEXT NOT NULL,"
	"  sender TEXT NOT NULL,"
	"  sender_name TEXT,"
	"  recipient TEXT NOT NULL,"
	"  subject TEXT NOT NULL,"
	"  body TEXT NOT NULL,"
	"  message_id TEXT NOT NULL UNIQUE,"
	"  in_reply_to TEXT,"
	"  refs TEXT,"
	"  auto_submitted TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  next_attempt INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL DEFAULT 'queued'"
	"    CHECK (state IN ('queued', 'sent', 'failed')),"
	"  last_error TEXT,"
	"  sent_at INTEGER"
	");"
	"CREATE INDEX outbox_due ON outbox (state, next_attempt);"
	"CREATE INDEX outbox_recipient ON outbox (recipient, created);"
	"CREATE INDEX outbox_case ON outbox (case_id);"
	"CREATE TABLE sequences ("
	"  procedure TEXT NOT NULL,"
	"  year INTEGER NOT NULL,"
	"  last INTEGER NOT NULL,"
	"  PRIMARY KEY (procedure, year)"
	");",
	/* 2: procedures from rules: who holds a case, where it stands on
	 * its chain, contacts named by commands, timers, and Reply-To. */
	"ALTER TABLE cases ADD COLUMN owner TEXT;"
	"ALTER TABLE cases ADD COLUMN chain_step INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE cases ADD COLUMN function TEXT;"
	"ALTER TABLE cases ADD COLUMN linked_case TEXT;"
	"ALTER TABLE cases ADD COLUMN acknowledged INTEGER;"
	"ALTER TABLE cases ADD COLUMN responded INTEGER;"
	"ALTER TABLE cases ADD COLUMN closed INTEGER;"
	"CREATE TABLE case_contacts ("
	"  case_id TEXT NOT NULL REFERENCES cases (id),"
	"  name TEXT NOT NULL,"
	"  address TEXT NOT NULL,"
	"  PRIMARY KEY (case_id, name)"
	");"
	/* due is NULL while suspended (clock paused), remaining then holds
	 * the working seconds left; ended is when it fired or was
	 * cancelled, so a deadline met is one cancelled before its due. */
	"CREATE TABLE timers ("
	"  id INTEGER PRIMARY KEY,"
	"  case_id TEXT NOT NULL REFERENCES cases (id),"
	"  kind TEXT NOT NULL CHECK (kind IN ('deadline', 'warning')),"
	"  state TEXT NOT NULL,"
	"  armed INTEGER NOT NULL,"
	"  due INTEGER,"
	"  remaining INTEGER,"
	"  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN"
	"    ('pending', 'suspended', 'fired', 'cancelled')),"
	"  ended INTEGER"
	");"
	"CREATE INDEX timers_due ON timers (due) WHERE status = 'pending';"
	"CREATE INDEX timers_case ON timers (case_id, status);"
	"CREATE INDEX timers_ended ON timers (ended)"
	"  WHERE status IN ('fired', 'cancelled');"
	"ALTER TABLE outbox ADD COLUMN reply_to TEXT;",
};

#define SCHEMA_VERSION ((int)G_N_ELEMENTS(migrations))

static int
schema_fail(sqlite3 *db, int rc, GError **error, const char *what)
{
	int primary = rc & 0xff;
	int code = primary == SQLITE_BUSY || primary == SQLITE_LOCKED ?
	    ESC_ERROR_BUSY : ESC_ERROR_STORE;

	g_set_error(error, ESC_ERROR, code, "store: %s: %s", what,
	    sqlite3_errmsg(db));
	return -1;
}

static int
schema_version(sqlite3 *db, int *version_r, GError **error)
{
	sqlite3_stmt *stmt;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, NULL);
	if (rc != SQLITE_OK)
		return schema_fail(db, rc, error, "read schema version");

	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW)
		*version_r = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	if (rc != SQLITE_ROW)
		return schema_fail(db, rc, error, "read schema version");
	return 0;
}

static int
schema_check(int version, gboolean readonly, GError **error)
{
	if (version > SCHEMA_VERSION) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: schema version %d is newer than this build's %d",
		    version, SCHEMA_VERSION);
		return -1;
	}
	if (readonly && version < SCHEMA_VERSION) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "store: schema version %d, want %d: open the store "
		    "read-write once to migrate it", version, SCHEMA_VERSION);
		return -1;
	}
	return 0;
}

/* Run migrations FROM+1 .. latest inside the caller's transaction. */
static int
schema_apply(sqlite3 *db, int from, GError **error)
{
	char *sql;
	int rc;

	for (int v = from + 1; v <= SCHEMA_VERSION; v++) {
		rc = sqlite3_exec(db, migrations[v - 1], NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			char *what = g_strdup_printf("migrate to version %d",
			    v);

			schema_fail(db, rc, error, what);
			g_free(what);
			return -1;
		}
	}

	/* PRAGMA takes no parameters; the number is ours, not input. */
	sql = g_strdup_printf("PRAGMA user_version = %d", SCHEMA_VERSION);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	g_free(sql);
	if (rc != SQLITE_OK)
		return schema_fail(db, rc, error, "set schema version");
	return 0;
}

int
schema_migrate(sqlite3 *db, gboolean readonly, GError **error)
{
	int version;
	int rc;

	/* The common case, an up-to-date store, takes no write lock. */
	if (schema_version(db, &version, error) < 0 ||
	    schema_check(version, readonly, error) < 0)
		return -1;
	if (version == SCHEMA_VERSION)
		return 0;

	/* Look again under the lock: another process may have migrated. */
	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return schema_fail(db, rc, error, "begin migration");
	if (schema_version(db, &version, error) < 0 ||
	    schema_check(version, readonly, error) < 0 ||
	    schema_apply(db, version, error) < 0) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}

	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		schema_fail(db, rc, error, "commit migration");
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return SCHEMA_VERSION - version;
}
