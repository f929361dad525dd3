/*
 * outbox.c: one pass over the outbox. Due rows are claimed a batch at a
 * time in one short transaction, composed and handed to the MTA over
 * one session with no transaction open (a send may take SEND_TIMEOUT
 * seconds, and the milter must not wait on the store for it), then
 * marked sent or kept for a retry in the transaction that also claims
 * the next batch: one commit per batch, and one SMTP connection per
 * pass, since both cost more than composing a mail.
 *
 * Limits: a pass tries each row at most once, so a store that fails to
 * move a row cannot make it spin. A mail the MTA took but the store
 * could not mark (the daemon killed between the two) is sent again on
 * a later pass: a duplicate is better than a loss, and at most one
 * batch can be sent twice. A batch stops early when the pass is told
 * to stop or when its claim is close to running out; the rows it did
 * not try are given back. Every decision is one log line with the case
 * id; the MTA's words are capped and made printable before they reach
 * the log or the store.
 */
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "outbox/compose.h"
#include "outbox/outbox.h"

/* Rows claimed in one transaction and sent over one session. */
#define OUTBOX_BATCH 16
/* A claim lasts the send timeout and this; a batch starts no send
 * later than this after its claim, so no send outlives it. */
#define CLAIM_MARGIN 60

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

/* What became of one send, to be recorded with the next claim; the
 * row itself stays in its batch until then. */
struct attempt {
	time_t next;		/* retry at; 0: give up */
	char *reason;		/* why it failed, or NULL: sent */
};

