/*
 * log.h: one small logging module for the daemon, the CLI and the tests.
 *
 * Lines go to stderr in the foreground and to syslog(3) otherwise; each
 * carries its level word ("warning: ...") in the text, as mail logs do.
 * errno is preserved across calls. A test may capture lines in memory
 * to assert what was logged.
 *
 * Convention for per-message lines (see STYLE.md):
 *   QUEUEID: case=ID event: key=value ...
 * with untrusted text passed through text_printable() first.
 */
#ifndef ESC_LOG_H
#define ESC_LOG_H

#include <glib.h>

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG };

/* Log to stderr (foreground) or to syslog under IDENT. */
void log_init(const char *ident, gboolean foreground, enum log_level max);
void log_set_level(enum log_level max);
/* Parse "error", "warning", "info", "debug"; -1 if unknown. */
int log_level_parse(const char *word);

void log_err(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_warn(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_info(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
void log_debug(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/*
 * Hold back this thread's lines until log_release(): a case's decisions
 * are made inside a store transaction, and are logged once it committed
 * (DONE), outside the store lock; if it was undone, only its warnings
 * and errors are logged, since the decisions did not happen (the caller
 * logs why).
 */
void log_hold(void);
void log_release(gboolean done);

/* Tests: keep lines in memory instead of printing them. */
void log_capture_start(void);
/* The captured lines joined by '\n'; the capture stops. Caller frees. */
char *log_capture_stop(void);

#endif
