/*
 * check_procedures.c: the shipped rules (etc/rules.yaml and templates/)
 * walked through the engine as the milter and the timer thread drive
 * it, with the clock moved by hand: a complaint whose response deadline
 * is missed climbs the whole chain with the CSC told at each step; a
 * complainant goes to the ombudsman; a phase 2 case becomes a problem
 * case that runs to its end; an emergency whose first roster member
 * never answers is taken by the next; an emergency found not to be one;
 * commands from the wrong people or in the wrong state are refused; a
 * paused clock does not count.
 */
#include <string.h>

#include "common/error.h"
#include "rules/auth.h"
#include "rules/engine.h"
#include "t/testutil.h"

static struct rules *rules;
static struct store *store;
static char *dir;
static char *db_path;

/* Monday 2026-12-07 10:00 in Zurich (09:00 UTC). */
#define MONDAY ((time_t)1796634000)
#define HOUR 3600
#define DAY 86400

static char *escalation[] = { "escalation@example.org", NULL };
static char *root_mgmt[] = { "root-mgmt@example.org", NULL };

static void
setup(void)
{
	char *path = test_path("etc/rules.yaml");
	char *templates = test_path("templates");
	GError *error = NULL;

	rules = rules_load(path, templates, &error);
	ck_assert_msg(rules != NULL, "rules: %s", error ? error->message : "");
	ck_assert_msg(rules->warnings->len == 0, "shipped rules warn: %s",
	    (char *)rules->warnings->pdata[0]);
	dir = test_tmpdir();
	db_path = g_build_filename(dir, "test.db", NULL);
	store = store_open(db_path, STORE_READWRITE, &error);
	ck_assert_msg(store != NULL, "store: %s", error ? error->message : "");
	g_free(path);
	g_free(templates);
}

static void
teardown(void)
{
	store_close(&store);
	rules_unref(&rules);
	g_free(db_path);
	test_tmpdir_remove(dir);
}

static int serial;

/*
 * Mail FROM to RCPTS with SUBJECT and BODY at time AT, with the headers
 * EXTRA (or, for staff at example.org, the DKIM pass our MX adds) and
 * SMTP AUTH login AUTH_USER.
 */
static struct outcome
mail_as(const char *from, char **rcpts, const char *subject,
    const char *body, time_t at, const char *extra, const char *auth_user)
{
	gboolean staff = g_str_has_suffix(from, "@example.org");
	char *text = g_strdup_printf("%sFrom: <%s>\r\nTo: %s\r\n"
	    "Subject: %s\r\nMessage-ID: <walk%d@example.net>\r\n\r\n%s\r\n",
	    extra ? extra : staff ? "Authentication-Results: mx.example.org;"
	    " dkim=pass header.d=example.org\r\n" : "", from, rcpts[0],
	    subject, ++serial, body);
	struct envelope env = { "WALKQ", from, rcpts, auth_user };
	struct message *msg = message_parse(text, strlen(text));
	struct outcome out;
	GError *error = NULL;

	ck_assert_msg(engine_process(rules, store, at, FALSE, &env, msg,
	    &out, &error) == 0, "engine: %s", error ? error->message : "");
	message_free(&msg);
	g_free(text);
	return out;
}

static struct outcome
mail(const char *from, char **rcpts, const char *subject, const char *body,
    time_t at)
{
	return mail_as(from, rcpts, subject, body, at, NULL, NULL);
}

/* A command on CASE: "[CASE] WORD: text". */
static void
command(const char *from, const char *case_id, const char *words,
    time_t at)
{
	char *subject = g_strdup_printf("Re: [%s] %s", case_id, words);
	struct outcome out = mail(from, escalation, subject, "Done.", at);

	ck_assert_int_eq(out.kind, OUTCOME_FOLLOWUP);
	outcome_clear(&out);
	g_free(subject);
}

