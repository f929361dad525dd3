/*
 * callbacks.c: the milter side of escalatord.
 *
 * Per message: note the envelope; at DATA, accept at once unless a
 * recipient is watched (so the MTA sends nothing more); rebuild the
 * message from its headers and body up to max_message_size; at end of
 * message parse it and run the engine, then add X-Escalator-Case and
 * accept. Stages that never reject are negotiated "no reply" when the
 * MTA offers it, and the MTA is asked not to send what is never used.
 * Any failure becomes TEMPFAIL (or ACCEPT, per on_error) with one log
 * line naming the queue id.
 */
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/text.h"
#include "milter/callbacks.h"
#include "milter/request.h"
#include "parser/message.h"
#include "rules/engine.h"

#define CASE_HEADER "X-Escalator-Case"

struct connection {
	unsigned long noreply;	/* SMFIP_NR_* flags agreed with the MTA */
	gboolean can_skip;	/* SMFIP_SKIP agreed */
	gboolean leading_space;	/* SMFIP_HDR_LEADSPC agreed */
	struct message_context *msg;
};

struct message_context {
	char *queue_id;
	char *sender;
	char *auth_user;
	GPtrArray *recipients;	/* char *, lowercased */
	gboolean watched;
	GString *data;		/* the message as rebuilt from the milter */
	gboolean body_started;
	gboolean truncated;
	int forged_headers;	/* X-Escalator-Case from outside */
};

static struct milter_shared *shared;
static struct rules *current_rules;
static GMutex rules_lock;
static gint ends_running;	/* end-of-message callbacks running */
static gint past_data;		/* watched messages past DATA */
static gint draining;		/* a graceful stop is under way */

void
callbacks_init(struct milter_shared *s)
{
	shared = s;
}

struct rules *
callbacks_rules_get(void)
{
	struct rules *rules;

	g_mutex_lock(&rules_lock);
	rules = current_rules ? rules_ref(current_rules) : NULL;
	g_mutex_unlock(&rules_lock);
	return rules;
}

void
callbacks_rules_swap(struct rules *new_rules)
{
	struct rules *old;

	g_mutex_lock(&rules_lock);
	old = current_rules;
	current_rules = new_rules;
	g_mutex_unlock(&rules_lock);
	rules_unref(&old);
}

void
callbacks_drain(void)
{
	g_atomic_int_set(&draining, 1);
}

int
callbacks_messages_open(void)
{
	return g_atomic_int_get(&past_data);
}

int
callbacks_ends_running(void)
{
	return g_atomic_int_get(&ends_running);
}

/* The connection's state; made here if the MTA did not negotiate. */
static struct connection *
connection_of(SMFICTX *ctx)
{
	struct connection *conn = smfi_getpriv(ctx);

	if (conn == NULL) {
		conn = g_new0(struct connection, 1);
		smfi_setpriv(ctx, conn);
	}
	return conn;
}

static void
message_context_free(struct connection *conn)
{
	struct message_context *m = conn->msg;

	if (m == NULL)
		return;
	if (m->data != NULL)
		g_atomic_int_dec_and_test(&past_data);
	g_free(m->queue_id);
	g_free(m->sender);
	g_free(m->auth_user);
	g_ptr_array_unref(m->recipients);
	if (m->data != NULL)
		g_string_free(m->data, TRUE);
	g_free(m);
	conn->msg = NULL;
}

/* The queue id is known from RCPT or DATA on, depending on the MTA. */
static const char *
queue_id(SMFICTX *ctx, struct message_context *m)
{
	const char *id;

	if (m->queue_id == NULL && (id = smfi_getsymval(ctx, "i")) != NULL)
		m->queue_id = g_strdup(id);
	return m->queue_id ? m->queue_id : "NOQUEUE";
}

