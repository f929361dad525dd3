/*
 * body.h: the text a person wrote, from a MIME part's content.
 *
 * body_part_text() decodes one leaf part (its transfer encoding leniently,
 * its charset as labelled, with the Windows-1252 fallback) to UTF-8.
 * Line ends become LF, other control characters go, no-break spaces
 * become spaces and format=flowed lines are joined.
 * body_html_to_text() strips tags, drops script and style, turns block
 * ends into line breaks and decodes character entities.
 * Both return a new string, never NULL; NULL gives "".
 */
#ifndef ESC_BODY_H
#define ESC_BODY_H

#include <gmime/gmime.h>

char *body_part_text(GMimePart *part);
char *body_html_to_text(const char *html);

#endif
