/*
 * compose.h: an outgoing row as an RFC 5322 message, built with GMime.
 *
 * The result has From, To, Subject (RFC 2047 where needed, never empty
 * or glued encoded-words), Date, Message-ID, In-Reply-To and References
 * when known, Auto-Submitted, X-Auto-Response-Suppress: All (so Exchange
 * auto-replies stay quiet), Precedence: bulk is NOT set (it is for lists),
 * X-Escalator-Case, MIME-Version and a text/plain; charset=utf-8 body in
 * 7bit, or quoted-printable if it has non-ASCII text or long lines, so
 * the whole message is 7-bit. Nothing from the row reaches a header
 * unencoded: controls (CR and LF among them) become spaces, and an
 * address send_address_valid() refuses leaves its header out.
 * Lines end in LF, as sendmail(1) expects.
 */
#ifndef ESC_COMPOSE_H
#define ESC_COMPOSE_H

#include <time.h>
#include <glib.h>

#include "store/store.h"

/* The message bytes for MAIL, dated NOW. Never NULL. */
GBytes *compose_message(const struct outgoing *mail, time_t now);

#endif
