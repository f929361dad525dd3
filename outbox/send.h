/*
 * send.h: handing one composed message to the MTA.
 *
 * Two transports: piping to sendmail(1) as
 *   COMMAND -i -f SENDER -- RECIPIENT
 * (COMMAND may carry options, such as "-C /etc/postfix-x"), or SMTP to a
 * loopback submission listener ("smtp:127.0.0.1:10026") without a milter.
 * Both take at most SEND_TIMEOUT seconds (unless set otherwise), then
 * kill the command or drop the connection. A failure returns -1 with
 * ESC_ERROR_SEND and the MTA's words; the caller keeps the mail queued.
 */
#ifndef ESC_SEND_H
#define ESC_SEND_H

#include <glib.h>

#define SEND_TIMEOUT 60

struct send_target;

/* "/usr/sbin/sendmail -C DIR" or "smtp:HOST:PORT". */
struct send_target *send_target_parse(const char *spec, GError **error);
void send_target_free(struct send_target **target);
/* Seconds a send may take, SEND_TIMEOUT unless set (tests use less). */
void send_target_set_timeout(struct send_target *target, int seconds);
/* 0 if TARGET can be used here: a sendmail command must be an
 * executable file. -1 with ERROR otherwise. */
int send_target_check(const struct send_target *target, GError **error);
/* Seconds one send may take at most. */
int send_target_timeout(const struct send_target *target);

/* Whether ADDRESS may go on a command line, an SMTP command or a header:
 * 1 to 254 bytes of printable ASCII with no space, no backslash and none
 * of <>()[],;:" and not starting with '-'. send_message() refuses any
 * other, so a bad row stays in the outbox, visible. */
gboolean send_address_valid(const char *address);

/* One mail: a session of one. */
int send_message(const struct send_target *target, const char *sender,
    const char *recipient, GBytes *message, GError **error);

/*
 * Several mails in a row, as in one outbox pass. Over SMTP the
 * connection stays open between mails (up to 100, then a new one): a
 * mail the MTA refused is followed by RSET, a broken connection is
 * opened again for the next mail, and a reused connection the server
 * closed while idle is opened again for the same mail. Each mail still
 * takes at most the target's timeout. A sendmail target runs one
 * command per mail. Close with QUIT at the end of the pass.
 */
struct send_session;

struct send_session *send_session_open(const struct send_target *target);
int send_session_message(struct send_session *session, const char *sender,
    const char *recipient, GBytes *message, GError **error);
void send_session_close(struct send_session **session);

#endif