static int
fire(time_t at)
{
	GError *error = NULL;
	int n = engine_fire_due(rules, store, at, 1000, &error);

	ck_assert_msg(n >= 0, "timers: %s", error ? error->message : "");
	return n;
}

static char *
state_of(const char *case_id)
{
	static char state[64];
	struct case_record rec = { 0 };

	ck_assert_int_eq(store_case_get(store, case_id, &rec, NULL), 1);
	g_strlcpy(state, rec.state, sizeof state);
	case_record_clear(&rec);
	return state;
}

struct count { const char *kind, *to; int n; };

static gboolean
count_mail(const struct outgoing *m, void *data)
{
	struct count *c = data;

	if (strcmp(m->kind, c->kind) == 0 &&
	    (c->to == NULL || strcmp(m->recipient, c->to) == 0))
		c->n++;
	return TRUE;
}

/* Mail of template KIND queued on CASE (to TO, or anyone). */
static int
sent(const char *case_id, const char *kind, const char *to)
{
	struct count c = { kind, to, 0 };

	ck_assert_int_eq(store_case_outbox_each(store, case_id, count_mail,
	    &c, NULL), 0);
	return c.n;
}

struct event_count { const char *kind, *needle; int n; };

static gboolean
count_event(const struct event_record *ev, void *data)
{
	struct event_count *c = data;

	if (strcmp(ev->kind, c->kind) == 0 && (c->needle == NULL ||
	    (ev->detail && strstr(ev->detail, c->needle))))
		c->n++;
	return TRUE;
}

static int
events(const char *case_id, const char *kind, const char *needle)
{
	struct event_count c = { kind, needle, 0 };

	ck_assert_int_eq(store_case_events_each(store, case_id, count_event,
	    &c, NULL), 0);
	return c.n;
}

static char *
open_complaint(const char *subject, time_t at)
{
	struct outcome out = mail("alice@customer.example", escalation,
	    subject, "Please look into it.", at);
	char *id;

	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	id = g_strdup(out.case_id);
	outcome_clear(&out);
	return id;
}

START_TEST(missed_deadlines_climb_the_whole_chain_with_csc_notices)
{
	char *id = open_complaint("Stuck [IANA #1234567] port numbers",
	    MONDAY);

	ck_assert_str_eq(state_of(id), "open");
	ck_assert_int_eq(sent(id, "complaint-ack", "alice@customer.example"),
	    1);
	ck_assert_int_eq(sent(id, "complaint-new", "desk@example.org"), 1);

	/* Four working hours before the deadline (Tuesday 14:00), not
	 * earlier, the desk is warned. */
	ck_assert_int_eq(fire(MONDAY + DAY + 3 * HOUR), 0);
	ck_assert_int_eq(fire(MONDAY + DAY + 4 * HOUR), 1);
	ck_assert_int_eq(sent(id, "deadline-warning", "desk@example.org"), 1);

	/* Wednesday 10:00: missed; to the liaison of the function the
	 * text names (port numbers: protocol parameters). */
	ck_assert_int_eq(fire(MONDAY + 2 * DAY), 1);
	ck_assert_str_eq(state_of(id), "escalated");
	ck_assert_int_eq(sent(id, "complaint-escalated",
	    "pp-liaison@example.org"), 1);
	ck_assert_int_eq(sent(id, "complaint-escalation-notice",
	    "alice@customer.example"), 1);
	ck_assert_int_eq(sent(id, "csc-notice", "csc-chair@example.org"), 1);

	/* Two more missed deadlines: programme manager, then ombudsman. */
	fire(MONDAY + 4 * DAY);
	ck_assert_int_eq(sent(id, "complaint-escalated",
	    "programme-manager@example.org"), 1);
	fire(MONDAY + 8 * DAY);
	ck_assert_int_eq(sent(id, "complaint-escalated",
	    "ombudsman@example.org"), 1);
	ck_assert_int_eq(sent(id, "csc-notice", "csc-chair@example.org"), 3);

	/* The end of the chain: overdue, reported, no further step. */
	fire(MONDAY + 11 * DAY);
	ck_assert_str_eq(state_of(id), "escalated");
	ck_assert_int_eq(sent(id, "complaint-overdue",
	    "programme-manager@example.org"), 1);
	ck_assert_int_eq(events(id, "deadline-passed", NULL), 4);

	/* Each timer fires once: firing again later does nothing new. */
	ck_assert_int_eq(fire(MONDAY + 30 * DAY), 0);
	ck_assert_int_eq(sent(id, "complaint-escalated", NULL), 3);

	/* A response closes the matter for the complainant. */
	command("ombudsman@example.org", id, "RESPOND: we fixed it",
	    MONDAY + 12 * DAY);
	ck_assert_str_eq(state_of(id), "responded");
	ck_assert_int_eq(sent(id, "complaint-response",
	    "alice@customer.example"), 1);
	g_free(id);
}
END_TEST