static sfsistat
stage_reply(struct connection *conn, unsigned long nr_flag)
{
	return (conn->noreply & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
on_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
    unsigned long unused2, unsigned long unused3, unsigned long *actions_r,
    unsigned long *steps_r, unsigned long *unused2_r,
    unsigned long *unused3_r)
{
	struct connection *conn = g_new0(struct connection, 1);

	(void)unused2;
	(void)unused3;
	*actions_r = actions & REQUEST_ACTIONS;
	*steps_r = steps & REQUEST_STEPS;
	*unused2_r = 0;
	*unused3_r = 0;
	conn->noreply = *steps_r & REQUEST_NOREPLY;
	conn->can_skip = (*steps_r & SMFIP_SKIP) != 0;
	conn->leading_space = (*steps_r & SMFIP_HDR_LEADSPC) != 0;
	g_free(smfi_getpriv(ctx));
	smfi_setpriv(ctx, conn);
	return SMFIS_CONTINUE;
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
	struct connection *conn = connection_of(ctx);
	struct message_context *m;
	const char *auth = smfi_getsymval(ctx, "{auth_authen}");

	message_context_free(conn);
	m = g_new0(struct message_context, 1);
	m->sender = text_address_normalize(argv[0] ? argv[0] : "");
	m->auth_user = auth ? g_strdup(auth) : NULL;
	m->recipients = g_ptr_array_new_with_free_func(g_free);
	conn->msg = m;
	return stage_reply(conn, SMFIP_NR_MAIL);
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
	struct connection *conn = connection_of(ctx);
	struct rules *rules;
	char *rcpt;

	if (conn->msg == NULL || argv[0] == NULL)
		return stage_reply(conn, SMFIP_NR_RCPT);

	/* Never accept here: a later recipient may be watched. */
	rcpt = text_address_normalize(argv[0]);
	rules = callbacks_rules_get();
	if (rules != NULL && rules_mailbox(rules, rcpt) != NULL)
		conn->msg->watched = TRUE;
	rules_unref(&rules);
	g_ptr_array_add(conn->msg->recipients, rcpt);
	return stage_reply(conn, SMFIP_NR_RCPT);
}

static sfsistat
on_data(SMFICTX *ctx)
{
	struct connection *conn = connection_of(ctx);

	if (conn->msg == NULL)
		return SMFIS_ACCEPT;
	if (!conn->msg->watched) {
		log_debug("%s: case=none not-watched: accepted at DATA",
		    queue_id(ctx, conn->msg));
		message_context_free(conn);
		return SMFIS_ACCEPT;
	}
	/* While draining for a stop, take no new watched message. */
	if (g_atomic_int_get(&draining)) {
		log_info("%s: case=none stop: message requeued (tempfail), "
		    "shutting down", queue_id(ctx, conn->msg));
		smfi_setreply(ctx, "421", "4.3.2", "escalator: shutting down, "
		    "try again later");
		message_context_free(conn);
		return SMFIS_TEMPFAIL;
	}
	conn->msg->data = g_string_sized_new(16 * 1024);
	g_atomic_int_inc(&past_data);
	return SMFIS_CONTINUE;
}

/* Append LEN bytes unless the size limit is reached. */
static void
collect(struct message_context *m, const char *bytes, size_t len)
{
	size_t limit = shared->config->max_message_size;

	if (m->data->len + len > limit) {
		len = limit > m->data->len ? limit - m->data->len : 0;
		m->truncated = TRUE;
	}
	g_string_append_len(m->data, bytes, (gssize)len);
}

static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
	struct connection *conn = connection_of(ctx);
	struct message_context *m = conn->msg;

	if (m == NULL || m->data == NULL)
		return stage_reply(conn, SMFIP_NR_HDR);
	if (g_ascii_strcasecmp(name, CASE_HEADER) == 0)
		m->forged_headers++;
	collect(m, name, strlen(name));
	/* With HDR_LEADSPC the value keeps its own leading space. */
	collect(m, ":", 1);
	if (!conn->leading_space && *value != ' ' &&
	    *value != '\t')
		collect(m, " ", 1);
	collect(m, value, strlen(value));
	collect(m, "\r\n", 2);
	return stage_reply(conn, SMFIP_NR_HDR);
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct connection *conn = connection_of(ctx);
	struct message_context *m = conn->msg;

	if (m == NULL || m->data == NULL)
		return SMFIS_CONTINUE;
	if (!m->body_started) {
		collect(m, "\r\n", 2);
		m->body_started = TRUE;
	}
	collect(m, (const char *)chunk, len);
	if (m->truncated && conn->can_skip)
		return SMFIS_SKIP;
	return SMFIS_CONTINUE;
}

