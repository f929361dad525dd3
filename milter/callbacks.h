/*
 * callbacks.h: escalatord's libmilter callbacks. They gather the
 * envelope and the message and hand them to the engine at end of
 * message; they decide nothing about cases themselves.
 */
#ifndef ESC_CALLBACKS_H
#define ESC_CALLBACKS_H

#include <libmilter/mfapi.h>

#include "common/config.h"
#include "rules/rules.h"
#include "store/store.h"

/* What the callbacks share with the rest of the daemon. */
struct milter_shared {
	const struct config *config;
	struct store *store;
	void (*outbox_wake)(void);	/* mail was queued */
};

void callbacks_init(struct milter_shared *shared);
struct smfiDesc *callbacks_filter(void);

/* The rules in force; callers keep a reference while they use them. */
struct rules *callbacks_rules_get(void);
/* Put NEW in force; messages in flight keep the rules they started with. */
void callbacks_rules_swap(struct rules *new_rules);

/*
 * Graceful stop: from now on watched mail is tempfailed at DATA, and
 * callbacks_messages_open() counts down the watched messages past DATA,
 * which are let finish.
 */
void callbacks_drain(void);
int callbacks_messages_open(void);

/*
 * End-of-message callbacks running now. At a stop libmilter drops the
 * sessions that wait for the MTA, but one inside a callback runs on:
 * the store must stay open until it is done.
 */
int callbacks_ends_running(void);

#endif
