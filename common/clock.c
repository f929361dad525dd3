/*
 * clock.c: see clock.h. A clock file that cannot be read or holds no
 * number gives the system clock, with one warning, rather than a stop.
 */
#include <stdlib.h>

#include <glib.h>

#include "common/clock.h"
#include "common/log.h"

time_t
clock_now(void)
{
	static gboolean warned;
	const char *path = g_getenv("ESCALATOR_CLOCK_FILE");
	char *text = NULL, *end;
	long long t;

	if (path == NULL || *path == '\0')
		return time(NULL);
	if (g_file_get_contents(path, &text, NULL, NULL)) {
		t = strtoll(text, &end, 10);
		if (end != text && t > 0) {
			g_free(text);
			return (time_t)t;
		}
	}
	g_free(text);
	if (!warned)
		log_warn("clock: %s holds no time; using the system clock",
		    path);
	warned = TRUE;
	return time(NULL);
}