START_TEST(complainant_goes_to_the_ombudsman)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	struct outcome out;
	char *subject = g_strdup_printf("Re: [%s] OMBUDSMAN please", id);

	out = mail("alice@customer.example", escalation, subject, "Enough.",
	    MONDAY + HOUR);
	ck_assert_int_eq(out.kind, OUTCOME_FOLLOWUP);
	ck_assert_ptr_null(out.refused);
	ck_assert_str_eq(state_of(id), "with-ombudsman");
	ck_assert_int_eq(sent(id, "complaint-to-ombudsman",
	    "ombudsman@example.org"), 1);
	ck_assert_int_eq(sent(id, "csc-notice", "csc-secretary@example.org"),
	    1);
	/* The response deadline is no longer running. */
	ck_assert_int_eq(fire(MONDAY + 5 * DAY), 0);
	outcome_clear(&out);
	g_free(subject);
	g_free(id);
}
END_TEST

START_TEST(phase_two_declares_a_problem_that_runs_to_its_end)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	struct outcome out;
	char *subject = g_strdup_printf("Re: [%s] CSC", id);
	char *problem;
	struct case_record rec = { 0 };

	out = mail("alice@customer.example", escalation, subject, "Please.",
	    MONDAY + HOUR);
	outcome_clear(&out);
	ck_assert_str_eq(state_of(id), "phase2-csc");
	ck_assert_int_eq(sent(id, "phase2-csc", "csc-chair@example.org"), 1);
	command("csc-chair@example.org", id, "MEDIATE", MONDAY + DAY);
	command("csc-chair@example.org", id,
	    "MEDIATOR: mediator@neutral.example", MONDAY + 2 * DAY);
	ck_assert_int_eq(sent(id, "mediator-assigned",
	    "mediator@neutral.example"), 1);
	command("csc-chair@example.org", id, "PROBLEM: a pattern of delays",
	    MONDAY + 3 * DAY);
	ck_assert_str_eq(state_of(id), "problem-declared");
	ck_assert_int_eq(events(id, "linked", "opened PRB-2026-000001"), 1);

	problem = "PRB-2026-000001";
	ck_assert_int_eq(store_case_get(store, problem, &rec, NULL), 1);
	ck_assert_str_eq(rec.linked_case, id);
	ck_assert_str_eq(rec.state, "reported");
	ck_assert_int_eq(sent(problem, "problem-opened",
	    "senior-management@example.org"), 1);
	case_record_clear(&rec);

	command("programme-manager@example.org", problem, "RESPOND: plan",
	    MONDAY + 4 * DAY);
	command("csc-chair@example.org", problem, "INADEQUATE",
	    MONDAY + 5 * DAY);
	ck_assert_str_eq(state_of(problem), "remedial-action");
	command("programme-manager@example.org", problem, "COMPLETED",
	    MONDAY + 10 * DAY);
	command("csc-secretary@example.org", problem, "UNSATISFACTORY",
	    MONDAY + 11 * DAY);
	command("csc-chair@example.org", problem, "MEDIATION-FAILED",
	    MONDAY + 15 * DAY);
	ck_assert_str_eq(state_of(problem), "appeals-panel");
	ck_assert_int_eq(sent(problem, "case-notice",
	    "appeals-panel@example.org"), 1);
	command("csc-chair@example.org", problem, "CLOSE", MONDAY + 30 * DAY);
	ck_assert_str_eq(state_of(problem), "closed");
	g_free(subject);
	g_free(id);
}
END_TEST