static sfsistat
on_failure(SMFICTX *ctx, struct message_context *m, const char *why)
{
	gboolean accept = shared->config->on_error == ON_ERROR_ACCEPT;

	log_err("%s: case=none error: %s: message %s", queue_id(ctx, m), why,
	    accept ? "accepted without a case" : "requeued (tempfail)");
	if (accept)
		return SMFIS_ACCEPT;
	smfi_setreply(ctx, "451", "4.3.0", "escalator: temporary failure, "
	    "try again later");
	return SMFIS_TEMPFAIL;
}

/* With HDR_LEADSPC agreed, the MTA adds no space after the colon. */
static void
add_case_header(SMFICTX *ctx, const char *case_id)
{
	struct connection *conn = connection_of(ctx);
	char *value = g_strconcat(conn->leading_space ? " " : "", case_id,
	    NULL);

	smfi_addheader(ctx, CASE_HEADER, value);
	g_free(value);
}

static sfsistat
run_engine(SMFICTX *ctx, struct message_context *m, struct rules *rules)
{
	struct message *msg;
	struct outcome out;
	struct envelope env = { 0 };
	GError *error = NULL;
	sfsistat status = SMFIS_ACCEPT;

	if (!m->body_started)
		collect(m, "\r\n", 2);
	g_ptr_array_add(m->recipients, NULL);
	env.queue_id = queue_id(ctx, m);
	env.sender = m->sender;
	env.recipients = (char **)m->recipients->pdata;
	env.auth_user = m->auth_user;

	msg = message_parse(m->data->str, m->data->len);
	if (m->truncated)
		log_warn("%s: case=none limit: message cut at %zu bytes",
		    env.queue_id, shared->config->max_message_size);
	if (engine_process(rules, shared->store, clock_now(), FALSE, &env, msg,
	    &out, &error) < 0) {
		status = on_failure(ctx, m, error->message);
		g_error_free(error);
	} else {
		/* Only our own case header may reach the mailbox. */
		for (int i = m->forged_headers; i > 0; i--)
			smfi_chgheader(ctx, CASE_HEADER, i, NULL);
		if (out.case_id != NULL)
			add_case_header(ctx, out.case_id);
		if (out.mail_queued > 0 && shared->outbox_wake != NULL)
			shared->outbox_wake();
		outcome_clear(&out);
	}
	g_ptr_array_remove_index(m->recipients, m->recipients->len - 1);
	message_free(&msg);
	return status;
}

static sfsistat
on_eom(SMFICTX *ctx)
{
	struct connection *conn = connection_of(ctx);
	struct message_context *m = conn->msg;
	struct rules *rules;
	sfsistat status;

	if (m == NULL || m->data == NULL)
		return SMFIS_ACCEPT;
	g_atomic_int_inc(&ends_running);
	rules = callbacks_rules_get();
	status = rules ? run_engine(ctx, m, rules) :
	    on_failure(ctx, m, "no rules loaded");
	rules_unref(&rules);
	message_context_free(conn);
	g_atomic_int_dec_and_test(&ends_running);
	return status;
}

static sfsistat
on_abort(SMFICTX *ctx)
{
	message_context_free(connection_of(ctx));
	return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
	struct connection *conn = smfi_getpriv(ctx);

	if (conn != NULL) {
		message_context_free(conn);
		g_free(conn);
		smfi_setpriv(ctx, NULL);
	}
	return SMFIS_CONTINUE;
}

static struct smfiDesc filter = {
	.xxfi_name = "escalatord",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = REQUEST_ACTIONS,
	.xxfi_envfrom = on_envfrom,
	.xxfi_envrcpt = on_envrcpt,
	.xxfi_header = on_header,
	.xxfi_body = on_body,
	.xxfi_eom = on_eom,
	.xxfi_abort = on_abort,
	.xxfi_close = on_close,
	.xxfi_data = on_data,
	.xxfi_negotiate = on_negotiate,
};

struct smfiDesc *
callbacks_filter(void)
{
	return &filter;
}
