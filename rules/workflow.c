/*
 * workflow.c: applying a procedure's transitions to a case.
 *
 * The steps of one transition, in order: the chain moves; the owner or
 * a contact is set; the state changes, which settles the case's timers
 * (entering a state whose clock is paused suspends them; entering a
 * state resumes a timer it suspended there, or arms a fresh deadline);
 * templates are queued to each recipient; a linked case is opened; the
 * case is saved. Nothing here knows a procedure: all of it is rules.
 */
#include <string.h>

#include "common/error.h"
#include "common/log.h"
#include "common/text.h"
#include "rules/auth.h"
#include "rules/workflow.h"

#define ACTOR_SELF "escalator"
#define MAX_REFERENCES 10

/* One case being moved: its record and procedure. */
struct move {
	struct act *act;
	const struct procedure *proc;
	struct case_record rec;
	/* Opened in this move and no timer armed since: there are none
	 * to settle, and the store need not be asked. */
	gboolean no_timers;
};

static gboolean
same_address(const char *a, const char *b)
{
	return a != NULL && b != NULL && g_ascii_strcasecmp(a, b) == 0;
}

/* The step of the chain the case is at, or NULL before the first. */
static const struct chain_step *
current_step(const struct move *mv)
{
	const struct chain *chain = mv->proc->chain;

	if (chain == NULL || mv->rec.chain_step <= 0)
		return NULL;
	if ((guint)mv->rec.chain_step > chain->steps->len)
		return &g_array_index(chain->steps, struct chain_step,
		    chain->steps->len - 1);
	return &g_array_index(chain->steps, struct chain_step,
	    mv->rec.chain_step - 1);
}

static const struct role *
function_role(const struct move *mv)
{
	const struct rules *r = mv->act->rules;

	for (guint i = 0; mv->rec.function && i < r->functions->len; i++) {
		const struct function *fn = r->functions->pdata[i];
		if (strcmp(fn->name, mv->rec.function) == 0)
			return fn->role;
	}
	return r->default_function ? r->default_function->role : NULL;
}

/* Who holds the case on its chain: addresses into OUT; the role. */
static const struct role *
assignee(const struct move *mv, GPtrArray *out)
{
	const struct chain_step *step = current_step(mv);
	const struct role *role;

	if (step == NULL)
		return NULL;
	role = step->role ? step->role : function_role(mv);
	if (role == NULL)
		return NULL;
	for (int i = 0; role->addresses[i] != NULL; i++)
		if (step->member < 0 || step->member == i)
			g_ptr_array_add(out, g_strdup(role->addresses[i]));
	/* A roster shortened by a reload: its last member stands in. */
	if (out->len == 0 && role->addresses[0] != NULL)
		g_ptr_array_add(out, g_strdup(role->addresses[
		    g_strv_length(role->addresses) - 1]));
	return role;
}

/* Does the sender count as WHO ("complainant", "staff", a role...)? */
static gboolean
sender_is(const struct move *mv, const char *who)
{
	const struct rules *r = mv->act->rules;
	const char *sender = mv->act->sender;
	const struct role *role;
	gboolean found = FALSE;

	if (strcmp(who, "anyone") == 0)
		return TRUE;
	if (sender == NULL)
		return FALSE;
	if (strcmp(who, "complainant") == 0)
		return same_address(sender, mv->rec.complainant);
	if (strcmp(who, "owner") == 0)
		return same_address(sender, mv->rec.owner);
	if (strcmp(who, "staff") == 0)
		return rules_is_staff(r, sender);
	if (strcmp(who, "assignee") == 0) {
		GPtrArray *list = g_ptr_array_new_with_free_func(g_free);

		assignee(mv, list);
		for (guint i = 0; i < list->len && !found; i++)
			found = same_address(list->pdata[i], sender);
		g_ptr_array_unref(list);
		return found;
	}
	role = rules_role(r, who);
	return role != NULL && address_in(role->addresses, sender);
}

/*
 * Does the message prove its sender, a member of some role, by a method
 * that role allows (rules/auth.h)?
 */
static gboolean
sender_proven(const struct move *mv)
{
	struct act *a = mv->act;
	const struct rules *r = a->rules;

	if (!a->proof_known) {
		a->dkim_pass = a->msg != NULL && auth_dkim_aligned(r, a->msg);
		a->hmac_case = auth_hmac_case(r, a->recipients);
		a->proof_known = TRUE;
	}
	for (guint i = 0; i < r->roles->len; i++) {
		const struct role *role = r->roles->pdata[i];

		if (!address_in(role->addresses, a->sender))
			continue;
		if ((role->auth & AUTH_SMTP) && a->auth_user != NULL &&
		    address_in(role->logins, a->auth_user))
			return TRUE;
		if ((role->auth & AUTH_DKIM) && a->dkim_pass)
			return TRUE;
		if ((role->auth & AUTH_HMAC) && a->hmac_case != NULL &&
		    g_ascii_strcasecmp(a->hmac_case, mv->rec.id) == 0)
			return TRUE;
	}
	return FALSE;
}

