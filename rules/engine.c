/*
 * engine.c: turning a classified message into case changes.
 *
 * Order of decisions: a message with no watched recipient does nothing;
 * a message already seen (same Message-ID, or same digest when it has
 * none) does nothing; a delivery report of our own mail is recorded on
 * its case; a message that belongs to a case (by tag, or by answering a
 * message of the case) is recorded there; automatic mail that belongs
 * nowhere is only noted; anything else opens a case in the procedure of
 * the watched mailbox and is acknowledged, unless the sender is internal,
 * automatic, answering our own mail, or over the rate limit.
 *
 * All store calls of one message run inside one transaction.
 */
#include <string.h>

#include "common/log.h"
#include "common/text.h"
#include "rules/classify.h"
#include "rules/engine.h"
#include "rules/workflow.h"

struct run {
	const struct rules *rules;
	struct store *store;
	time_t now;
	const struct envelope *env;
	const struct message *msg;
	struct classification cls;
	struct outcome *out;
	const char *qid;
};

#define ACTOR_SELF "escalator"
/* Bytes of a message's own words kept in the audit log and relayed. */
#define TEXT_QUOTE_CAP 4000

/*
 * Whether the Message-ID was made by the MTA for this very delivery
 * (Postfix and Sendmail write "<TIME.QUEUEID@host>" into mail that has
 * none): then it differs at each redelivery and cannot dedupe.
 */
static gboolean
id_made_by_mta(const char *message_id, const char *queue_id)
{
	char *needle;
	gboolean made;

	if (queue_id == NULL || *queue_id == '\0')
		return FALSE;
	needle = g_strconcat(".", queue_id, "@", NULL);
	made = strstr(message_id, needle) != NULL;
	g_free(needle);
	return made;
}

/*
 * The key that recognises a redelivery: the Message-ID, else a digest
 * of sender, subject and text. A message with none of those (its header
 * block cut by the size limit, say) has no identity: it gets a key of
 * its own, so it is never taken for another such message.
 */
static char *
dedupe_key(const struct message *msg, const struct envelope *env)
{
	char *uuid, *digest, *key;

	if (msg->message_id != NULL && *msg->message_id != '\0' &&
	    !id_made_by_mta(msg->message_id, env->queue_id))
		return g_strdup(msg->message_id);
	if (msg->from != NULL || *msg->subject != '\0' || *msg->body != '\0') {
		digest = message_digest(msg);
		key = g_strconcat("digest:", digest, NULL);
		g_free(digest);
		return key;
	}
	uuid = g_uuid_string_random();
	key = g_strconcat("unidentified:", uuid, NULL);
	g_free(uuid);
	return key;
}

static const struct procedure *
watched_procedure(const struct rules *rules, const struct envelope *env)
{
	for (char **rcpt = env->recipients; rcpt && *rcpt; rcpt++) {
		const struct mailbox *mb = rules_mailbox(rules, *rcpt);
		if (mb != NULL && mb->procedure != NULL)
			return mb->procedure;
	}
	return NULL;
}

/*
 * Is the sender a party to case REC: its complainant, its owner, a
 * contact a command named, or staff? 1 yes, 0 no, -1 store error.
 */
static int
is_party(struct run *run, const struct case_record *rec, GError **error)
{
	const char *from = run->msg->from ? run->msg->from : run->env->sender;

	if (from == NULL)
		return 0;
	if ((rec->complainant && g_ascii_strcasecmp(from,
	    rec->complainant) == 0) || (rec->owner &&
	    g_ascii_strcasecmp(from, rec->owner) == 0) ||
	    rules_is_staff(run->rules, from))
		return 1;
	return store_case_contact_is(run->store, rec->id, from, error);
}

/*
 * The case the message belongs to: by its tag, if the sender is a party
 * to it (a stranger cannot join a case by copying its tag), else by
 * threading: answering a message of the case.
 */
