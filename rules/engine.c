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
#define MAX_REFERENCES 10

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
	char *uuid, *key;

	if (msg->message_id != NULL && *msg->message_id != '\0' &&
	    !id_made_by_mta(msg->message_id, env->queue_id))
		return g_strdup(msg->message_id);
	if (msg->from != NULL || *msg->subject != '\0' || *msg->body != '\0')
		return g_strconcat("digest:", msg->digest, NULL);
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

/* The case the message belongs to: by its tag, else by threading. */
static int
find_case(struct run *run, char **case_id_r, GError **error)
{
	const struct message *msg = run->msg;
	struct case_record rec = { 0 };
	int rc;

	if (run->cls.case_ref != NULL) {
		rc = store_case_get(run->store, run->cls.case_ref, &rec, error);
		if (rc != 0) {
			*case_id_r = rc == 1 ? g_strdup(rec.id) : NULL;
			case_record_clear(&rec);
			return rc;
		}
		log_info("%s: case=%s tag: unknown case in subject", run->qid,
		    run->cls.case_ref);
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

static int
add_tickets(struct run *run, const char *case_id, GError **error)
{
	for (guint i = 0; i < run->cls.tickets->len; i++)
		if (store_case_add_ticket(run->store, case_id,
		    run->cls.tickets->pdata[i], error) < 0)
			return -1;
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

static gboolean
is_internal(const struct rules *rules, const char *address)
{
	const char *at = strrchr(address, '@');

	if (rules_mailbox(rules, address) != NULL ||
	    g_ascii_strcasecmp(address, rules->sender) == 0)
		return TRUE;
	for (char **d = rules->internal_domains; at && *d; d++)
		if (g_ascii_strcasecmp(at + 1, *d) == 0)
			return TRUE;
	return FALSE;
}

/* Why no acknowledgement may go to RCPT, or NULL if one may. */
static const char *
ack_refusal(struct run *run, const char *rcpt, GError **error)
{
	int sent = 0;

	if (rcpt == NULL || *rcpt == '\0' || strchr(rcpt, '@') == NULL)
		return "no reply address";
	if (run->cls.automatic != AUTO_NONE)
		return run->cls.automatic_why;
	if (run->cls.answers_us)
		return "answers our own mail";
	if (is_internal(run->rules, rcpt))
		return "internal sender";
	if (store_outbox_count_to(run->store, rcpt,
	    run->now - run->rules->ack_window, &sent, error) < 0)
		return NULL;
	if (sent >= run->rules->ack_limit)
		return "rate limit";
	return "";
}

static char *
references_for(const struct message *msg)
{
	GString *refs = g_string_new(NULL);
	guint n = g_strv_length(msg->references);

	/* Keep the first and the last few, as RFC 5322 suggests. */
	for (guint i = 0; i < n; i++) {
		if (n > MAX_REFERENCES && i > 0 && i < n - MAX_REFERENCES + 1)
			continue;
		g_string_append_printf(refs, "%s<%s>", refs->len ? " " : "",
		    msg->references[i]);
	}
	if (msg->message_id != NULL)
		g_string_append_printf(refs, "%s<%s>", refs->len ? " " : "",
		    msg->message_id);
	return g_string_free(refs, refs->len == 0);
}

static GHashTable *
ack_variables(struct run *run, const struct procedure *proc,
    const char *case_id, time_t deadline)
{
	GHashTable *vars = g_hash_table_new_full(g_str_hash, g_str_equal,
	    NULL, g_free);
	const char *name = run->msg->from_name;

	g_hash_table_insert(vars, "case_id", g_strdup(case_id));
	g_hash_table_insert(vars, "procedure", g_strdup(proc->name));
	/* fill_outcome() has copied the tickets before any decision. */
	g_hash_table_insert(vars, "tickets", g_strjoinv(", ",
	    run->out->tickets));
	g_hash_table_insert(vars, "name", g_strdup(name ? name : ""));
	g_hash_table_insert(vars, "subject", text_printable(run->cls.subject,
	    120));
	g_hash_table_insert(vars, "deadline", deadline && proc->calendar ?
	    calendar_format(proc->calendar, deadline) : g_strdup(""));
	return vars;
}

static int
queue_ack(struct run *run, const struct procedure *proc,
    const char *case_id, time_t deadline, GError **error)
{
	const char *rcpt = reply_address(run);
	const char *refusal = ack_refusal(run, rcpt, error);
	const struct template *tpl = proc->ack;
	struct outgoing mail = { 0 };
	GHashTable *vars;
	char *uuid;
	int rc;

	if (refusal == NULL)
		return -1;
	if (*refusal != '\0') {
		run->out->ack_skipped = g_strdup(refusal);
		return store_event_add(run->store, case_id, run->now,
		    ACTOR_SELF, "ack-skipped", refusal, error);
	}
	if (run->cls.tickets->len == 0 && proc->ack_without_tickets != NULL)
		tpl = proc->ack_without_tickets;

	vars = ack_variables(run, proc, case_id, deadline);
	template_render(tpl, vars, &mail.subject, &mail.body);
	g_hash_table_unref(vars);

	uuid = g_uuid_string_random();
	mail.message_id = g_strdup_printf("ack.%s.%s@%s", case_id, uuid,
	    run->rules->domain);
	g_free(uuid);
	mail.case_id = (char *)case_id;
	mail.kind = "ack";
	mail.sender = run->rules->sender;
	mail.sender_name = run->rules->sender_name;
	mail.recipient = (char *)rcpt;
	mail.in_reply_to = run->msg->message_id;
	mail.references = references_for(run->msg);
	mail.auto_submitted = "auto-replied";
	mail.created = run->now;
	mail.next_attempt = run->now;

	rc = store_outbox_queue(run->store, &mail, error);
	if (rc == 0)
		rc = store_event_add(run->store, case_id, run->now,
		    ACTOR_SELF, "ack-queued", rcpt, error);
	if (rc == 0)
		run->out->ack_to = g_strdup(rcpt);
	g_free(mail.subject);
	g_free(mail.body);
	g_free(mail.message_id);
	g_free(mail.references);
	return rc;
}

static int
open_case(struct run *run, const struct procedure *proc, GError **error)
{
	struct case_record rec = { 0 };
	GDateTime *now = g_date_time_new_from_unix_utc(run->now);
	int year = g_date_time_get_year(now);
	gboolean waiting = run->cls.tickets->len == 0 &&
	    proc->ack_without_tickets != NULL;
	gint64 seq;
	char *detail;
	int rc;

	g_date_time_unref(now);
	/* Without {year} in the ids, one sequence runs on across years. */
	if (store_case_next_number(run->store, proc->name,
	    strstr(proc->case_id, "{year}") != NULL ? year : 0, &seq,
	    error) < 0)
		return -1;
	rec.id = procedure_case_id(proc, year, seq);
	rec.procedure = proc->name;
	/* Without tickets the case waits for them and its clock does not
	 * run yet: the deadline is set when they arrive. */
	rec.state = waiting ? "waiting-tickets" : "open";
	rec.complainant = (char *)reply_address(run);
	rec.subject = run->cls.subject;
	rec.opened = rec.updated = run->now;
	if (!waiting && proc->response_days > 0)
		rec.deadline = calendar_add_working_days(proc->calendar,
		    run->now, proc->response_days);

	run->out->case_id = g_strdup(rec.id);
	detail = g_strdup_printf("from=%s", rec.complainant ?
	    rec.complainant : "");
	rc = store_case_create(run->store, &rec, error);
	if (rc == 0)
		rc = add_tickets(run, rec.id, error);
	if (rc == 0)
		rc = store_event_add(run->store, rec.id, run->now,
		    rec.complainant ? rec.complainant : ACTOR_SELF, "opened",
		    detail, error);
	if (rc == 0)
		rc = queue_ack(run, proc, rec.id, rec.deadline, error);
	g_free(detail);
	g_free(rec.id);
	return rc;
}

/* A case waiting for ticket numbers starts its clock when they come. */
static int
start_clock_if_waiting(struct run *run, const char *case_id,
    GError **error)
{
	struct case_record rec = { 0 };
	const struct procedure *proc;
	time_t deadline = 0;
	int rc;

	if (run->cls.tickets->len == 0)
		return 0;
	rc = store_case_get(run->store, case_id, &rec, error);
	if (rc <= 0 || strcmp(rec.state, "waiting-tickets") != 0) {
		case_record_clear(&rec);
		return rc < 0 ? -1 : 0;
	}
	proc = rules_procedure(run->rules, rec.procedure);
	if (proc != NULL && proc->response_days > 0)
		deadline = calendar_add_working_days(proc->calendar,
		    run->now, proc->response_days);
	rc = store_case_set_state(run->store, case_id, "open", deadline,
	    run->now, error);
	if (rc == 0)
		rc = store_event_add(run->store, case_id, run->now,
		    ACTOR_SELF, "state", "waiting-tickets -> open", error);
	case_record_clear(&rec);
	return rc;
}

static int
record_followup(struct run *run, const char *case_id, GError **error)
{
	const char *from = reply_address(run);
	const char *kind = run->cls.automatic != AUTO_NONE ? "automatic" :
	    "message";
	char *subject = text_printable(run->msg->subject, 200);
	char *detail;
	int rc;

	/* XXX: commands are recorded but not yet acted on; the workflow
	 * of states and transitions comes with the procedure rules. */
	if (run->cls.command != NULL && run->cls.automatic == AUTO_NONE)
		detail = g_strdup_printf("command=%s subject=%s",
		    run->cls.command, subject);
	else
		detail = g_strdup_printf("subject=%s", subject);
	run->out->case_id = g_strdup(case_id);
	rc = store_event_add(run->store, case_id, run->now,
	    from ? from : ACTOR_SELF, kind, detail, error);
	if (rc == 0 && run->cls.automatic == AUTO_NONE)
		rc = add_tickets(run, case_id, error);
	if (rc == 0 && run->cls.automatic == AUTO_NONE)
		rc = start_clock_if_waiting(run, case_id, error);
	g_free(detail);
	g_free(subject);
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
		rc = record_followup(run, case_id, error);
	} else if (run->cls.automatic != AUTO_NONE || run->cls.answers_us) {
		/* Automatic mail, or a reply to our own mail that we cannot
		 * place: never a new case, never an answer (no loops). */
		run->out->kind = OUTCOME_IGNORED;
		run->out->ack_skipped = g_strdup(run->cls.automatic_why ?
		    run->cls.automatic_why : "answers our own mail");
		rc = 0;
	} else {
		run->out->kind = OUTCOME_OPENED;
		rc = open_case(run, proc, error);
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
	if (store_begin(store, error) < 0) {
		outcome_clear(out);
		return -1;
	}

	key = dedupe_key(msg, env);
	rc = store_message_seen(store, key, &seen_case, error);
	if (rc == 1) {
		out->kind = OUTCOME_DUPLICATE;
		out->case_id = seen_case;
		store_rollback(store);
		log_info("%s: case=%s duplicate: message-id=<%s> seen before",
		    run.qid, seen_case ? seen_case : "none", key);
		g_free(key);
		return 0;
	}

	classify_message(rules, msg, env->sender, &run.cls);
	fill_outcome(&run, proc);
	if (rc == 0)
		rc = decide(&run, proc, error);
	if (rc == 0)
		rc = store_message_record(store, key, out->case_id, now, error);
	if (rc == 0 && !dry_run)
		rc = store_commit(store, error);
	else
		store_rollback(store);

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
	memset(out, 0, sizeof *out);
}

const char *
outcome_name(enum outcome_kind kind)
{
	static const char *const names[] = { "not-watched", "duplicate",
		"opened", "follow-up", "bounce", "ignored" };

	return kind <= OUTCOME_IGNORED ? names[kind] : "?";
}
