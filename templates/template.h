/*
 * template.h: the templates admins write for outgoing mail.
 *
 * A template file is UTF-8 text. Its first line is "Subject: ..."; a
 * blank line follows, then the body. Both may use:
 *   {{name}}            the value of variable NAME ("" if unset)
 *   {{#name}}...{{/name}}  the text between, only if NAME is non-empty
 *   {{^name}}...{{/name}}  the text between, only if NAME is empty
 * Sections do not nest with the same name. A section tag alone on its
 * line (blanks aside) takes the line with it. Anything else between
 * "{{" and "}}" is an error naming the file and line. Values are
 * inserted as they are; the composer encodes the subject for its header.
 */
#ifndef ESC_TEMPLATE_H
#define ESC_TEMPLATE_H

#include <glib.h>

struct template;

/* Load and check PATH; NULL with ERROR "PATH:LINE: problem" if bad. */
struct template *template_load(const char *path, GError **error);
/* Same, from text already in memory; NAME is used in errors. */
struct template *template_parse(const char *name, const char *text,
    GError **error);
void template_free(struct template **tpl);

/* Render with VARS (name -> UTF-8 value). Subject is one line: any line
 * break in it is turned into a space. */
void template_render(const struct template *tpl, GHashTable *vars,
    char **subject_r, char **body_r);

#endif
