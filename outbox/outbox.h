/*
 * outbox.h: one pass over the outbox: every row due now is composed,
 * handed to the MTA, and marked sent, or kept for a retry with back-off
 * (1, 5, 15, 30 minutes, then hourly) until OUTBOX_MAX_AGE, after which
 * the row is marked failed and stays visible. A mail the MTA refuses for
 * good (a 5xx reply, a sendmail exit such as EX_NOUSER, an address we
 * will not hand over) is marked failed at once. Each decision is logged
 * with the case id. Nothing is dropped silently.
 *
 * outbox_run() is called by the daemon's outbox thread and by
 * "escalatorctl outbox flush". It claims due rows 16 at a time and
 * sends them over one session; it returns the number of rows it tried,
 * or -1 if the store could not be read.
 */
#ifndef ESC_OUTBOX_H
#define ESC_OUTBOX_H

#include <time.h>
#include <glib.h>

#include "store/store.h"
#include "outbox/send.h"

#define OUTBOX_MAX_AGE (5 * 24 * 3600)

/* KEEP_GOING, if not NULL, is asked between mails: FALSE ends the pass
 * after the mail being sent (the daemon is stopping). */
int outbox_run(struct store *store, const struct send_target *target,
    time_t now, gboolean (*keep_going)(void), GError **error);
/* Seconds to wait before attempt number ATTEMPTS + 1. */
int outbox_backoff(int attempts);

#endif
