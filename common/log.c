/*
 * log.c: lines to stderr or syslog, with the level word in the text.
 * A mutex keeps lines whole when milter threads log at once; the capture
 * buffer lets tests assert warnings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <pthread.h>

#include "common/log.h"

static gboolean log_foreground = TRUE;
static enum log_level log_max = LOG_LEVEL_INFO;
static GString *log_captured;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_words[] = { "error", "warning", "info",
	"debug" };
static const int level_priorities[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
	LOG_DEBUG };

void
log_init(const char *ident, gboolean foreground, enum log_level max)
{
	log_foreground = foreground;
	log_max = max;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level max)
{
	log_max = max;
}

int
log_level_parse(const char *word)
{
	for (size_t i = 0; i < G_N_ELEMENTS(level_words); i++)
		if (g_ascii_strcasecmp(word, level_words[i]) == 0)
			return (int)i;
	return -1;
}

/* A line held back by log_hold(). */
struct held_line {
	enum log_level level;
	char *text;
};

static void
held_free(gpointer data)
{
	GArray *lines = data;

	for (guint i = 0; i < lines->len; i++)
		g_free(g_array_index(lines, struct held_line, i).text);
	g_array_free(lines, TRUE);
}

/* This thread's held lines, or NULL when it holds none back. */
static GPrivate held_lines = G_PRIVATE_INIT(held_free);

static void
log_write(enum log_level level, const char *text)
{
	pthread_mutex_lock(&log_lock);
	if (log_captured != NULL)
		g_string_append_printf(log_captured, "%s%s: %s",
		    log_captured->len ? "\n" : "", level_words[level], text);
	else if (log_foreground)
		fprintf(stderr, "%s: %s\n", level_words[level], text);
	else
		syslog(level_priorities[level], "%s: %s", level_words[level],
		    text);
	pthread_mutex_unlock(&log_lock);
}

static void
log_vemit(enum log_level level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	GArray *held = g_private_get(&held_lines);
	struct held_line line;

	if (level > log_max && log_captured == NULL) {
		errno = saved_errno;
		return;
	}
	line.level = level;
	line.text = g_strdup_vprintf(fmt, ap);
	if (held != NULL) {
		g_array_append_val(held, line);
	} else {
		log_write(level, line.text);
		g_free(line.text);
	}
	errno = saved_errno;
}

void
log_hold(void)
{
	if (g_private_get(&held_lines) == NULL)
		g_private_set(&held_lines, g_array_new(FALSE, FALSE,
		    sizeof(struct held_line)));
}

void
log_release(gboolean done)
{
	GArray *held = g_private_get(&held_lines);

	if (held == NULL)
		return;
	for (guint i = 0; i < held->len; i++) {
		struct held_line *line = &g_array_index(held,
		    struct held_line, i);

		if (done || line->level <= LOG_LEVEL_WARN)
			log_write(line->level, line->text);
	}
	/* Frees the lines too. */
	g_private_replace(&held_lines, NULL);
}

#define LOG_FUNCTION(name, level)				\
void								\
name(const char *fmt, ...)					\
{								\
	va_list ap;						\
	va_start(ap, fmt);					\
	log_vemit(level, fmt, ap);				\
	va_end(ap);						\
}

LOG_FUNCTION(log_err, LOG_LEVEL_ERR)
LOG_FUNCTION(log_warn, LOG_LEVEL_WARN)
LOG_FUNCTION(log_info, LOG_LEVEL_INFO)
LOG_FUNCTION(log_debug, LOG_LEVEL_DEBUG)

void
log_capture_start(void)
{
	pthread_mutex_lock(&log_lock);
	if (log_captured == NULL)
		log_captured = g_string_new(NULL);
	pthread_mutex_unlock(&log_lock);
}

char *
log_capture_stop(void)
{
	char *lines;

	pthread_mutex_lock(&log_lock);
	lines = log_captured ? g_string_free(log_captured, FALSE) :
	    g_strdup("");
	log_captured = NULL;
	pthread_mutex_unlock(&log_lock);
	return lines;
}
