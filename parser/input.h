/*
 * input.h: bounding a message before GMime parses it.
 *
 * input_prepare() copies LEN bytes of DATA with line ends made LF and an
 * mbox "From " line dropped, cut where GMime would otherwise spend stack,
 * memory or time out of proportion (see input.c). Never NULL; the caller
 * owns the array. *CUT_R says why something was left out, or is NULL.
 */
#ifndef ESC_INPUT_H
#define ESC_INPUT_H

#include <stddef.h>
#include <glib.h>

GByteArray *input_prepare(const char *data, size_t len,
    const char **cut_r);

#endif