enum permission { MAY_NOT, MAY, UNPROVEN };

/* Staff must prove who they are; a complainant's word is enough. */
static enum permission
sender_may(const struct move *mv, const struct transition *t)
{
	gboolean unproven = FALSE;

	/* Timers act for the procedure itself. */
	if (t->by == NULL || mv->act->sender == NULL ||
	    t->on == TRIGGER_DEADLINE || t->on == TRIGGER_WARNING)
		return MAY;
	for (char **w = t->by; *w; w++) {
		if (!sender_is(mv, *w))
			continue;
		if (strcmp(*w, "complainant") == 0 ||
		    strcmp(*w, "anyone") == 0 || sender_proven(mv))
			return MAY;
		unproven = TRUE;
	}
	return unproven ? UNPROVEN : MAY_NOT;
}

static gboolean
count_ticket(const char *ticket, void *data)
{
	(void)ticket;
	(*(int *)data)++;
	return TRUE;
}

static int
condition_holds(struct move *mv, enum condition when, gboolean *holds_r,
    GError **error)
{
	const struct chain *chain = mv->proc->chain;
	int tickets = 0;

	switch (when) {
	case IF_ALWAYS:
		*holds_r = TRUE;
		return 0;
	case IF_TICKETS:
	case IF_NO_TICKETS:
		if (store_case_tickets_each(mv->act->store, mv->rec.id,
		    count_ticket, &tickets, error) < 0)
			return -1;
		*holds_r = (tickets > 0) == (when == IF_TICKETS);
		return 0;
	case IF_CHAIN_NEXT:
	case IF_CHAIN_END:
		*holds_r = (chain != NULL &&
		    (guint)mv->rec.chain_step < chain->steps->len) ==
		    (when == IF_CHAIN_NEXT);
		return 0;
	}
	*holds_r = FALSE;
	return 0;
}

/*
 * The transition to apply for trigger ON (and COMMAND), or NULL with
 * *WHY_R saying why a command cannot be taken (NULL if nothing fits a
 * message or timer, which is no fault).
 */
static int
choose(struct move *mv, enum trigger on, const char *command,
    const struct transition **t_r, const char **why_r, GError **error)
{
	const struct state *st = procedure_state(mv->proc, mv->rec.state);
	gboolean known = FALSE, in_state = FALSE, allowed = FALSE;
	gboolean unproven = FALSE;

	*t_r = NULL;
	*why_r = NULL;
	for (guint i = 0; i < mv->proc->transitions->len; i++) {
		const struct transition *t = mv->proc->transitions->pdata[i];
		gboolean holds;

		if (t->on != on || (command != NULL &&
		    g_ascii_strcasecmp(t->command, command) != 0))
			continue;
		known = TRUE;
		if (on != TRIGGER_OPENED && !transition_leaves(t, st))
			continue;
		in_state = TRUE;
		switch (sender_may(mv, t)) {
		case MAY_NOT:
			continue;
		case UNPROVEN:
			unproven = TRUE;
			continue;
		case MAY:
			break;
		}
		allowed = TRUE;
		if (condition_holds(mv, t->when, &holds, error) < 0)
			return -1;
		if (holds) {
			*t_r = t;
			return 0;
		}
	}
	if (command == NULL)
		return 0;
	*why_r = !known ? "no such command in this procedure" :
	    !in_state ? "not allowed in the case's present state" :
	    !allowed && unproven ? "the message does not prove its sender "
	    "(SMTP AUTH, DKIM or the case's reply address)" :
	    !allowed ? "your role may not give this command here" :
	    "not possible now (the escalation chain has no further step)";
	return 0;
}

/*
 * Timers.
 */

static time_t
add_duration(const struct calendar *cal, time_t from,
    const struct duration *d)
{
	if (d->days > 0)
		return calendar_add_working_days(cal, from, d->days);
	return calendar_add_working_seconds(cal, from, d->seconds);
}

/* A warning falls when the working time left equals its amount. */
static time_t
warning_time(const struct calendar *cal, time_t now, time_t deadline,
    const struct duration *w)
{
	gint64 total = calendar_working_seconds(cal, now, deadline);
	gint64 before = w->seconds;

	if (w->days > 0)
		before = (gint64)w->days * (cal->closes - cal->opens) * 60;
	if (before >= total)
		return 0;
	return calendar_add_working_seconds(cal, now, total - before);
}

