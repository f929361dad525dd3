/*
 * store.h: everything escalator keeps, by meaning. Nothing outside
 * store/ speaks SQL, so a second backend is a new file here.
 *
 * The SQLite store runs in WAL mode with synchronous=FULL (a case whose
 * message the MTA was told is accepted survives a power cut), foreign
 * keys on, a busy timeout, and statements prepared once. There is one
 * writer connection per process, guarded by a mutex: store_begin() takes
 * it and starts an immediate transaction, store_commit() or
 * store_rollback() ends both; a failed commit is rolled back and ends
 * them too. Every write must be made inside such a transaction; the
 * listings and lookups (seen, by_message_id, get, count_to, next_due)
 * may also be made outside one, and so on a STORE_READONLY store, which
 * refuses store_begin().
 *
 * Returns: functions returning int give 0 on success and -1 with ERROR
 * set on failure; lookups give 1 found, 0 not found, -1 could not look.
 * A locked database fails with ESC_ERROR_BUSY.
 */
#ifndef ESC_STORE_H
#define ESC_STORE_H

#include <time.h>
#include <glib.h>

struct store;

enum store_mode { STORE_READWRITE, STORE_READONLY };

struct case_record {
	char *id;		/* "ESC-2026-000042" */
	char *procedure;	/* "complaint" */
	char *state;		/* "open", "waiting-tickets", ... */
	char *complainant;	/* address the case was opened by */
	char *subject;		/* decoded subject of the first message */
	time_t opened;
	time_t updated;
	time_t deadline;	/* 0 if none */
	char *owner;		/* who took the case, or NULL */
	int chain_step;		/* 0: not escalated; N: at step N */
	char *function;		/* the function it concerns, or NULL */
	char *linked_case;	/* the case it came from, or NULL */
	time_t acknowledged;	/* first mail to the complainant; 0: none */
	time_t responded;	/* first reached a responded state; 0 */
	time_t closed;		/* reached a final state; 0: open */
};

enum timer_kind { TIMER_DEADLINE, TIMER_WARNING };
enum timer_status { TIMER_PENDING, TIMER_SUSPENDED, TIMER_FIRED,
	TIMER_CANCELLED };

/* A deadline or its warning, armed when a case entered STATE. */
struct timer_record {
	gint64 id;		/* set by store_timer_add */
	char *case_id;
	enum timer_kind kind;
	char *state;
	time_t armed;
	time_t due;		/* 0 while suspended */
	gint64 remaining;	/* working seconds left while suspended */
	enum timer_status status;
	time_t ended;		/* when fired or cancelled, else 0 */
};

struct event_record {
	gint64 id;
	char *case_id;
	time_t at;
	char *actor;		/* address, "escalator" or a role */
	char *kind;		/* "opened", "message", "ack-queued", ... */
	char *detail;
};

enum outgoing_state { OUTGOING_QUEUED, OUTGOING_SENT, OUTGOING_FAILED };

struct outgoing {
	gint64 id;		/* set by store_outbox_queue */
	char *case_id;
	char *kind;		/* "ack", ... */
	char *sender;		/* envelope sender and From address */
	char *sender_name;	/* From display name, UTF-8, may be NULL */
	char *recipient;	/* one recipient per row */
	char *subject;		/* UTF-8 */
	char *body;		/* UTF-8 */
	char *message_id;	/* without brackets */
	char *in_reply_to;	/* without brackets, may be NULL */
	char *references;	/* space-separated, bracketed, may be NULL */
	char *auto_submitted;	/* "auto-replied" or "auto-generated" */
	time_t created;
	time_t next_attempt;
	int attempts;
	enum outgoing_state state;
	char *last_error;	/* may be NULL */
	time_t sent_at;		/* 0 until sent */
	char *reply_to;		/* Reply-To address, may be NULL */
};

/* Open PATH, creating it (mode 0640) and migrating its schema when
 * read-write. Read-only needs an existing store at the current schema. */
struct store *store_open(const char *path, enum store_mode mode,
    GError **error);
void store_close(struct store **store);

/* Durability: FULL (the default) survives a power cut; NORMAL may lose
 * the last commits then but never corrupts; OFF is for tests. */
