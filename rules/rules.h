/*
 * rules.h: the rules an admin writes: watched mailboxes and the
 * procedure each opens, case id formats and tags, ticket patterns,
 * reply prefixes, command words, calendars, roles, chains, and for each
 * procedure its states and the transitions between them: which command,
 * message or deadline fires each, who may fire it, and which templates
 * go to whom. escalator has no procedure of its own: all of it is here.
 *
 * rules_load() reads a YAML file (libfyaml: every node keeps its line,
 * and single-quoted strings keep backslashes as PCRE2 wants them),
 * compiles every pattern once with JIT and match limits, loads every
 * template it names, and checks references between sections. It reports
 * ALL problems, one "FILE:LINE: problem" per line, and fails if there is
 * any. Loaded rules are immutable and reference-counted, so a reload can
 * swap them while messages in flight keep the rules they started with.
 */
#ifndef ESC_RULES_H
#define ESC_RULES_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <glib.h>

#include "rules/calendar.h"
#include "templates/template.h"

struct pattern {
	char *source;		/* as written in the file */
	char *file;
	int line;
	pcre2_code *code;
};

/* Who mail goes to and who may act: staff roles, by name. */
struct role {
	char *name;		/* "programme-manager" */
	char **addresses;	/* lowercased, in roster order */
	/* Mail to the role waits for this calendar's working hours, or
	 * NULL: sent at once. */
	const struct calendar *hours;
	guint auth;		/* AUTH_ methods that prove a member */
	char **logins;		/* SMTP AUTH names of its members */
};

/* The function a complaint concerns picks its first liaison. */
struct function {
	char *name;		/* "root-zone" */
	const struct role *role;
	GPtrArray *patterns;	/* struct pattern *, tried in order */
};

/* One step of a chain: a whole role, one member of it, or the liaison
 * of the case's function. */
struct chain_step {
	const struct role *role;	/* NULL: the function's role */
	int member;		/* index into role->addresses, or -1: all */
};

struct chain {
	char *name;
	GArray *steps;		/* struct chain_step, "each:" expanded */
};

/* An amount of working time in a calendar. */
struct duration {
	int days;		/* working days, or */
	gint64 seconds;		/* working seconds (hours, minutes) */
};

struct state {
	char *name;
	int line;
	gboolean final;		/* the case is closed here */
	gboolean paused;	/* the clock stops while the case is here */
	gboolean responded;	/* reaching it counts as the response */
	struct duration deadline;	/* zero: none */
	struct duration warning;	/* before the deadline; zero: none */
};

enum trigger {
	TRIGGER_OPENED,		/* the case has just been opened */
	TRIGGER_MESSAGE,	/* a message without a command */
	TRIGGER_COMMAND,	/* a command word */
	TRIGGER_DEADLINE,	/* the state's deadline passed */
	TRIGGER_WARNING,	/* the state's deadline is near */
};

enum condition {
	IF_ALWAYS,
	IF_TICKETS,		/* the case cites ticket numbers */
	IF_NO_TICKETS,
	IF_CHAIN_NEXT,		/* the chain has a step after this one */
	IF_CHAIN_END,		/* it has not */
};

enum chain_move { CHAIN_STAY, CHAIN_NEXT, CHAIN_FIRST };

/* A template sent to a recipient: a role or a party of the case. */
struct send {
	char *to;		/* role, party or remembered contact */
	struct template *template;	/* owned by rules->templates */
	char *template_name;
};

struct transition {
	int line;
	enum trigger on;
	char *command;		/* TRIGGER_COMMAND: canonical word */
	char **from;		/* states; NULL: any state not final */
	char **by;		/* who may: roles or parties; NULL: anyone */
	enum condition when;
	char *to;		/* next state; NULL: stay (timers kept) */
	enum chain_move escalate;
	gboolean take_ownership;	/* the sender becomes the owner */
	char *remember;		/* keep an address from the command text
				 * as this contact of the case */
	char *open;		/* open a linked case of this procedure */
	GPtrArray *sends;	/* struct send * */
};

