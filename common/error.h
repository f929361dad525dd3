/*
 * error.h: escalator's one error carrier is GLib's GError, since GMime and
 * GLib already speak it. Every module reports failures in ESC_ERROR with
 * a code saying what kind of failure it was; each layer adds its context
 * once with g_prefix_error().
 */
#ifndef ESC_ERROR_H
#define ESC_ERROR_H

#include <glib.h>

#define ESC_ERROR (esc_error_quark())

enum esc_error_code {
	ESC_ERROR_FAILED,	/* anything else */
	ESC_ERROR_CONFIG,	/* configuration or rules invalid */
	ESC_ERROR_STORE,	/* database failed */
	ESC_ERROR_BUSY,		/* database locked: worth retrying */
	ESC_ERROR_LIMIT,	/* an input limit or match budget was hit */
	ESC_ERROR_IO,		/* a system call failed */
	ESC_ERROR_SEND,		/* handing mail to the MTA failed: retry */
	ESC_ERROR_REJECTED,	/* the MTA refused the mail for good */
};

GQuark esc_error_quark(void);

#endif