/* Record AT, the send of MAIL, in the open transaction. */
static int
attempt_mark(struct store *store, const struct outgoing *mail,
    const struct attempt *at, time_t now, GError **error)
{
	if (at->reason == NULL)
		return store_outbox_mark_sent(store, mail->id, now, error);
	return store_outbox_mark_retry(store, mail->id, at->next, at->reason,
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

/* Compose and send one row, into AT; nothing is stored yet. */
static void
attempt_send(struct send_session *session, const struct outgoing *mail,
    time_t now, struct attempt *at)
{
	GBytes *message = compose_message(mail, now);
	GError *send_error = NULL;

	if (send_session_message(session, mail->sender, mail->recipient,
	    message, &send_error) < 0) {
		at->reason = text_printable(send_error->message, 1000);
		/* Refused for good (5xx, unknown user): no retry. */
		at->next = g_error_matches(send_error, ESC_ERROR,
		    ESC_ERROR_REJECTED) ? 0 : outbox_retry_at(mail, now);
		g_error_free(send_error);
	}
	g_bytes_unref(message);
}

/* Log what became of MAIL (AT) once its record committed, or did not. */
static void
attempt_log(const struct outgoing *mail, const struct attempt *at,
    time_t now, const GError *store_error)
{
	char *case_id = text_printable(mail->case_id, 64);
	char *to = text_printable(mail->recipient, TEXT_LOG_CAP);

	if (store_error != NULL)
		log_err("case=%s outbox: %s id=%" G_GINT64_FORMAT " to=<%s> "
		    "but could not record it: %s", case_id,
		    at->reason == NULL ? "sent" : "failed", mail->id, to,
		    store_error->message);
	else if (at->reason == NULL)
		log_info("case=%s outbox: sent id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d", case_id, mail->id, to,
		    mail->attempts + 1);
	else if (at->next == 0)
		log_warn("case=%s outbox: failed id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d age=%llds limit=%ds: %s", case_id,
		    mail->id, to, mail->attempts + 1,
		    (long long)(now - mail->created), OUTBOX_MAX_AGE,
		    at->reason);
	else
		log_warn("case=%s outbox: deferred id=%" G_GINT64_FORMAT
		    " to=<%s> attempts=%d retry_in=%llds: %s", case_id,
		    mail->id, to, mail->attempts + 1,
		    (long long)(at->next - now), at->reason);
	g_free(case_id);
	g_free(to);
}

/* A batch: the rows claimed, and what became of those tried so far. */
struct batch {
	struct outgoing mail[OUTBOX_BATCH];
	struct attempt done[OUTBOX_BATCH];
	int claimed, tried;
	time_t until;		/* the claim's end */
	gint64 claimed_at;	/* monotonic */
};

static void
batch_clear(struct batch *batch)
{
	for (int i = 0; i < batch->claimed; i++) {
		outgoing_clear(&batch->mail[i]);
		g_free(batch->done[i].reason);
	}
	batch->claimed = batch->tried = 0;
}

/* Record the batch's sends and give back the rows it did not try. */
static int
batch_record(struct store *store, const struct batch *batch, time_t now,
    GError **error)
{
	for (int i = 0; i < batch->claimed; i++) {
		int rc = i < batch->tried ?
		    attempt_mark(store, &batch->mail[i], &batch->done[i], now,
		    error) :
		    store_outbox_release(store, batch->mail[i].id,
		    batch->until, now, error);

		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Claim up to OUTBOX_BATCH due rows into BATCH; how many, or -1. */
static int
batch_claim(struct store *store, struct batch *batch, time_t now,
    GError **error)
{
	while (batch->claimed < OUTBOX_BATCH) {
		struct outgoing *mail = &batch->mail[batch->claimed];
		int rc = store_outbox_next_due(store, now, mail, error);

		if (rc == 1)
			rc = store_outbox_claim(store, mail->id, now,
			    batch->until, error);
		if (rc != 1) {
			outgoing_clear(mail);
			return rc < 0 ? -1 : batch->claimed;
		}
		batch->claimed++;
	}
	return batch->claimed;
}

/*
 * In one transaction: record what became of the last batch and, unless
 * told to stop, claim the next, so that the daemon and "escalatorctl
 * outbox flush" never both send a row. A sender that dies holding a
 * claim leaves its rows due again when the claim runs out (the send
 * timeout and CLAIM_MARGIN). Returns the rows claimed, or -1.
 */
static int
outbox_take(struct store *store, const struct send_target *target,
    time_t now, gboolean more, struct batch *batch, GError **error)
{
	struct batch last = *batch;
	GError *store_error = NULL;
	int rc = 0;

	memset(batch, 0, sizeof(*batch));
	batch->until = now + send_target_timeout(target) + CLAIM_MARGIN;
	batch->claimed_at = g_get_monotonic_time();
	if (store_begin(store, &store_error) < 0)
		goto out;
	rc = batch_record(store, &last, now, &store_error);
	if (rc == 0 && more)
		rc = batch_claim(store, batch, now, &store_error);
	if (rc < 0)
		store_rollback(store);
	else if (store_commit(store, &store_error) < 0)
		rc = -1;
out:
	for (int i = 0; i < last.tried; i++)
		attempt_log(&last.mail[i], &last.done[i], now,
		    rc < 0 ? store_error : NULL);
	batch_clear(&last);
	if (store_error != NULL) {
		rc = -1;
		batch_clear(batch);
		g_propagate_error(error, store_error);
	}
	return rc;
}

/* Send the batch's rows in turn, until told to stop or the claim is
 * too near its end to start another send. */
static void
batch_send(struct batch *batch, struct send_session *session, time_t now,
    gboolean (*keep_going)(void))
{
	gint64 last_start = batch->claimed_at +
	    (gint64)CLAIM_MARGIN * G_USEC_PER_SEC;

	for (int i = 0; i < batch->claimed; i++) {
		if (i > 0 && ((keep_going != NULL && !keep_going()) ||
		    g_get_monotonic_time() > last_start))
			break;
		attempt_send(session, &batch->mail[i], now,
		    &batch->done[i]);
		batch->tried = i + 1;
	}
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

/* A row this pass tried already: the store did not move it. (Rows a
 * batch gave back untried are claimed again, rightly.) */
static gboolean
batch_stuck(const struct batch *batch, GHashTable *tried)
{
	for (int i = 0; i < batch->claimed; i++)
		if (g_hash_table_contains(tried, &batch->mail[i].id)) {
			outbox_log_stuck(&batch->mail[i]);
			return TRUE;
		}
	return FALSE;
}

static void
batch_remember_tried(const struct batch *batch, GHashTable *tried)
{
	for (int i = 0; i < batch->tried; i++)
		g_hash_table_add(tried, g_memdup2(&batch->mail[i].id,
		    sizeof(batch->mail[i].id)));
}

int
outbox_run(struct store *store, const struct send_target *target,
    time_t now, gboolean (*keep_going)(void), GError **error)
{
	GHashTable *tried = g_hash_table_new_full(g_int64_hash,
	    g_int64_equal, g_free, NULL);
	struct send_session *session = send_session_open(target);
	struct batch batch = { 0 };
	gint64 started = g_get_monotonic_time();
	int count = 0, rc;

	for (;;) {
		gboolean more = keep_going == NULL || keep_going();
		/* A long pass keeps its claims in step with the clock, so
		 * that they do not run out before they are made. */
		time_t at = now + (time_t)((g_get_monotonic_time() - started) /
		    G_USEC_PER_SEC);

		rc = outbox_take(store, target, at, more, &batch, error);
		if (rc <= 0)
			break;
		if (batch_stuck(&batch, tried)) {
			/* Its rows stay claimed; they are due again when
			 * the claim runs out. */
			batch_clear(&batch);
			rc = 0;
			break;
		}
		batch_send(&batch, session, at, keep_going);
		batch_remember_tried(&batch, tried);
		count += batch.tried;
	}

	send_session_close(&session);
	g_hash_table_destroy(tried);
	batch_clear(&batch);
	if (rc < 0) {
		g_prefix_error(error, "outbox: ");
		return -1;
	}
	return count;
}