static char *
open_emergency(time_t at)
{
	struct outcome out = mail("agent@callcentre.example", root_mgmt,
	    "Urgent: NS change for .example", "The manager called.", at);
	char *id;

	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_str_eq(out.procedure, "emergency");
	id = g_strdup(out.case_id);
	outcome_clear(&out);
	return id;
}

START_TEST(unanswered_pages_move_down_the_roster)
{
	/* Saturday 03:00 UTC: emergencies run around the clock. */
	time_t t0 = MONDAY - 2 * DAY - 6 * HOUR;
	char *id = open_emergency(t0);

	ck_assert_str_eq(state_of(id), "paging");
	ck_assert_int_eq(sent(id, "emergency-page", "oncall-1@example.org"),
	    1);
	/* Fifteen minutes without an answer: the next on the roster. */
	ck_assert_int_eq(fire(t0 + 15 * 60), 1);
	ck_assert_int_eq(sent(id, "emergency-page", "oncall-2@example.org"),
	    1);
	/* The first member answers too late: not theirs any more? They
	 * are on the roster, so they may still take it. */
	command("oncall-2@example.org", id, "ACCEPT", t0 + 20 * 60);
	ck_assert_str_eq(state_of(id), "accepted");
	ck_assert_int_eq(sent(id, "emergency-accepted",
	    "agent@callcentre.example"), 1);
	/* No more pages once taken. */
	fire(t0 + 40 * 60);
	ck_assert_int_eq(sent(id, "emergency-page", "oncall-3@example.org"),
	    0);
	g_free(id);
}
END_TEST

START_TEST(a_roster_that_never_answers_reaches_senior_management)
{
	time_t t0 = MONDAY;
	char *id = open_emergency(t0);

	for (int i = 1; i <= 4; i++)
		ck_assert_int_eq(fire(t0 + i * 15 * 60), 1);
	ck_assert_int_eq(sent(id, "emergency-page", "oncall-3@example.org"),
	    1);
	ck_assert_int_eq(sent(id, "emergency-page",
	    "senior-management@example.org"), 2);
	g_free(id);
}
END_TEST

START_TEST(emergency_walked_to_its_close)
{
	char *id = open_emergency(MONDAY);
	const char *owner = "oncall-1@example.org";

	command(owner, id, "ACCEPT", MONDAY + 60);
	command(owner, id, "ZONE-TEAM-INFORMED", MONDAY + 120);
	ck_assert_int_eq(sent(id, "emergency-zone-team",
	    "root-zone-team@example.org"), 1);
	command(owner, id, "MANAGER-CONTACTED: manager@nic.example",
	    MONDAY + 180);
	command(owner, id, "CONFIRMED", MONDAY + 240);
	command(owner, id, "VALIDATED", MONDAY + 300);
	command(owner, id, "HEADS-UP", MONDAY + 360);
	ck_assert_int_eq(sent(id, "maintainer-heads-up",
	    "rzm-heads-up@example.net"), 1);
	command(owner, id, "IMPLEMENTED", MONDAY + 420);
	command(owner, id, "CLOSE", MONDAY + 480);
	ck_assert_str_eq(state_of(id), "closed");
	ck_assert_int_eq(sent(id, "emergency-closed",
	    "senior-management@example.org"), 1);
	g_free(id);
}
END_TEST

