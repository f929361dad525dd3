/*
 * workflow.h: moving a case along its procedure, as the rules say.
 *
 * Something happens to a case (it is opened, a message or a command
 * arrives, a deadline or its warning passes); the first transition of
 * its procedure that leaves from the case's state on that trigger, whose
 * condition holds and whose "by" admits the sender, is applied: the
 * chain moves, the owner or a contact is set, the state changes (timers
 * armed, suspended, resumed or cancelled), templates are queued to their
 * recipients, and a linked case may be opened. A command that no
 * transition takes is refused, logged on the case, and the sender told
 * why where that cannot become backscatter.
 *
 * Every call runs inside the caller's store transaction and logs one
 * line per decision with the queue id (or "timer") and the case id.
 */
#ifndef ESC_WORKFLOW_H
#define ESC_WORKFLOW_H

#include <time.h>
#include <glib.h>

#include "parser/message.h"
#include "rules/rules.h"
#include "store/store.h"

/* What happened, and to whom it is answered. */
struct act {
	const struct rules *rules;
	struct store *store;
	time_t now;
	const char *qid;	/* queue id, or "timer" */
	const char *sender;	/* who acts (From address), or NULL */
	const char *reply_address;	/* where answers to the sender go */
	const char *sender_name;	/* display name, or NULL */
	const char *command;	/* canonical command word, or NULL */
	const char *command_text;	/* text after it, or NULL */
	const char *unknown_command;	/* a word that looks like one */
	const char *text;	/* the message's own words, or NULL */
	const struct message *msg;	/* the message, or NULL */
	const struct function *function;	/* a new case concerns */
	const char *auth_user;	/* SMTP AUTH login, or NULL */
	char **recipients;	/* envelope recipients, or NULL */
	/* No mail to the sender: automatic mail, or a sender that could
	 * be forged (backscatter). The reason, or NULL. */
	const char *no_reply;
	/* Filled in: the first mail to the sender and why none went. */
	char *replied_to;
	char *reply_skipped;
	char *refused;		/* why a command was refused, or NULL */
	int queued;		/* mails queued in the outbox */
	/* What proves the sender (rules/auth.h), worked out once. */
	gboolean proof_known, dkim_pass;
	char *hmac_case;
};

/*
 * Open a case of PROC for the act's message: number it, store it with
 * COMPLAINANT and SUBJECT (and LINKED, the case it follows, or NULL),
 * add TICKETS, and apply the procedure's first "on: opened" transition.
 * CASE_ID_R gets the new id.
 */
int workflow_open(struct act *act, const struct procedure *proc,
    const char *complainant, const char *subject, const char *linked,
    GPtrArray *tickets, char **case_id_r, GError **error);

/*
 * A message (with or without a command) on case CASE_ID, already
 * recorded there. A message to a closed case reopens it within the
 * procedure's reopen window; otherwise *REOPEN_R is set FALSE and the
 * caller opens a new case linked to it.
 */
int workflow_message(struct act *act, const char *case_id,
    gboolean *follows_r, GError **error);

/* Fire timer T (due at or before the act's time). */
int workflow_fire(struct act *act, const struct timer_record *t,
    GError **error);

void act_clear(struct act *act);

#endif