static int
arm(struct move *mv, const struct state *st, GError **error)
{
	const struct calendar *cal = mv->proc->calendar;
	struct timer_record t = { 0 };
	time_t due = add_duration(cal, mv->act->now, &st->deadline);
	time_t warn = 0;

	if (st->warning.days || st->warning.seconds)
		warn = warning_time(cal, mv->act->now, due, &st->warning);
	t.case_id = mv->rec.id;
	t.state = st->name;
	t.armed = mv->act->now;
	t.status = TIMER_PENDING;
	t.kind = TIMER_DEADLINE;
	t.due = due;
	mv->no_timers = FALSE;
	if (store_timer_add(mv->act->store, &t, error) < 0)
		return -1;
	mv->rec.deadline = due;
	if (warn == 0)
		return 0;
	t.kind = TIMER_WARNING;
	t.due = warn;
	return store_timer_add(mv->act->store, &t, error);
}

struct settle {
	struct move *mv;
	const struct state *to;
	GPtrArray *timers;	/* struct timer_record *, copies */
};

static gboolean
collect_timer(const struct timer_record *t, void *data)
{
	struct timer_record *copy = g_new0(struct timer_record, 1);

	*copy = *t;
	copy->case_id = g_strdup(t->case_id);
	copy->state = g_strdup(t->state);
	g_ptr_array_add(data, copy);
	return TRUE;
}

static void
timer_free(gpointer data)
{
	timer_record_clear(data);
	g_free(data);
}

/* Settle one timer on entering state TO; TRUE if it was resumed. */
static int
settle_timer(struct move *mv, const struct state *to, struct timer_record *t,
    gboolean *resumed, GError **error)
{
	const struct calendar *cal = mv->proc->calendar;
	time_t now = mv->act->now;

	if (to->paused && t->status == TIMER_PENDING) {
		t->status = TIMER_SUSPENDED;
		t->remaining = calendar_working_seconds(cal, now, t->due);
		t->due = 0;
	} else if (to->paused) {
		return 0;
	} else if (t->status == TIMER_SUSPENDED &&
	    strcmp(t->state, to->name) == 0) {
		t->status = TIMER_PENDING;
		t->due = calendar_add_working_seconds(cal, now, t->remaining);
		if (t->kind == TIMER_DEADLINE) {
			mv->rec.deadline = t->due;
			*resumed = TRUE;
		}
	} else {
		t->status = TIMER_CANCELLED;
		t->ended = now;
	}
	return store_timer_update(mv->act->store, t, error);
}

static int
settle_timers(struct move *mv, const struct state *to, GError **error)
{
	GPtrArray *timers = g_ptr_array_new_with_free_func(timer_free);
	gboolean resumed = FALSE;
	int rc = 0;

	if (!mv->no_timers)
		rc = store_case_timers_each(mv->act->store, mv->rec.id,
		    collect_timer, timers, error);
	if (!to->paused)
		mv->rec.deadline = 0;
	for (guint i = 0; rc == 0 && i < timers->len; i++)
		rc = settle_timer(mv, to, timers->pdata[i], &resumed, error);
	if (rc == 0 && !to->paused && !resumed &&
	    (to->deadline.days || to->deadline.seconds))
		rc = arm(mv, to, error);
	g_ptr_array_unref(timers);
	return rc;
}

static int
enter_state(struct move *mv, const struct state *to, GError **error)
{
	time_t now = mv->act->now;

	if (settle_timers(mv, to, error) < 0)
		return -1;
	g_free(mv->rec.state);
	mv->rec.state = g_strdup(to->name);
	mv->rec.closed = to->final ? now : 0;
	if (to->responded && mv->rec.responded == 0)
		mv->rec.responded = now;
	return 0;
}

/*
 * Mail.
 */

static gboolean
add_ticket_text(const char *ticket, void *data)
{
	GString *s = data;

	g_string_append_printf(s, "%s%s", s->len ? ", " : "", ticket);
	return TRUE;
}