START_TEST(an_emergency_found_not_to_be_one)
{
	char *id = open_emergency(MONDAY);
	const char *owner = "oncall-1@example.org";

	command(owner, id, "ACCEPT", MONDAY + 60);
	command(owner, id, "ZONE-TEAM-INFORMED", MONDAY + 120);
	command(owner, id, "MANAGER-CONTACTED: Manager@NIC.example",
	    MONDAY + 180);
	command(owner, id, "NOT-CONFIRMED: a routine change", MONDAY + 240);
	ck_assert_str_eq(state_of(id), "not-an-emergency");
	ck_assert_int_eq(sent(id, "emergency-other-options",
	    "manager@nic.example"), 1);
	/* No stalled-step warnings after the end. */
	ck_assert_int_eq(fire(MONDAY + DAY), 0);
	g_free(id);
}
END_TEST

START_TEST(wrong_sender_or_state_is_refused_and_logged)
{
	char *id = open_emergency(MONDAY);
	char *subject = g_strdup_printf("[%s] CLOSE", id);
	struct outcome out;

	/* A stranger who copies the tag does not join the case: the mail
	 * opens a case of its own. */
	out = mail("stranger@elsewhere.example", escalation, subject, "x",
	    MONDAY + 60);
	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_str_ne(out.case_id, id);
	ck_assert_int_eq(events(id, "command", NULL), 0);
	outcome_clear(&out);

	/* Only the roster may take it; only the owner may move it on. */
	command("desk@example.org", id, "ACCEPT", MONDAY + 90);
	ck_assert_str_eq(state_of(id), "paging");
	ck_assert_int_eq(events(id, "refused", "command=ACCEPT"), 1);
	/* A staff member is told why. */
	ck_assert_int_eq(sent(id, "command-refused", "desk@example.org"), 1);
	command("oncall-1@example.org", id, "ACCEPT", MONDAY + 120);
	command("oncall-2@example.org", id, "ZONE-TEAM-INFORMED",
	    MONDAY + 150);
	ck_assert_str_eq(state_of(id), "accepted");
	g_free(subject);
	g_free(id);
}
END_TEST

START_TEST(waiting_for_tickets_stops_the_clock)
{
	struct outcome out = mail("bob@customer.example", escalation,
	    "It went wrong", "No numbers.", MONDAY);
	char *id = g_strdup(out.case_id);
	char *subject = g_strdup_printf("Re: [%s] here", id);
	struct case_record rec = { 0 };

	outcome_clear(&out);
	ck_assert_str_eq(state_of(id), "waiting-tickets");
	ck_assert_int_eq(fire(MONDAY + 10 * DAY), 0);
	/* Tickets a week later: the two business days start now. */
	out = mail("bob@customer.example", escalation, subject,
	    "[IANA #7654321]", MONDAY + 7 * DAY);
	outcome_clear(&out);
	ck_assert_int_eq(store_case_get(store, id, &rec, NULL), 1);
	ck_assert_str_eq(rec.state, "open");
	ck_assert_int_eq(rec.deadline, MONDAY + 9 * DAY);
	case_record_clear(&rec);
	g_free(subject);
	g_free(id);
}
END_TEST

START_TEST(a_reply_to_a_closed_case_reopens_it_or_follows_it)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	char *subject = g_strdup_printf("Re: [%s] still wrong", id);
	struct outcome out;

	command("desk@example.org", id, "CLOSE: fixed", MONDAY + HOUR);
	ck_assert_str_eq(state_of(id), "closed");
	out = mail("alice@customer.example", escalation, subject, "No.",
	    MONDAY + 3 * DAY);
	ck_assert_str_eq(out.case_id, id);
	ck_assert_str_eq(state_of(id), "open");
	outcome_clear(&out);

	command("desk@example.org", id, "CLOSE: fixed", MONDAY + 4 * DAY);
	out = mail("alice@customer.example", escalation, subject, "Again.",
	    MONDAY + 40 * DAY);
	ck_assert_int_eq(out.kind, OUTCOME_OPENED);
	ck_assert_str_ne(out.case_id, id);
	ck_assert_str_eq(state_of(id), "closed");
	outcome_clear(&out);
	g_free(subject);
	g_free(id);
}
END_TEST

