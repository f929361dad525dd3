/*
 * rules.h: the rules an admin writes: watched mailboxes and the
 * procedure each opens, case id formats and tags, ticket patterns,
 * reply prefixes, command words, calendars, deadlines and templates.
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

struct procedure {
	char *name;		/* "complaint" */
	char *case_id;		/* format: "ESC-{year}-{seq:6}" */
	int case_id_line;	/* where the format stands in the rules */
	struct pattern tag;	/* group 1 is the case id */
	const struct calendar *calendar;
	int response_days;	/* working days; 0: no deadline */
	struct template *ack;
	struct template *ack_without_tickets;	/* may be NULL */
	char *ack_name;		/* template names, for messages */
	char *ack_without_tickets_name;
};

struct mailbox {
	char *address;		/* lowercased */
	struct procedure *procedure;
};

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
	struct pattern reply_prefix;	/* built from the prefix words */
	struct pattern command;	/* built from the command words */
	char **command_words;	/* canonical spelling */

	int ack_limit;		/* acknowledgements per sender per window */
	int ack_window;		/* seconds */
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
/* The case id for sequence number SEQ in YEAR, per the format. */
char *procedure_case_id(const struct procedure *proc, int year,
    gint64 seq);

/*
 * Find the first match of PAT in TEXT (valid UTF-8, LEN bytes) from
 * OFFSET. 1 and the bounds of group GROUP (or the whole match if the
 * pattern has fewer groups) when found, 0 when not, -1 when the match
 * budget ran out or PCRE2 failed (ERROR names the rule's file:line).
 */
int pattern_find(const struct rules *rules, const struct pattern *pat,
    const char *text, size_t len, size_t offset, int group,
    size_t *start_r, size_t *end_r, GError **error);

#endif