static GHashTable *
variables(struct move *mv, const char *previous, GError **error)
{
	GHashTable *v = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
	    g_free);
	const struct act *a = mv->act;
	GString *tickets = g_string_new(NULL);
	GPtrArray *holders = g_ptr_array_new_with_free_func(g_free);
	const struct calendar *cal = mv->proc->calendar;

	if (store_case_tickets_each(a->store, mv->rec.id, add_ticket_text,
	    tickets, error) < 0) {
		g_hash_table_unref(v);
		g_string_free(tickets, TRUE);
		g_ptr_array_unref(holders);
		return NULL;
	}
	assignee(mv, holders);
	g_ptr_array_add(holders, NULL);
	g_hash_table_insert(v, "case_id", g_strdup(mv->rec.id));
	g_hash_table_insert(v, "procedure", g_strdup(mv->proc->name));
	g_hash_table_insert(v, "state", g_strdup(mv->rec.state));
	g_hash_table_insert(v, "previous_state", g_strdup(previous));
	g_hash_table_insert(v, "tickets", g_string_free(tickets, FALSE));
	g_hash_table_insert(v, "subject", text_printable(mv->rec.subject,
	    120));
	g_hash_table_insert(v, "complainant", g_strdup(mv->rec.complainant));
	g_hash_table_insert(v, "owner", g_strdup(mv->rec.owner));
	g_hash_table_insert(v, "assignee", g_strjoinv(", ",
	    (char **)holders->pdata));
	g_hash_table_insert(v, "function", g_strdup(mv->rec.function));
	g_hash_table_insert(v, "linked_case", g_strdup(mv->rec.linked_case));
	g_hash_table_insert(v, "deadline", mv->rec.deadline && cal ?
	    calendar_format(cal, mv->rec.deadline) : g_strdup(""));
	g_hash_table_insert(v, "sender", g_strdup(a->sender));
	g_hash_table_insert(v, "name", g_strdup(a->sender_name));
	g_hash_table_insert(v, "command", g_strdup(a->command));
	g_hash_table_insert(v, "command_text", g_strdup(a->command_text));
	g_hash_table_insert(v, "text", g_strdup(a->text));
	g_hash_table_insert(v, "reason", g_strdup(a->refused));
	g_ptr_array_unref(holders);
	return v;
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

/*
 * Why no mail may go to the party RCPT (the sender or the complainant,
 * who are outside the operator), "" if it may, NULL on a store error:
 * no address, automatic mail, internal, over the rate limit per
 * recipient, or over the limit of one template per case.
 */
static const char *
party_refusal(struct move *mv, const char *rcpt, const char *kind,
    gboolean to_sender, GError **error)
{
	const struct act *a = mv->act;
	int sent = 0;

	if (rcpt == NULL || *rcpt == '\0' || strchr(rcpt, '@') == NULL)
		return "no reply address";
	if (to_sender && a->no_reply != NULL)
		return a->no_reply;
	if (is_internal(a->rules, rcpt) && !rules_is_staff(a->rules, rcpt))
		return "internal sender";
	if (store_outbox_count_to(a->store, rcpt,
	    a->now - a->rules->ack_window, &sent, error) < 0)
		return NULL;
	if (sent >= a->rules->ack_limit)
		return "rate limit";
	/* The same notice again and again on one case is a loop. */
	if (store_outbox_count_case(a->store, mv->rec.id, kind,
	    a->now - a->rules->case_window, &sent, error) < 0)
		return NULL;
	if (sent >= a->rules->case_limit)
		return "rate limit for the case";
	return "";
}

struct recipient {
	char *address;
	const struct role *role;	/* hold for its hours, or NULL */
	gboolean party;		/* the sender or complainant */
	gboolean to_sender;	/* answers the message acted on */
};

static void
recipient_free(gpointer data)
{
	struct recipient *r = data;

	g_free(r->address);
	g_free(r);
}

static void
add_recipient(GPtrArray *out, const char *address, const struct role *role,
    gboolean party, gboolean to_sender)
{
	struct recipient *r;

	if (address == NULL)
		return;
	for (guint i = 0; i < out->len; i++)
		if (same_address(((struct recipient *)out->pdata[i])->address,
		    address))
			return;
	r = g_new0(struct recipient, 1);
	r->address = g_strdup(address);
	r->role = role;
	r->party = party;
	r->to_sender = to_sender;
	g_ptr_array_add(out, r);
}

/* The addresses a send's "to" stands for on this case. */
static int
resolve(struct move *mv, const char *to, GPtrArray *out, GError **error)
{
	const struct role *role = rules_role(mv->act->rules, to);
	char *contact = NULL;
	int rc;

	if (role != NULL) {
		for (char **a = role->addresses; *a; a++)
			add_recipient(out, *a, role, FALSE, FALSE);
	} else if (strcmp(to, "sender") == 0) {
		add_recipient(out, mv->act->reply_address ?
		    mv->act->reply_address : mv->act->sender, NULL, TRUE,
		    TRUE);
	} else if (strcmp(to, "complainant") == 0) {
		add_recipient(out, mv->rec.complainant, NULL, TRUE,
		    same_address(mv->rec.complainant, mv->act->sender));
	} else if (strcmp(to, "owner") == 0) {
		add_recipient(out, mv->rec.owner, NULL, FALSE, FALSE);
	} else if (strcmp(to, "assignee") == 0) {
		GPtrArray *list = g_ptr_array_new_with_free_func(g_free);
		const struct role *holder = assignee(mv, list);

		for (guint i = 0; i < list->len; i++)
			add_recipient(out, list->pdata[i], holder, FALSE,
			    FALSE);
		g_ptr_array_unref(list);
	} else {
		rc = store_case_contact_get(mv->act->store, mv->rec.id, to,
		    &contact, error);
		if (rc < 0)
			return -1;
		add_recipient(out, contact, NULL, FALSE, FALSE);
		g_free(contact);
	}
	return 0;
}