START_TEST(a_mistyped_command_is_refused_to_staff_only)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	char *subject = g_strdup_printf("Re: [%s] URGENT: please", id);
	struct outcome out;

	command("desk@example.org", id, "ESCALTE: liaison away",
	    MONDAY + HOUR);
	ck_assert_int_eq(events(id, "refused", "command=ESCALTE"), 1);
	ck_assert_int_eq(sent(id, "command-refused", "desk@example.org"), 1);
	ck_assert_str_eq(state_of(id), "open");

	/* A complainant's capitals are text, not a command. */
	out = mail("alice@customer.example", escalation, subject, "Hurry.",
	    MONDAY + 2 * HOUR);
	ck_assert_ptr_null(out.refused);
	ck_assert_int_eq(events(id, "refused", NULL), 1);
	outcome_clear(&out);
	g_free(subject);
	g_free(id);
}
END_TEST

/* A command with a forged staff From and no proof: refused, logged. */
static void
try_close(const char *case_id, const char *extra, const char *auth_user,
    char **rcpts, time_t at, const char *want_state)
{
	char *subject = g_strdup_printf("Re: [%s] CLOSE", case_id);
	struct outcome out = mail_as("desk@example.org", rcpts, subject,
	    "x", at, extra, auth_user);

	ck_assert_msg(strcmp(state_of(case_id), want_state) == 0,
	    "%s / %s: state %s, want %s", extra, auth_user,
	    state_of(case_id), want_state);
	outcome_clear(&out);
	g_free(subject);
}

START_TEST(only_proven_staff_commands_count)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	char *token_rcpt[] = { NULL, NULL };
	struct role *desk = (struct role *)rules_role(rules, "desk");

	/* No proof; a pass from an authserv-id we do not trust; one that
	 * came in with the mail (below Received); a pass for another
	 * domain; a login the role does not have. */
	try_close(id, "", NULL, escalation, MONDAY + 60, "open");
	try_close(id, "Authentication-Results: evil.example; dkim=pass "
	    "header.d=example.org\r\n", NULL, escalation, MONDAY + 60,
	    "open");
	try_close(id, "Received: from x by mx.example.org;\r\n"
	    "Authentication-Results: mx.example.org; dkim=pass "
	    "header.d=example.org\r\n", NULL, escalation, MONDAY + 60,
	    "open");
	try_close(id, "Authentication-Results: mx.example.org; dkim=pass "
	    "header.d=attacker.example\r\n", NULL, escalation, MONDAY + 60,
	    "open");
	try_close(id, "", "ana", escalation, MONDAY + 60, "open");
	ck_assert_int_eq(events(id, "refused", "does not prove"), 5);

	/* SMTP AUTH with a login of the role. */
	desk->logins = g_new0(char *, 2);
	desk->logins[0] = g_strdup("ana");
	try_close(id, "", "ana", escalation, MONDAY + 120, "closed");
	g_free(id);

	/* A reply to the case's own address, token checked. */
	id = open_complaint("[IANA #1234568] wrong", MONDAY + 200);
	rules->hmac_key = g_strdup("0123456789abcdef0123");
	rules->hmac_key_len = 20;
	token_rcpt[0] = auth_reply_address(rules, "escalation@example.org",
	    "ESC-2026-000001");
	try_close(id, "", NULL, token_rcpt, MONDAY + 300, "open");
	g_free(token_rcpt[0]);
	token_rcpt[0] = auth_reply_address(rules, "escalation@example.org",
	    id);
	ck_assert_str_contains(token_rcpt[0], "escalation+esc-2026-000002.");
	try_close(id, "", NULL, token_rcpt, MONDAY + 300, "closed");
	g_free(token_rcpt[0]);
	g_free(id);
}
END_TEST

