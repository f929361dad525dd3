/*
 * classify.h: what a message means under the rules, before any case is
 * looked at: which case its subject tags, which command it carries,
 * which ticket numbers it quotes, and whether it is automatic mail that
 * must never be answered (RFC 3834).
 */
#ifndef ESC_CLASSIFY_H
#define ESC_CLASSIFY_H

#include <glib.h>

#include "parser/message.h"
#include "rules/rules.h"

enum automatic {
	AUTO_NONE,
	AUTO_REPLY,	/* Auto-Submitted other than "no" */
	AUTO_BULK,	/* Precedence bulk/junk/list, List-Id */
	AUTO_BOUNCE,	/* null sender, mailer-daemon, delivery report */
};

struct classification {
	char *subject;		/* reply prefixes and gateway tags removed */
	const struct procedure *procedure;	/* whose tag matched */
	char *case_ref;		/* the tagged case id, or NULL */
	char *command;		/* canonical command word, or NULL */
	char *command_text;	/* what follows the command, or NULL */
	char *unknown_command;	/* a capitalised word after the tag that
				 * is no command word, or NULL */
	GPtrArray *tickets;	/* char *, unique, in order of appearance */
	enum automatic automatic;
	const char *automatic_why;	/* static text, or NULL */
	gboolean answers_us;	/* In-Reply-To/References in our domain */
	const struct function *function;	/* its subject and text
						 * concern, for a new case */
	GPtrArray *warnings;	/* char *: match budgets hit, by rule */
};

/*
 * Classify MSG, which arrived with envelope sender ENVELOPE_FROM ("" for
 * the null sender, NULL if unknown). Never fails: a pattern whose match
 * budget runs out is recorded in ->warnings and matching goes on.
 */
void classify_message(const struct rules *rules, const struct message *msg,
    const char *envelope_from, struct classification *out);
void classification_clear(struct classification *out);

const char *automatic_name(enum automatic kind);

#endif