static int
queue_one(struct move *mv, const struct send *s, const struct recipient *r,
    GHashTable *vars, GError **error)
{
	const struct act *a = mv->act;
	struct outgoing mail = { 0 };
	char *uuid = g_uuid_string_random();
	char *detail, *reply_to;
	int rc;

	template_render(s->template, vars, &mail.subject, &mail.body);
	mail.message_id = g_strdup_printf("%s.%s.%s@%s", s->template_name,
	    mv->rec.id, uuid, a->rules->domain);
	mail.case_id = mv->rec.id;
	mail.kind = s->template_name;
	mail.sender = a->rules->sender;
	mail.sender_name = a->rules->sender_name;
	mail.recipient = r->address;
	/* Staff answer through the case's own address, which proves them
	 * (rules/auth.h); the complainant through the plain mailbox. */
	reply_to = r->party || mv->proc->reply_to == NULL ?
	    g_strdup(mv->proc->reply_to) : auth_reply_address(a->rules,
	    mv->proc->reply_to, mv->rec.id);
	mail.reply_to = reply_to;
	if (r->to_sender && a->msg != NULL) {
		mail.in_reply_to = a->msg->message_id;
		mail.references = references_for(a->msg);
	}
	mail.auto_submitted = r->to_sender ? "auto-replied" :
	    "auto-generated";
	mail.created = a->now;
	/* Staff with working hours get it when they are at work. */
	mail.next_attempt = r->role && r->role->hours ?
	    calendar_next_working(r->role->hours, a->now) : a->now;

	rc = store_outbox_queue(a->store, &mail, error);
	detail = g_strdup_printf("%s to=%s%s", s->template_name, r->address,
	    mail.next_attempt > a->now ? " held for working hours" : "");
	if (rc == 0)
		rc = store_event_add(a->store, mv->rec.id, a->now, ACTOR_SELF,
		    "mail-queued", detail, error);
	if (rc == 0) {
		mv->act->queued++;
		log_info("%s: case=%s mail: %s", a->qid, mv->rec.id, detail);
	}
	g_free(detail);
	g_free(uuid);
	g_free(reply_to);
	g_free(mail.subject);
	g_free(mail.body);
	g_free(mail.message_id);
	g_free(mail.references);
	return rc;
}

static int
skip_one(struct move *mv, const struct send *s, const struct recipient *r,
    const char *why, GError **error)
{
	struct act *a = mv->act;
	char *detail = g_strdup_printf("%s to=%s reason=%s",
	    s->template_name, r->address, why);
	int rc;

	if (r->to_sender && a->reply_skipped == NULL)
		a->reply_skipped = g_strdup(why);
	rc = store_event_add(a->store, mv->rec.id, a->now, ACTOR_SELF,
	    "mail-skipped", detail, error);
	log_info("%s: case=%s mail: not sent: %s", a->qid, mv->rec.id,
	    detail);
	g_free(detail);
	return rc;
}

static int
send_all(struct move *mv, const struct transition *t, const char *previous,
    GError **error)
{
	GHashTable *vars = NULL;
	int rc = 0;

	for (guint i = 0; rc == 0 && i < t->sends->len; i++) {
		const struct send *s = t->sends->pdata[i];
		GPtrArray *rcpts = g_ptr_array_new_with_free_func(
		    recipient_free);

		rc = resolve(mv, s->to, rcpts, error);
		if (rc == 0 && vars == NULL &&
		    (vars = variables(mv, previous, error)) == NULL)
			rc = -1;
		for (guint j = 0; rc == 0 && j < rcpts->len; j++) {
			const struct recipient *r = rcpts->pdata[j];
			const char *why = r->party ? party_refusal(mv,
			    r->address, s->template_name, r->to_sender,
			    error) : "";

			if (why == NULL)
				rc = -1;
			else if (*why != '\0')
				rc = skip_one(mv, s, r, why, error);
			else
				rc = queue_one(mv, s, r, vars, error);
			if (rc == 0 && *why == '\0' && r->party &&
			    mv->rec.acknowledged == 0)
				mv->rec.acknowledged = mv->act->now;
			if (rc == 0 && *why == '\0' && r->to_sender &&
			    mv->act->replied_to == NULL)
				mv->act->replied_to = g_strdup(r->address);
		}
		if (rc == 0 && rcpts->len == 0)
			log_info("%s: case=%s mail: %s has no one as %s",
			    mv->act->qid, mv->rec.id, s->template_name,
			    s->to);
		g_ptr_array_unref(rcpts);
	}
	if (vars != NULL)
		g_hash_table_unref(vars);
	return rc;
}

