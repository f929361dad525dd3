/*
 * outbox.c: one pass over the outbox. Each due row is read, composed and
 * handed to the MTA with no transaction open (a send may take
 * SEND_TIMEOUT seconds, and the milter must not wait on the store for
 * it), then marked sent or kept for a retry in the short transaction
 * that also claims the next row: one commit per mail, not two.
 *
 * Limits: rows are tried one at a time, oldest first; a pass tries each
 * row at most once, so a store that fails to move a row cannot make it
 * spin. A mail the MTA took but the store could not mark is sent again
 * on a later pass: a duplicate is better than a loss. Every decision is
 * one log line with the case id; the MTA's words are capped and made
 * printable before they reach the log or the store.
 */
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "outbox/compose.h"
#include "outbox/outbox.h"

/* Waits after the first, second, ... failed attempt; then hourly. */
static const int backoff_steps[] = { 60, 5 * 60, 15 * 60, 30 * 60 };
#define BACKOFF_LATER 3600

int
outbox_backoff(int attempts)
{
	if (attempts <= 0)
		return 0;
	if ((size_t)attempts <= G_N_ELEMENTS(backoff_steps))
		return backoff_steps[attempts - 1];
	return BACKOFF_LATER;
}

/* What became of one send, to be recorded with the next claim. */
struct attempt {
	gboolean pending;	/* sent or tried, not yet recorded */
	gint64 id;
	int attempts;		/* before this one */
	time_t created;
	char *case_id, *to;	/* printable, for the log */
	time_t next;		/* retry at; 0: give up */
	char *reason;		/* why it failed, or NULL: sent */
};

static void
attempt_clear(struct attempt *at)
{
	g_free(at->case_id);
	g_free(at->to);
	g_free(at->reason);
	memset(at, 0, sizeof *at);
}

/* Record AT in the open transaction. */
static int
attempt_mark(struct store *store, const struct attempt *at, time_t now,
    GError **error)
{
	if (at->reason == NULL)
		return store_outbox_mark_sent(store, at->id, now, error);
	return store_outbox_mark_retry(store, at->id, at->next, at->reason,
	    error);
}

/* When to try MAIL again after a failure at NOW; 0 to give up. */
static time_t
outbox_retry_at(const struct outgoing *mail, time_t now)
{
	time_t give_up = mail->created + OUTBOX_MAX_AGE;

	if (now >= give_up)
		return 0;
	return MIN(now + outbox_backoff(mail->attempts + 1), give_up);
}

static void
log_failure(const struct outgoing *mail, time_t now, time_t next,
    const char *case_id, const char *to, const char *reason)
{
	if (next == 0)
		log_warn("case=%s outbox: failed id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d age=%llds limit=%ds: %s", case_id,
		    mail->id, to, mail->attempts + 1,
		    (long long)(now - mail->created), OUTBOX_MAX_AGE, reason);
	else
		log_warn("case=%s outbox: deferred id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d retry_in=%llds: %s", case_id,
		    mail->id, to, mail->attempts + 1,
		    (long long)(next - now), reason);
}

/* Compose and send one row, into AT; nothing is stored yet. */
static void
attempt_send(const struct send_target *target, const struct outgoing *mail,
    time_t now, struct attempt *at)
{
	GBytes *message = compose_message(mail, now);
	GError *send_error = NULL;

	at->pending = TRUE;
	at->id = mail->id;
	at->attempts = mail->attempts;
	at->created = mail->created;
	at->case_id = text_printable(mail->case_id, 64);
	at->to = text_printable(mail->recipient, TEXT_LOG_CAP);
	if (send_message(target, mail->sender, mail->recipient, message,
	    &send_error) < 0) {
		at->reason = text_printable(send_error->message, 1000);
		/* Refused for good (5xx, unknown user): no retry. */
		at->next = g_error_matches(send_error, ESC_ERROR,
		    ESC_ERROR_REJECTED) ? 0 : outbox_retry_at(mail, now);
		g_error_free(send_error);
	}
	g_bytes_unref(message);
}

/* Log what became of AT once its record committed, or did not. */
static void
attempt_log(const struct attempt *at, time_t now, const GError *store_error)
{
	struct outgoing mail = { .id = at->id, .attempts = at->attempts,
		.created = at->created };

	if (store_error != NULL)
		log_err("case=%s outbox: %s id=%" G_GINT64_FORMAT " to=<%s> "
		    "but could not record it: %s", at->case_id,
		    at->reason == NULL ? "sent" : "failed", at->id, at->to,
		    store_error->message);
	else if (at->reason == NULL)
		log_info("case=%s outbox: sent id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d", at->case_id, at->id, at->to,
		    at->attempts + 1);
	else
		log_failure(&mail, now, at->next, at->case_id, at->to,
		    at->reason);
}

/*
 * The next due row, claimed for this process in one transaction, so
 * that the daemon and "escalatorctl outbox flush" never both send it.
 * A sender that dies holding a claim leaves the row due again when the
 * claim runs out (the send timeout and a minute).
 */
static int
outbox_take(struct store *store, const struct send_target *target,
    time_t now, struct attempt *done, struct outgoing *mail,
    GError **error)
{
	time_t until = now + send_target_timeout(target) + 60;
	GError *store_error = NULL;
	int rc = 0;

	if (store_begin(store, &store_error) < 0)
		goto out;
	if (done->pending)
		rc = attempt_mark(store, done, now, &store_error);
	if (rc == 0)
		rc = store_outbox_next_due(store, now, mail, &store_error);
	if (rc == 1)
		rc = store_outbox_claim(store, mail->id, now, until,
		    &store_error);
	if (rc < 0)
		store_rollback(store);
	else if (store_commit(store, &store_error) < 0)
		rc = -1;
out:
	if (done->pending)
		attempt_log(done, now, rc < 0 ? store_error : NULL);
	attempt_clear(done);
	if (store_error != NULL) {
		rc = -1;
		g_propagate_error(error, store_error);
	}
	if (rc != 1)
		outgoing_clear(mail);
	return rc;
}

/* BUG-like, but the store's to fix: say so and end the pass. */
static void
outbox_log_stuck(const struct outgoing *mail)
{
	char *case_id = text_printable(mail->case_id, 64);

	log_err("case=%s outbox: id=%" G_GINT64_FORMAT " still due after "
	    "this pass tried it; pass stopped", case_id, mail->id);
	g_free(case_id);
}

int
outbox_run(struct store *store, const struct send_target *target,
    time_t now, GError **error)
{
	GHashTable *tried = g_hash_table_new_full(g_int64_hash,
	    g_int64_equal, g_free, NULL);
	struct attempt done = { 0 };
	int count = 0, rc = 0;

	for (;;) {
		struct outgoing mail = { 0 };
		int found = outbox_take(store, target, now, &done, &mail,
		    error);

		if (found <= 0) {
			rc = found;
			break;
		}
		if (g_hash_table_contains(tried, &mail.id)) {
			outbox_log_stuck(&mail);
			outgoing_clear(&mail);
			break;
		}
		g_hash_table_add(tried, g_memdup2(&mail.id, sizeof(mail.id)));

		count++;
		attempt_send(target, &mail, now, &done);
		outgoing_clear(&mail);
	}

	g_hash_table_destroy(tried);
	attempt_clear(&done);
	if (rc < 0) {
		g_prefix_error(error, "outbox: ");
		return -1;
	}
	return count;
}
