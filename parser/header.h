/*
 * header.h: decoding header values the way mail clients actually do.
 *
 * header_decode() turns a raw unstructured header value (Subject, a
 * display name) into UTF-8: it unfolds, decodes RFC 2047 encoded-words
 * even where they are glued to text or to each other, drops empty
 * encoded-words and the white space between adjacent encoded-words,
 * decodes base64 that was split into padded chunks, and reads raw 8-bit
 * bytes as UTF-8 when valid, Windows-1252 otherwise. Unknown charsets
 * fall back the same way. Control characters and no-break spaces become
 * plain spaces and the ends are trimmed, so a subject reads the same
 * however it was folded. Never NULL; NULL gives "".
 */
#ifndef ESC_HEADER_H
#define ESC_HEADER_H

#include <glib.h>

char *header_decode(const char *raw);

/* Decode base64 leniently: skips junk and '=' between chunks. */
GBytes *header_base64_decode(const char *text, size_t len);

/*
 * LEN bytes of DATA in CHARSET as UTF-8, never NULL. Labels that mail
 * misuses are read as the WHATWG encoding standard says (ISO-8859-1,
 * Latin-1 and US-ASCII are Windows-1252). A NULL, unknown or UTF-8
 * label, and bytes the charset cannot hold, give UTF-8 where valid and
 * Windows-1252 elsewhere; NUL bytes become U+FFFD. Shared with body.c
 * so that headers and text follow one rule.
 */
char *header_charset_to_utf8(const char *charset, const char *data,
    size_t len);

#endif