struct hold { const char *to; time_t next; };

static gboolean
find_hold(const struct outgoing *m, void *data)
{
	struct hold *h = data;

	if (strcmp(m->recipient, h->to) == 0)
		h->next = m->next_attempt;
	return TRUE;
}

START_TEST(mail_to_staff_with_hours_waits_for_them)
{
	/* Saturday 2026-12-12 10:00 in Zurich. */
	time_t saturday = MONDAY + 5 * DAY;
	char *id = open_complaint("[IANA #1234567] port numbers", saturday);
	struct hold liaison = { "pp-liaison@example.org", 0 };
	struct hold desk = { "desk@example.org", 0 };

	command("desk@example.org", id, "ESCALATE: urgent", saturday + HOUR);
	ck_assert_str_eq(state_of(id), "escalated");
	ck_assert_int_eq(store_case_outbox_each(store, id, find_hold,
	    &liaison, NULL), 0);
	ck_assert_int_eq(store_case_outbox_each(store, id, find_hold, &desk,
	    NULL), 0);
	/* The liaison works business hours: Monday 09:00; the desk has
	 * no hours set, so its notice went at once. */
	ck_assert_int_eq(liaison.next, MONDAY + 7 * DAY - HOUR);
	ck_assert_int_eq(desk.next, saturday);
	ck_assert_int_eq(events(id, "mail-queued", "held for working hours"),
	    1);
	g_free(id);
}
END_TEST

START_TEST(the_same_notice_is_not_sent_in_a_loop)
{
	char *id = open_complaint("[IANA #1234567] wrong", MONDAY);
	char *subject = g_strdup_printf("Re: [%s] OMBUDSMAN", id);
	struct outcome out;

	/* A day's window per case, while the per-address hour passes. */
	((struct rules *)rules)->case_window = DAY;
	for (int i = 0; i < 6; i++) {
		out = mail("alice@customer.example", escalation, subject, "x",
		    MONDAY + (time_t)(i + 1) * 2 * HOUR);
		outcome_clear(&out);
	}
	/* One taken, five refused, three told. */
	ck_assert_int_eq(events(id, "refused", NULL), 5);
	ck_assert_int_eq(sent(id, "command-refused",
	    "alice@customer.example"), 3);
	ck_assert_int_eq(events(id, "mail-skipped",
	    "rate limit for the case"), 2);
	g_free(subject);
	g_free(id);
}
END_TEST

static Suite *
procedures_suite(void)
{
	Suite *s = suite_create("procedures");
	TCase *tc = tcase_create("walks");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc,
	    missed_deadlines_climb_the_whole_chain_with_csc_notices);
	tcase_add_test(tc, complainant_goes_to_the_ombudsman);
	tcase_add_test(tc, phase_two_declares_a_problem_that_runs_to_its_end);
	tcase_add_test(tc, unanswered_pages_move_down_the_roster);
	tcase_add_test(tc,
	    a_roster_that_never_answers_reaches_senior_management);
	tcase_add_test(tc, emergency_walked_to_its_close);
	tcase_add_test(tc, an_emergency_found_not_to_be_one);
	tcase_add_test(tc, wrong_sender_or_state_is_refused_and_logged);
	tcase_add_test(tc, waiting_for_tickets_stops_the_clock);
	tcase_add_test(tc, a_reply_to_a_closed_case_reopens_it_or_follows_it);
	tcase_add_test(tc, a_mistyped_command_is_refused_to_staff_only);
	tcase_add_test(tc, only_proven_staff_commands_count);
	tcase_add_test(tc, mail_to_staff_with_hours_waits_for_them);
	tcase_add_test(tc, the_same_notice_is_not_sent_in_a_loop);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return test_run_suite(procedures_suite());
}