/*
 * Transitions.
 */

static const char *
trigger_name(const struct transition *t)
{
	return t->on == TRIGGER_COMMAND ? t->command : trigger_word(t->on);
}

static int open_linked(struct move *mv, const char *procedure,
    GError **error);

/* Log where the chain now stands and who holds the case. */
static int
record_chain(struct move *mv, GError **error)
{
	GPtrArray *list = g_ptr_array_new_with_free_func(g_free);
	char *holders, *detail;
	int rc;

	assignee(mv, list);
	g_ptr_array_add(list, NULL);
	holders = g_strjoinv(",", (char **)list->pdata);
	detail = g_strdup_printf("step %d: %s", mv->rec.chain_step,
	    *holders ? holders : "none");
	g_free(holders);
	rc = store_event_add(mv->act->store, mv->rec.id, mv->act->now,
	    ACTOR_SELF, "chain", detail, error);
	log_info("%s: case=%s chain: %s", mv->act->qid, mv->rec.id, detail);
	g_free(detail);
	g_ptr_array_unref(list);
	return rc;
}

/* Keep the address the command's text names as contact NAME. */
static int
remember_contact(struct move *mv, const char *name, GError **error)
{
	char *address = text_first_address(mv->act->command_text);
	char *detail;
	int rc;

	if (address == NULL)
		return 0;
	rc = store_case_contact_set(mv->act->store, mv->rec.id, name, address,
	    error);
	detail = g_strdup_printf("%s=%s", name, address);
	if (rc == 0)
		rc = store_event_add(mv->act->store, mv->rec.id, mv->act->now,
		    mv->act->sender ? mv->act->sender : ACTOR_SELF, "contact",
		    detail, error);
	g_free(detail);
	g_free(address);
	return rc;
}

static int
apply(struct move *mv, const struct transition *t, GError **error)
{
	struct act *a = mv->act;
	const struct state *to = t->to ? procedure_state(mv->proc, t->to) :
	    NULL;
	char *previous = g_strdup(mv->rec.state);
	char *detail;
	int rc = 0;

	if (t->escalate == CHAIN_NEXT && mv->proc->chain != NULL &&
	    (guint)mv->rec.chain_step < mv->proc->chain->steps->len)
		mv->rec.chain_step++;
	else if (t->escalate == CHAIN_FIRST)
		mv->rec.chain_step = 1;
	if (t->take_ownership && a->sender != NULL) {
		g_free(mv->rec.owner);
		mv->rec.owner = g_strdup(a->sender);
	}
	if (to != NULL)
		rc = enter_state(mv, to, error);
	mv->rec.updated = a->now;

	detail = g_strdup_printf("%s -> %s on %s (rules line %d)", previous,
	    mv->rec.state, trigger_name(t), t->line);
	if (rc == 0)
		rc = store_event_add(a->store, mv->rec.id, a->now,
		    a->sender && t->on != TRIGGER_DEADLINE &&
		    t->on != TRIGGER_WARNING ? a->sender : ACTOR_SELF,
		    "transition", detail, error);
	if (rc == 0)
		log_info("%s: case=%s transition: %s", a->qid, mv->rec.id,
		    detail);
	if (rc == 0 && t->escalate != CHAIN_STAY)
		rc = record_chain(mv, error);
	if (rc == 0 && t->remember != NULL)
		rc = remember_contact(mv, t->remember, error);
	if (rc == 0)
		rc = send_all(mv, t, previous, error);
	if (rc == 0 && t->open != NULL)
		rc = open_linked(mv, t->open, error);
	if (rc == 0)
		rc = store_case_save(a->store, &mv->rec, error);
	g_free(detail);
	g_free(previous);
	return rc;
}

/*
 * A command no transition takes: logged on the case, and the sender
 * told why, if the rules have a refusal template and the sender is a
 * party whose address could not be forged into backscatter.
 */
