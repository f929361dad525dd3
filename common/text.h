/*
 * text.h: small helpers for text that came from mail.
 */
#ifndef ESC_TEXT_H
#define ESC_TEXT_H

#include <glib.h>

/* Default cap on untrusted text in a log line, in bytes. */
#define TEXT_LOG_CAP 200

/*
 * A copy of TEXT fit for a log line: valid UTF-8, control characters
 * (CR, LF, TAB, C1 included) shown as '?', cut at CAP bytes on a
 * character boundary with "..." appended. NULL gives "(none)".
 */
char *text_printable(const char *text, size_t cap);

/*
 * A copy of LEN bytes of TEXT as valid UTF-8: kept as is if it already
 * is, otherwise read as Windows-1252 (the superset of Latin-1 that
 * mislabelled mail almost always is). NUL bytes become U+FFFD.
 */
char *text_to_utf8(const char *text, size_t len);

/* Lowercase ASCII copy of an address, or NULL. */
char *text_address_normalize(const char *address);

/*
 * What the writer of a reply wrote: the body up to its signature ("-- "),
 * an Outlook or forwarding separator, or the "On ... wrote:" line before
 * a quote, with quoted lines ("> ...") left out; cut at CAP bytes.
 */
char *text_own_words(const char *body, size_t cap);

/* The first thing in TEXT that looks like an address, lowercased, or
 * NULL: commands name a contact this way ("... manager@tld.example"). */
char *text_first_address(const char *text);

#endif