enum store_sync { STORE_SYNC_FULL, STORE_SYNC_NORMAL, STORE_SYNC_OFF };
/* "full", "normal", "off"; -1 if unknown. */
int store_sync_parse(const char *word);
/* Outside a transaction only. */
int store_set_synchronous(struct store *store, enum store_sync sync,
    GError **error);
/* How long to wait for another connection's lock (default 5000 ms)
 * before failing with ESC_ERROR_BUSY. */
void store_set_busy_timeout(struct store *store, int ms);

int store_begin(struct store *store, GError **error);
int store_commit(struct store *store, GError **error);
void store_rollback(struct store *store);

/* Messages seen, for dedupe and threading. KEY is the Message-ID
 * (without brackets, as outgoing message ids are kept) or, when
 * missing, "digest:" plus the message digest. *CASE_ID_R (may be NULL)
 * gets the case or NULL. Recording a key twice is an error. */
int store_message_seen(struct store *store, const char *key,
    char **case_id_r, GError **error);
int store_message_record(struct store *store, const char *key,
    const char *case_id, time_t at, GError **error);
/* The case a message id belongs to: a message we saw or one we sent. */
int store_case_by_message_id(struct store *store, const char *message_id,
    char **case_id_r, GError **error);

/* Cases. The next number in the sequence for PROCEDURE and YEAR. */
int store_case_next_number(struct store *store, const char *procedure,
    int year, gint64 *number_r, GError **error);
int store_case_create(struct store *store, const struct case_record *rec,
    GError **error);
/* REC_R is zeroed first, so case_record_clear() is always safe. */
int store_case_get(struct store *store, const char *case_id,
    struct case_record *rec_r, GError **error);
int store_case_set_state(struct store *store, const char *case_id,
    const char *state, time_t deadline, time_t at, GError **error);
/* Write every changeable field of REC (all but id, procedure,
 * complainant, subject and opened). */
int store_case_save(struct store *store, const struct case_record *rec,
    GError **error);
/* Contacts a command named for a case ("tld-manager"): set replaces. */
int store_case_contact_set(struct store *store, const char *case_id,
    const char *name, const char *address, GError **error);
int store_case_contact_get(struct store *store, const char *case_id,
    const char *name, char **address_r, GError **error);
/* Is ADDRESS a contact of the case (1) or not (0)? */
int store_case_contact_is(struct store *store, const char *case_id,
    const char *address, GError **error);

/* Timers. Add sets T's id. Update writes status, due, remaining and
 * ended. next_due gives the pending timer due longest at NOW; earliest
 * the due time of the next pending one (1), or none (0). */
int store_timer_add(struct store *store, struct timer_record *t,
    GError **error);
int store_timer_update(struct store *store, const struct timer_record *t,
    GError **error);
int store_timer_next_due(struct store *store, time_t now,
    struct timer_record *t_r, GError **error);
int store_timer_earliest(struct store *store, time_t *due_r,
    GError **error);

/* Adding a ticket the case already cites does nothing. */
int store_case_add_ticket(struct store *store, const char *case_id,
    const char *ticket, GError **error);

int store_event_add(struct store *store, const char *case_id, time_t at,
    const char *actor, const char *kind, const char *detail,
    GError **error);

/* Outbox. Queue sets MAIL's id and stores it queued with no attempts;
 * a NEXT_ATTEMPT of 0 means due at CREATED. */
int store_outbox_queue(struct store *store, struct outgoing *mail,
    GError **error);
/* Mail sent by us to RECIPIENT since SINCE (for rate limits). */
int store_outbox_count_to(struct store *store, const char *recipient,
    time_t since, int *count_r, GError **error);
/* Mail of template KIND queued for CASE_ID since SINCE. */
int store_outbox_count_case(struct store *store, const char *case_id,
    const char *kind, time_t since, int *count_r, GError **error);
/* The queued row due longest at NOW, if any (MAIL_R zeroed first). */
int store_outbox_next_due(struct store *store, time_t now,
    struct outgoing *mail_r, GError **error);
int store_outbox_mark_sent(struct store *store, gint64 id, time_t at,
    GError **error);
