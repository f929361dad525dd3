/*
 * engine.h: what a message does to the cases, in one transaction.
 *
 * engine_process() is the whole pipeline after parsing, shared by the
 * milter, "escalatorctl process" and the tests: dedupe, classify, find
 * or open the case, record tickets and an audit event, queue the
 * acknowledgement in the outbox, and commit. Either all of it is stored
 * or none of it (a dry run always rolls back). It logs one line per
 * decision, prefixed with the queue id and the case id.
 */
#ifndef ESC_ENGINE_H
#define ESC_ENGINE_H

#include <time.h>
#include <glib.h>

#include "parser/message.h"
#include "rules/rules.h"
#include "store/store.h"

struct envelope {
	const char *queue_id;	/* MTA queue id, for logs; NULL: NOQUEUE */
	const char *sender;	/* MAIL FROM without <>; "": null sender */
	char **recipients;	/* RCPT TO addresses, NULL-terminated */
	const char *auth_user;	/* SMTP AUTH name, or NULL */
};

enum outcome_kind {
	OUTCOME_NOT_WATCHED,	/* no watched recipient: nothing done */
	OUTCOME_DUPLICATE,	/* seen before: nothing done */
	OUTCOME_OPENED,		/* a new case */
	OUTCOME_FOLLOWUP,	/* recorded on an existing case */
	OUTCOME_BOUNCE,		/* delivery failure of our own mail */
	OUTCOME_IGNORED,	/* automatic mail with no case */
};

struct outcome {
	enum outcome_kind kind;
	char *case_id;		/* the case concerned, or NULL */
	char *procedure;	/* its procedure, or NULL */
	char **tickets;		/* tickets found, NULL-terminated */
	char *command;		/* command word seen, or NULL */
	char *ack_to;		/* acknowledgement queued to, or NULL */
	char *ack_skipped;	/* why no acknowledgement, or NULL */
	char *refused;		/* why a command was refused, or NULL */
	int mail_queued;	/* mails queued in the outbox */
};

/*
 * Process MSG under RULES at time NOW. 0 on success with OUT filled
 * (free it with outcome_clear); -1 if the store failed (ESC_ERROR_BUSY
 * when locked): nothing was stored, OUT holds nothing, and the caller
 * decides between tempfail and accept.
 */
int engine_process(const struct rules *rules, struct store *store,
    time_t now, gboolean dry_run, const struct envelope *env,
    const struct message *msg, struct outcome *out, GError **error);
/*
 * Fire the timers due at NOW, up to LIMIT, each in a transaction of its
 * own together with what it does (so each fires exactly once, also
 * after a restart that missed it). The number fired, or -1: a timer
 * that failed stays due and is tried again.
 */
int engine_fire_due(const struct rules *rules, struct store *store,
    time_t now, int limit, GError **error);
void outcome_clear(struct outcome *out);
const char *outcome_name(enum outcome_kind kind);

#endif
