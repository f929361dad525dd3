/*
 * message.h: what escalator reads from one mail message.
 *
 * message_parse() reads a whole message (headers and body, CRLF or LF
 * line ends, as a file or as the milter rebuilt it) with GMime and
 * returns the fields the rules look at, all as valid UTF-8. It is best
 * effort: broken MIME, wrong charsets, bad encodings and missing headers
 * give what can be read, never a failure. It works around the decoding
 * faults of the GMime that Debian 12 ships (3.2.13): adjacent and glued
 * encoded-words, and base64 glued from padded chunks.
 *
 * message_automatic() says whether the message declares itself
 * automatic (RFC 3834), so that nothing ever answers it.
 *
 * Limits: at most MESSAGE_MAX_PARTS MIME parts are walked and at most
 * MESSAGE_MAX_DEPTH levels of nesting; the text body is cut at
 * MESSAGE_MAX_BODY bytes. Callers bound the size of DATA.
 */
#ifndef ESC_MESSAGE_H
#define ESC_MESSAGE_H

#include <stddef.h>
#include <glib.h>

#define MESSAGE_MAX_PARTS 200
#define MESSAGE_MAX_DEPTH 20
#define MESSAGE_MAX_BODY (256 * 1024)

struct message {
	char *subject;		/* decoded, unfolded; "" if none */
	char *from;		/* addr-spec, lowercased; NULL if none */
	char *from_name;	/* decoded display name; NULL if none */
	char *reply_to;		/* addr-spec, lowercased; NULL if none */
	char *message_id;	/* without angle brackets; NULL if none */
	char *in_reply_to;	/* first msg-id, no brackets; NULL if none */
	char **references;	/* msg-ids, no brackets; never NULL */
	char *date;		/* Date header as written; NULL if none */
	char *auto_submitted;	/* Auto-Submitted keyword, lowercased, no
				 * comments or parameters: of the first
				 * header other than "no", else of the
				 * first; NULL if none */
	char *precedence;	/* Precedence keyword, lowercased; NULL if
				 * none */
	char *list_id;		/* List-Id value; NULL if none */
	/* Authentication-Results above the first Received header, as
	 * written (unfolded); never NULL. */
	char **auth_results;
	char *body;		/* text/plain preferred, else text of HTML */
	gboolean is_report;	/* a delivery-status report */
	char *report_type;	/* multipart/report's report-type, lowercased
				 * ("delivery-status", "disposition-
				 * notification", ...); NULL if not one */
	char *returned_id;	/* in a DSN, or a bounce from a mailer
				 * daemon in another form: the Message-ID
				 * of the returned mail; NULL if none */
	char *limits;		/* limits hit while reading, "; "-joined, or
				 * NULL: what was left out, for the log */
};

/* Parse LEN bytes of DATA. Never NULL. Free with message_free(). */
struct message *message_parse(const char *data, size_t len);
void message_free(struct message **message);

/*
 * Why M must never get an automatic answer (RFC 3834), as a static
 * text, or NULL when nothing says so: the null envelope sender, a
 * report (delivery status, read receipt, ...), a mailer-daemon or
 * postmaster sender, Auto-Submitted other than "no", Precedence bulk,
 * junk, list or auto_reply, or a List-Id. ENVELOPE_FROM is MAIL FROM
 * without brackets, "" for the null sender, NULL if unknown.
 * X-Auto-Response-Suppress is not looked at: it asks us not to be
 * answered, it does not say the mail is automatic.
 */
/*
 * Hex SHA-256 of M's From, subject and body text: what tells two copies
 * of a message without a usable Message-ID apart. Computed on demand,
 * as most mail does not need it; the caller frees it.
 */
char *message_digest(const struct message *m);

const char *message_automatic(const struct message *m,
    const char *envelope_from);

#endif