/* Failed attempt: retry at NEXT, or give up (state failed) if NEXT is 0. */
int store_outbox_mark_retry(struct store *store, gint64 id, time_t next,
    const char *reason, GError **error);
/*
 * Claim row ID for one sender until UNTIL: 1 if it was still queued and
 * due at NOW (it is then due again only at UNTIL, should the sender
 * die), 0 if another process claimed or sent it first.
 */
int store_outbox_claim(struct store *store, gint64 id, time_t now,
    time_t until, GError **error);
/* Give back row ID, claimed until UNTIL and not tried: due again at NOW. */
int store_outbox_release(struct store *store, gint64 id, time_t until,
    time_t now, GError **error);
/* Make failed rows of CASE_ID (or all, if NULL) queued and due at NOW,
 * with their attempts counted afresh. */
int store_outbox_requeue(struct store *store, const char *case_id,
    time_t now, int *count_r, GError **error);

/* Listings: callbacks get records owned by the store for the call. They
 * need no transaction. A callback returning FALSE stops the walk. A
 * callback may call the store, but not start the walk it is in again.
 * Cases come by opening time, tickets as added, events by time, mail
 * as queued. */
typedef gboolean (*store_case_cb)(const struct case_record *, void *);
typedef gboolean (*store_event_cb)(const struct event_record *, void *);
typedef gboolean (*store_outgoing_cb)(const struct outgoing *, void *);
typedef gboolean (*store_ticket_cb)(const char *ticket, void *);
typedef gboolean (*store_timer_cb)(const struct timer_record *, void *);
/* Deadlines of PROCEDURE met and missed. */
typedef gboolean (*store_deadline_count_cb)(const char *procedure,
    int met, int missed, void *);

int store_cases_each(struct store *store, store_case_cb cb, void *data,
    GError **error);
int store_case_tickets_each(struct store *store, const char *case_id,
    store_ticket_cb cb, void *data, GError **error);
int store_case_events_each(struct store *store, const char *case_id,
    store_event_cb cb, void *data, GError **error);
int store_case_outbox_each(struct store *store, const char *case_id,
    store_outgoing_cb cb, void *data, GError **error);

/* Pending and suspended timers of a case, as armed. */
int store_case_timers_each(struct store *store, const char *case_id,
    store_timer_cb cb, void *data, GError **error);
/* Pending timers, soonest first. */
int store_timers_each(struct store *store, store_timer_cb cb, void *data,
    GError **error);
/* Deadlines that passed (fired) since SINCE, oldest first. */
int store_timers_missed_each(struct store *store, time_t since,
    store_timer_cb cb, void *data, GError **error);
/* Cases opened in [FROM, TO), and deadlines ended in it per procedure. */
int store_cases_opened_each(struct store *store, time_t from, time_t to,
    store_case_cb cb, void *data, GError **error);
int store_deadlines_count(struct store *store, time_t from, time_t to,
    store_deadline_count_cb cb, void *data, GError **error);
/*
 * Copy the whole store, as one snapshot, into a new file PATH (mode
 * 0640), with SQLite's online backup: writers of other connections go
 * on meanwhile. PATH must not exist (it is never overwritten, nor a
 * symbolic link followed); the copy is checked (quick_check) and
 * removed again if anything failed. May be called on a STORE_READONLY
 * store, outside a transaction.
 */
int store_backup(struct store *store, const char *path, GError **error);

/*
 * Let the database file grow to at most BYTES (0: no limit, the
 * default), so that it cannot fill the disk the MTA's queue is on.
 * Past it every write fails as on a full disk (ESC_ERROR_STORE,
 * "database or disk is full") and is rolled back; the milter tempfails.
 * Per connection, not kept in the file.
 */
int store_set_max_size(struct store *store, gint64 bytes, GError **error);

void case_record_clear(struct case_record *rec);
void timer_record_clear(struct timer_record *t);
void outgoing_clear(struct outgoing *mail);

/* Internal to store/ (schema.c): bring DB's schema up to the version
 * this build writes, in one transaction, or (READONLY) only check that
 * it is there. Gives the number of migrations run, or -1. */
struct sqlite3;
int schema_migrate(struct sqlite3 *db, gboolean readonly, GError **error);

#endif