static int
refuse(struct move *mv, const char *why, GError **error)
{
	struct act *a = mv->act;
	char *detail = g_strdup_printf("command=%s state=%s reason=%s",
	    a->command, mv->rec.state, why);
	struct transition notice = { 0 };
	struct send s = { (char *)"sender", a->rules->refusal,
		(char *)"command-refused" };
	gboolean party = sender_is(mv, "staff") ||
	    sender_is(mv, "complainant");
	int rc;

	a->refused = g_strdup(why);
	rc = store_event_add(a->store, mv->rec.id, a->now,
	    a->sender ? a->sender : ACTOR_SELF, "refused", detail, error);
	log_info("%s: case=%s refused: %s", a->qid, mv->rec.id, detail);
	g_free(detail);
	if (rc < 0 || a->rules->refusal == NULL || !party ||
	    a->no_reply != NULL)
		return rc;
	notice.sends = g_ptr_array_new();
	g_ptr_array_add(notice.sends, &s);
	rc = send_all(mv, &notice, mv->rec.state, error);
	g_ptr_array_unref(notice.sends);
	return rc;
}

static int
move_load(struct move *mv, struct act *act, const char *case_id,
    GError **error)
{
	int rc;

	mv->act = act;
	rc = store_case_get(act->store, case_id, &mv->rec, error);
	if (rc == 0)
		g_set_error(error, ESC_ERROR, ESC_ERROR_STORE,
		    "case %s: not in the store", case_id);
	if (rc <= 0)
		return -1;
	mv->proc = rules_procedure(act->rules, mv->rec.procedure);
	if (mv->proc == NULL) {
		/* A procedure taken out of the rules: the case stays as it
		 * is, and the admin learns of it here. */
		log_warn("%s: case=%s rules: procedure %s is gone",
		    act->qid, case_id, mv->rec.procedure);
		return 1;
	}
	return 0;
}

/* Try TRIGGER and apply what fits; refuse a command that nothing takes. */
static int
react(struct move *mv, enum trigger on, GError **error)
{
	const char *command = on == TRIGGER_COMMAND ? mv->act->command : NULL;
	const struct transition *t;
	const char *why;

	if (choose(mv, on, command, &t, &why, error) < 0)
		return -1;
	if (t != NULL)
		return apply(mv, t, error);
	if (why != NULL)
		return refuse(mv, why, error);
	return 0;
}

static gint64
next_number(struct act *act, const struct procedure *proc, int year,
    GError **error)
{
	gint64 seq = 0;

	/* Without {year} in the ids, one sequence runs on across years. */
	if (store_case_next_number(act->store, proc->name,
	    strstr(proc->case_id, "{year}") != NULL ? year : 0, &seq,
	    error) < 0)
		return -1;
	return seq;
}

int
workflow_open(struct act *act, const struct procedure *proc,
    const char *complainant, const char *subject, const char *linked,
    GPtrArray *tickets, char **case_id_r, GError **error)
{
	struct move mv = { act, proc, { 0 }, TRUE };
	GDateTime *now = g_date_time_new_from_unix_utc(act->now);
	int year = g_date_time_get_year(now);
	gint64 seq = next_number(act, proc, year, error);
	char *detail;
	int rc;

	g_date_time_unref(now);
	if (seq < 0)
		return -1;
	mv.rec.id = procedure_case_id(proc, year, seq);
	mv.rec.procedure = g_strdup(proc->name);
	mv.rec.state = g_strdup("new");
	mv.rec.complainant = g_strdup(complainant);
	mv.rec.subject = g_strdup(subject);
	mv.rec.opened = mv.rec.updated = act->now;
	mv.rec.linked_case = g_strdup(linked);
	mv.rec.function = act->function ? g_strdup(act->function->name) :
	    NULL;
	*case_id_r = g_strdup(mv.rec.id);

	rc = store_case_create(act->store, &mv.rec, error);
	for (guint i = 0; rc == 0 && tickets && i < tickets->len; i++)
		rc = store_case_add_ticket(act->store, mv.rec.id,
		    tickets->pdata[i], error);
	detail = g_strdup_printf("from=%s%s%s%s%s", complainant ?
	    complainant : "", linked ? " follows=" : "", linked ? linked : "",
	    mv.rec.function ? " function=" : "",
	    mv.rec.function ? mv.rec.function : "");
	if (rc == 0)
		rc = store_event_add(act->store, mv.rec.id, act->now,
		    complainant ? complainant : ACTOR_SELF, "opened", detail,
		    error);
	if (rc == 0)
		rc = react(&mv, TRIGGER_OPENED, error);
	g_free(detail);
	case_record_clear(&mv.rec);
	return rc;
}

/* Open a case of PROCEDURE that follows this one (a problem declared). */
static int
open_linked(struct move *mv, const char *procedure, GError **error)
{
	const struct procedure *proc = rules_procedure(mv->act->rules,
	    procedure);
	char *id = NULL;
	char *detail;
	int rc;

	if (proc == NULL)
		return 0;
	rc = workflow_open(mv->act, proc, mv->act->sender, mv->rec.subject,
	    mv->rec.id, NULL, &id, error);
	detail = g_strdup_printf("opened %s", id ? id : "?");
	if (rc == 0)
		rc = store_event_add(mv->act->store, mv->rec.id, mv->act->now,
		    ACTOR_SELF, "linked", detail, error);
	g_free(detail);
	g_free(id);
	return rc;
}

