/*
 * workers.h: escalatord's own threads beside libmilter's: the outbox
 * sender, and the signal thread that reloads rules on SIGUSR1.
 *
 * libmilter takes SIGHUP, SIGTERM and SIGINT for itself (each stops the
 * milter at once, dropping the sessions that wait for the MTA), so a
 * reload is asked for with SIGUSR1, as other libmilter daemons do, and a
 * graceful stop, which lets messages in flight finish, with SIGQUIT.
 */
#ifndef ESC_WORKERS_H
#define ESC_WORKERS_H

#include <glib.h>

#include "common/config.h"
#include "outbox/send.h"
#include "store/store.h"

int workers_start(const struct config *config, struct store *store,
    struct send_target *target, GError **error);
/* Wake the outbox thread: new mail was queued. */
void workers_outbox_wake(void);
void workers_timer_wake(void);
/* Poll COUNT every 0.1 s until it is 0 or SECONDS pass; its last value. */
int workers_wait_for_none(int (*count)(void), int seconds);
/* Stop and join the threads; the last outbox pass is not interrupted. */
void workers_stop(void);

#endif