static int
find_case(struct run *run, char **case_id_r, GError **error)
{
	const struct message *msg = run->msg;
	struct case_record rec = { 0 };
	int rc;

	if (run->cls.case_ref != NULL) {
		rc = store_case_get(run->store, run->cls.case_ref, &rec, error);
		if (rc == 1)
			rc = is_party(run, &rec, error) == 1 ? 1 :
			    run->cls.automatic != AUTO_NONE ? 1 : 2;
		if (rc == 1)
			*case_id_r = g_strdup(rec.id);
		case_record_clear(&rec);
		if (rc == 1 || rc < 0)
			return rc;
		log_info("%s: case=%s tag: %s", run->qid, run->cls.case_ref,
		    rc == 2 ? "the sender is no party to the case" :
		    "unknown case in subject");
	}
	if (msg->returned_id != NULL) {
		rc = store_case_by_message_id(run->store, msg->returned_id,
		    case_id_r, error);
		if (rc != 0)
			return rc;
	}
	if (msg->in_reply_to != NULL) {
		rc = store_case_by_message_id(run->store, msg->in_reply_to,
		    case_id_r, error);
		if (rc != 0)
			return rc;
	}
	for (char **ref = msg->references; *ref != NULL; ref++) {
		rc = store_case_by_message_id(run->store, *ref, case_id_r,
		    error);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static const char *
reply_address(const struct run *run)
{
	if (run->msg->reply_to != NULL)
		return run->msg->reply_to;
	if (run->msg->from != NULL)
		return run->msg->from;
	return run->env->sender;
}

/* Who acts: the From address, else the envelope sender. */
static const char *
sender_address(const struct run *run)
{
	if (run->msg->from != NULL && *run->msg->from != '\0')
		return run->msg->from;
	if (run->env->sender != NULL && *run->env->sender != '\0')
		return run->env->sender;
	return NULL;
}

static void
act_init(struct run *run, struct act *act, char *sender, char *text)
{
	memset(act, 0, sizeof *act);
	act->rules = run->rules;
	act->store = run->store;
	act->now = run->now;
	act->qid = run->qid;
	act->sender = sender;
	act->reply_address = reply_address(run);
	act->sender_name = run->msg->from_name;
	act->text = text;
	act->msg = run->msg;
	act->function = run->cls.function;
	act->auth_user = run->env->auth_user;
	act->recipients = run->env->recipients;
	if (run->cls.automatic == AUTO_NONE) {
		act->command = run->cls.command;
		act->command_text = run->cls.command_text;
		act->unknown_command = run->cls.unknown_command;
	}
	if (run->cls.automatic != AUTO_NONE)
		act->no_reply = run->cls.automatic_why;
}

static void
act_done(struct run *run, struct act *act)
{
	g_free(run->out->ack_to);
	g_free(run->out->ack_skipped);
	g_free(run->out->refused);
	run->out->ack_to = act->replied_to;
	run->out->ack_skipped = act->reply_skipped;
	run->out->refused = act->refused;
	run->out->mail_queued += act->queued;
	act->replied_to = act->reply_skipped = act->refused = NULL;
	act_clear(act);
}

static int
open_case(struct run *run, const struct procedure *proc, const char *linked,
    GError **error)
{
	char *sender = text_address_normalize(sender_address(run));
	char *text = text_own_words(run->msg->body, TEXT_QUOTE_CAP);
	struct act act;
	int rc;

	act_init(run, &act, sender, text);
	g_free(run->out->case_id);
	run->out->case_id = NULL;
	run->out->kind = OUTCOME_OPENED;
	rc = workflow_open(&act, proc, sender, run->cls.subject, linked,
	    run->cls.tickets, &run->out->case_id, error);
	act_done(run, &act);
	g_free(sender);
	g_free(text);
	return rc;
}

/*
 * A message on a case it belongs to: recorded with its command and
 * words; automatic mail (an out-of-office reply) is only recorded, for
 * it must not move a case nor be answered.
 */
static int
record_followup(struct run *run, const struct procedure *proc,
    const char *case_id, GError **error)
{
	char *sender = text_address_normalize(sender_address(run));
	char *text = text_own_words(run->msg->body, TEXT_QUOTE_CAP);
	gboolean automatic = run->cls.automatic != AUTO_NONE;
	char *subject = text_printable(run->msg->subject, 200);
	char *detail;
	gboolean follows = TRUE;
	struct act act;
	int rc;

	act_init(run, &act, sender, text);
	if (act.command != NULL)
		detail = g_strdup_printf("command=%s text=%s\n%s",
		    act.command, act.command_text ? act.command_text : "",
		    text);
	else
		detail = g_strdup_printf("subject=%s\n%s", subject, text);
	run->out->case_id = g_strdup(case_id);
	rc = store_event_add(run->store, case_id, run->now,
	    sender ? sender : ACTOR_SELF, automatic ? "automatic" :
	    act.command ? "command" : "message", detail, error);
	for (guint i = 0; rc == 0 && !automatic && i < run->cls.tickets->len;
	    i++)
		rc = store_case_add_ticket(run->store, case_id,
		    run->cls.tickets->pdata[i], error);
	if (rc == 0 && !automatic)
		rc = workflow_message(&act, case_id, &follows, error);
	act_done(run, &act);
	/* Too late to reopen: a new case follows the closed one, in the
	 * procedure of the closed one where the rules still have it. */
	if (rc == 0 && !follows) {
		struct case_record old = { 0 };
		const struct procedure *p = NULL;

		rc = store_case_get(run->store, case_id, &old, error);
		if (rc == 1)
			p = rules_procedure(run->rules, old.procedure);
		if (rc >= 0)
			rc = open_case(run, p ? p : proc, case_id, error);
		case_record_clear(&old);
	}
	g_free(detail);
	g_free(subject);
	g_free(sender);
	g_free(text);
	return rc;
}

static int
record_bounce(struct run *run, const char *case_id, GError **error)
{
	char *detail = g_strdup_printf("returned=%s",
	    run->msg->returned_id ? run->msg->returned_id : "unknown");
	int rc;

	run->out->case_id = g_strdup(case_id);
	rc = store_event_add(run->store, case_id, run->now, ACTOR_SELF,
	    "delivery-failed", detail, error);
	g_free(detail);
	return rc;
}

/* Decide and store; runs inside the transaction. */
static int
decide(struct run *run, const struct procedure *proc, GError **error)
{
	char *case_id = NULL;
	int rc = find_case(run, &case_id, error);

	if (rc < 0)
		return -1;
	if (rc == 1 && run->cls.automatic == AUTO_BOUNCE) {
		run->out->kind = OUTCOME_BOUNCE;
		rc = record_bounce(run, case_id, error);
	} else if (rc == 1) {
		run->out->kind = OUTCOME_FOLLOWUP;
		rc = record_followup(run, proc, case_id, error);
	} else if (run->cls.automatic != AUTO_NONE || run->cls.answers_us) {
		/* Automatic mail, or a reply to our own mail that we cannot
		 * place: never a new case, never an answer (no loops). */
		run->out->kind = OUTCOME_IGNORED;
		run->out->ack_skipped = g_strdup(run->cls.automatic_why ?
		    run->cls.automatic_why : "answers our own mail");
		rc = 0;
	} else {
		rc = open_case(run, proc, NULL, error);
	}
	g_free(case_id);
	return rc;
}

static void
log_outcome(const struct run *run)
{
	const struct outcome *out = run->out;
	char *from = text_printable(run->msg->from, 100);
	char *id = text_printable(run->msg->message_id, 100);
	char *joined = g_strjoinv(",", out->tickets);
	char *tickets = text_printable(joined, TEXT_LOG_CAP);

	g_free(joined);
	log_info("%s: case=%s %s: procedure=%s from=<%s> message-id=<%s> "
	    "tickets=%s command=%s ack=%s%s%s", run->qid,
	    out->case_id ? out->case_id : "none", outcome_name(out->kind),
	    out->procedure ? out->procedure : "none", from, id,
	    *tickets ? tickets : "none", out->command ? out->command : "none",
	    out->ack_to ? "queued" : "none", out->ack_skipped ? " reason=" :
	    "", out->ack_skipped ? out->ack_skipped : "");
	if (run->msg->limits != NULL)
		log_warn("%s: case=%s limit: %s", run->qid, out->case_id ?
		    out->case_id : "none", run->msg->limits);
	for (guint i = 0; i < run->cls.warnings->len; i++)
		log_warn("%s: case=%s limit: %s", run->qid, out->case_id ?
		    out->case_id : "none",
		    (const char *)run->cls.warnings->pdata[i]);
	g_free(from);
	g_free(id);
	g_free(tickets);
}

static void
fill_outcome(struct run *run, const struct procedure *proc)
{
	struct outcome *out = run->out;

	out->procedure = g_strdup(proc->name);
	g_ptr_array_add(run->cls.tickets, NULL);
	g_strfreev(out->tickets);
	out->tickets = g_strdupv((char **)run->cls.tickets->pdata);
	g_ptr_array_remove_index(run->cls.tickets,
	    run->cls.tickets->len - 1);
	if (run->cls.automatic == AUTO_NONE)
		out->command = g_strdup(run->cls.command);
}

int
engine_process(const struct rules *rules, struct store *store, time_t now,
    gboolean dry_run, const struct envelope *env, const struct message *msg,
    struct outcome *out, GError **error)
{
	struct run run = { rules, store, now, env, msg, { 0 }, out,
		env->queue_id ? env->queue_id : "NOQUEUE" };
	const struct procedure *proc = watched_procedure(rules, env);
	char *key, *seen_case = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	out->tickets = g_new0(char *, 1);
	if (proc == NULL) {
		out->kind = OUTCOME_NOT_WATCHED;
		return 0;
	}
	/* Pattern matching needs no store: not under its lock. */
	classify_message(rules, msg, env->sender, &run.cls);
	if (store_begin(store, error) < 0) {
		classification_clear(&run.cls);
		outcome_clear(out);
		return -1;
	}
	log_hold();

	key = dedupe_key(msg, env);
	rc = store_message_seen(store, key, &seen_case, error);
	if (rc == 1) {
		out->kind = OUTCOME_DUPLICATE;
		out->case_id = seen_case;
		store_rollback(store);
		log_release(TRUE);
		log_info("%s: case=%s duplicate: message-id=<%s> seen before",
		    run.qid, seen_case ? seen_case : "none", key);
		classification_clear(&run.cls);
		g_free(key);
		return 0;
	}

	fill_outcome(&run, proc);
	if (rc == 0)
		rc = decide(&run, proc, error);
	if (rc == 0)
		rc = store_message_record(store, key, out->case_id, now, error);
	if (rc == 0 && !dry_run)
		rc = store_commit(store, error);
	else
		store_rollback(store);

	log_release(rc == 0);
	if (rc == 0)
		log_outcome(&run);
	classification_clear(&run.cls);
	g_free(key);
	if (rc < 0)
		outcome_clear(out);
	return rc < 0 ? -1 : 0;
}

void
outcome_clear(struct outcome *out)
{
	g_free(out->case_id);
	g_free(out->procedure);
	g_strfreev(out->tickets);
	g_free(out->command);
	g_free(out->ack_to);
	g_free(out->ack_skipped);
	g_free(out->refused);
	memset(out, 0, sizeof *out);
}

const char *
outcome_name(enum outcome_kind kind)
{
	static const char *const names[] = { "not-watched", "duplicate",
		"opened", "follow-up", "bounce", "ignored" };

	return kind <= OUTCOME_IGNORED ? names[kind] : "?";
}

/* Fire one due timer in its own transaction: 1 fired, 0 none due. */
static int
fire_one(const struct rules *rules, struct store *store, time_t now,
    GError **error)
{
	struct timer_record t = { 0 };
	struct act act = { 0 };
	int rc;

	if (store_begin(store, error) < 0)
		return -1;
	log_hold();
	rc = store_timer_next_due(store, now, &t, error);
	if (rc == 1) {
		act.rules = rules;
		act.store = store;
		act.now = now;
		act.qid = "timer";
		rc = workflow_fire(&act, &t, error) < 0 ? -1 : 1;
		act_clear(&act);
	}
	if (rc == 1 && store_commit(store, error) < 0)
		rc = -1;
	else if (rc != 1)
		store_rollback(store);
	log_release(rc >= 0);
	timer_record_clear(&t);
	return rc;
}

int
engine_fire_due(const struct rules *rules, struct store *store, time_t now,
    int limit, GError **error)
{
	int fired = 0;
	int rc = 1;

	while (fired < limit && (rc = fire_one(rules, store, now, error)) == 1)
		fired++;
	return rc < 0 ? -1 : fired;
}