struct procedure {
	char *name;		/* "complaint" */
	char *case_id;		/* format: "ESC-{year}-{seq:6}" */
	int case_id_line;	/* where the format stands in the rules */
	struct pattern tag;	/* group 1 is the case id */
	const struct calendar *calendar;
	const struct chain *chain;	/* may be NULL */
	char *reply_to;		/* the mailbox replies come back to */
	GPtrArray *states;	/* struct state * */
	GPtrArray *transitions;	/* struct transition *, in file order */
	int reopen_days;	/* a closed case reopens within; 0: never */
	char *reopen_to;	/* the state it reopens to */
};

struct mailbox {
	char *address;		/* lowercased */
	struct procedure *procedure;
};

struct prefilter;

struct rules {
	char *path;
	int refs;

	char *domain;		/* right side of our Message-IDs */
	char *sender;		/* our From and envelope sender */
	char *sender_name;
	char **internal_domains;	/* never acknowledged automatically */

	GPtrArray *mailboxes;	/* struct mailbox * */
	GPtrArray *procedures;	/* struct procedure * */
	GPtrArray *calendars;	/* struct calendar * */
	GPtrArray *tickets;	/* struct pattern * */
	struct prefilter *ticket_prefilter;	/* or NULL: run them all */
	struct pattern reply_prefix;	/* built from the prefix words */
	struct pattern command;	/* built from the command words */
	char **command_words;	/* canonical spelling */

	GPtrArray *roles;	/* struct role * */
	GPtrArray *functions;	/* struct function *, tried in order */
	const struct function *default_function;
	GPtrArray *chains;	/* struct chain * */
	GHashTable *templates;	/* name -> struct template *, owned */
	struct template *refusal;	/* tells a sender a command failed */
	char **trusted_authserv_ids;	/* our own MTA's A-R headers */
	char *hmac_key;		/* for reply-address tokens, or NULL */
	gsize hmac_key_len;
	GPtrArray *warnings;	/* char *: "FILE:LINE: ..." worth a look */

	int ack_limit;		/* acknowledgements per sender per window */
	int ack_window;		/* seconds */
	int case_limit;		/* mails of one template per case per */
	int case_window;	/* ... this many seconds */
	int subject_scan;	/* bytes of subject examined */
	int ticket_limit;	/* tickets kept from one message */
	pcre2_match_context *match_context;	/* match and depth limits */
};

#define RULES_MATCH_LIMIT 100000
#define RULES_DEPTH_LIMIT 1000

/*
 * Load PATH, reading templates from TEMPLATE_DIR. NULL with ERROR
 * listing every problem, one per line, if anything is wrong.
 */
struct rules *rules_load(const char *path, const char *template_dir,
    GError **error);
struct rules *rules_ref(struct rules *rules);
void rules_unref(struct rules **rules);

/* The watched mailbox ADDRESS (any case), or NULL. */
const struct mailbox *rules_mailbox(const struct rules *rules,
    const char *address);
const struct procedure *rules_procedure(const struct rules *rules,
    const char *name);
const struct role *rules_role(const struct rules *rules, const char *name);
/* Does a role of RULES hold ADDRESS (any case), i.e. is it staff? */
gboolean rules_is_staff(const struct rules *rules, const char *address);
/* Is ADDRESS (any case) in the NULL-terminated LIST (may be NULL)? */
gboolean address_in(char **list, const char *address);
/* Does T leave from ST (NULL: no state yet)? Never for "on: opened". */
gboolean transition_leaves(const struct transition *t,
    const struct state *st);
/* The words of the rules file: "deadline", "chain-next", ... */
const char *trigger_word(enum trigger on);
const char *condition_word(enum condition when);
const struct state *procedure_state(const struct procedure *proc,
    const char *name);
/* The function with the first pattern that matches SUBJECT or BODY,
 * else the default (NULL without functions). */
const struct function *rules_function_for(const struct rules *rules,
    const char *subject, const char *body);
/* The case id for sequence number SEQ in YEAR, per the format. */
char *procedure_case_id(const struct procedure *proc, int year,
    gint64 seq);

/*
 * Find the first match of PAT in TEXT (valid UTF-8, LEN bytes) from
 * OFFSET. 1 and the bounds of group GROUP, 0 or 1 (the whole match if
 * group 1 did not take part) when found, 0 when not, -1 when the match
 * budget ran out or PCRE2 failed (ERROR names the rule's file:line).
 */
int pattern_find(const struct rules *rules, const struct pattern *pat,
    const char *text, size_t len, size_t offset, int group,
    size_t *start_r, size_t *end_r, GError **error);

#endif