/* Reopen a closed case within its window: 1 done, 0 too late. */
static int
reopen(struct move *mv, GError **error)
{
	const struct procedure *proc = mv->proc;
	const struct state *to = proc->reopen_to ?
	    procedure_state(proc, proc->reopen_to) : NULL;
	char *detail;
	int rc;

	if (to == NULL || proc->reopen_days <= 0 ||
	    mv->act->now - mv->rec.closed > (time_t)proc->reopen_days * 86400)
		return 0;
	detail = g_strdup_printf("%s -> %s on reply within %d days",
	    mv->rec.state, to->name, proc->reopen_days);
	rc = enter_state(mv, to, error);
	mv->rec.updated = mv->act->now;
	if (rc == 0)
		rc = store_event_add(mv->act->store, mv->rec.id, mv->act->now,
		    mv->act->sender ? mv->act->sender : ACTOR_SELF,
		    "reopened", detail, error);
	if (rc == 0)
		rc = store_case_save(mv->act->store, &mv->rec, error);
	log_info("%s: case=%s reopened: %s", mv->act->qid, mv->rec.id,
	    detail);
	g_free(detail);
	return rc < 0 ? -1 : 1;
}

int
workflow_message(struct act *act, const char *case_id,
    gboolean *follows_r, GError **error)
{
	struct move mv = { 0 };
	const struct state *st;
	int rc = move_load(&mv, act, case_id, error);

	*follows_r = TRUE;
	if (rc != 0) {
		case_record_clear(&mv.rec);
		return rc < 0 ? -1 : 0;
	}
	st = procedure_state(mv.proc, mv.rec.state);
	if (st != NULL && st->final) {
		rc = act->command ? 0 : reopen(&mv, error);
		if (rc == 0 && act->command != NULL)
			rc = refuse(&mv, "the case is closed", error);
		else if (rc == 0)
			*follows_r = FALSE;
		case_record_clear(&mv.rec);
		return rc < 0 ? -1 : 0;
	}
	/* Staff who mistype a command are told; others wrote text. */
	if (act->command == NULL && act->unknown_command != NULL &&
	    sender_is(&mv, "staff")) {
		act->command = act->unknown_command;
		rc = refuse(&mv, "no such command", error);
		case_record_clear(&mv.rec);
		return rc;
	}
	rc = react(&mv, act->command ? TRIGGER_COMMAND : TRIGGER_MESSAGE,
	    error);
	case_record_clear(&mv.rec);
	return rc;
}

int
workflow_fire(struct act *act, const struct timer_record *t,
    GError **error)
{
	struct move mv = { 0 };
	struct timer_record fired = *t;
	int rc = move_load(&mv, act, t->case_id, error);

	if (rc < 0) {
		case_record_clear(&mv.rec);
		return -1;
	}
	/* Marked fired in the same transaction as its effects: once. */
	fired.status = TIMER_FIRED;
	fired.ended = act->now;
	if (store_timer_update(act->store, &fired, error) < 0) {
		case_record_clear(&mv.rec);
		return -1;
	}
	if (t->kind == TIMER_DEADLINE && mv.rec.deadline == t->due) {
		mv.rec.deadline = 0;
		rc = store_case_save(act->store, &mv.rec, error);
	}
	if (rc == 0 && mv.proc != NULL) {
		char *detail = g_strdup_printf("%s of state %s, due %ld",
		    t->kind == TIMER_DEADLINE ? "deadline" : "warning",
		    t->state, (long)t->due);

		rc = store_event_add(act->store, mv.rec.id, act->now,
		    ACTOR_SELF, t->kind == TIMER_DEADLINE ? "deadline-passed"
		    : "deadline-near", detail, error);
		log_info("%s: case=%s timer: %s", act->qid, mv.rec.id,
		    detail);
		g_free(detail);
	}
	if (rc == 0 && mv.proc != NULL)
		rc = react(&mv, t->kind == TIMER_DEADLINE ?
		    TRIGGER_DEADLINE : TRIGGER_WARNING, error);
	case_record_clear(&mv.rec);
	return rc;
}

void
act_clear(struct act *act)
{
	g_free(act->replied_to);
	g_free(act->reply_skipped);
	g_free(act->refused);
	g_free(act->hmac_case);
	act->replied_to = act->reply_skipped = act->refused = NULL;
	act->hmac_case = NULL;
}
