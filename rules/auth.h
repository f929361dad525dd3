/*
 * auth.h: proving who sent a command.
 *
 * A From address is easy to forge, so a command from a role counts only
 * if the message also carries a proof the rules allow for that role:
 *   smtp-auth  the MTA's {auth_authen} login is one of the role's logins;
 *   dkim       an Authentication-Results header, added by our own MTA
 *              (a trusted authserv-id, above the first Received header),
 *              says dkim=pass for the From domain or a parent of it;
 *   hmac       the message went to the case's own reply address,
 *              MAILBOX+CASE.TOKEN@DOMAIN, whose token is an HMAC-SHA256
 *              of the case id under a key only the daemon reads: only
 *              someone who got our mail about the case knows it.
 */
#ifndef ESC_AUTH_H
#define ESC_AUTH_H

#include <glib.h>

#include "parser/message.h"
#include "rules/rules.h"

#define AUTH_SMTP (1u << 0)
#define AUTH_DKIM (1u << 1)
#define AUTH_HMAC (1u << 2)
#define AUTH_ALL (AUTH_SMTP | AUTH_DKIM | AUTH_HMAC)

/* Does a trusted Authentication-Results header pass DKIM for the From? */
gboolean auth_dkim_aligned(const struct rules *rules,
    const struct message *msg);

/* The reply address of CASE_ID at MAILBOX, or a copy of MAILBOX if the
 * rules have no HMAC key. */
char *auth_reply_address(const struct rules *rules, const char *mailbox,
    const char *case_id);

/* The case whose reply address one of RECIPIENTS is, token checked, or
 * NULL. */
char *auth_hmac_case(const struct rules *rules, char **recipients);

/* "smtp-auth", "dkim", "hmac": the AUTH_ bit, or 0. */
guint auth_method_parse(const char *word);

#endif
