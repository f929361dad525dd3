/*
 * calendar.c: deadline arithmetic in working time.
 *
 * Dates are walked in the calendar's own zone with GLib's GDateTime, so
 * DST changes keep the local time of day. Days count whole working days;
 * hours and minutes count working time inside opening hours (see
 * calendar.h). Holidays come from a list or an iCalendar file (libical
 * expands recurring ones, such as a yearly national day).
 */
#include <stdio.h>
#include <string.h>

#include <libical/ical.h>

#include "rules/calendar.h"

static const char *const day_words[] = { "mon", "tue", "wed", "thu",
	"fri", "sat", "sun" };

struct calendar *
calendar_new(const char *name, const char *timezone)
{
	struct calendar *cal = g_new0(struct calendar, 1);

	cal->name = g_strdup(name);
	cal->timezone = g_strdup(timezone);
	cal->tz = g_time_zone_new_identifier(timezone);
	cal->opens = 0;
	cal->closes = 24 * 60;
	cal->holidays = g_hash_table_new_full(g_str_hash, g_str_equal,
	    g_free, NULL);
	return cal;
}

void
calendar_free(struct calendar **cal)
{
	if (*cal == NULL)
		return;
	g_free((*cal)->name);
	g_free((*cal)->timezone);
	if ((*cal)->tz != NULL)
		g_time_zone_unref((*cal)->tz);
	g_hash_table_unref((*cal)->holidays);
	g_free(*cal);
	*cal = NULL;
}

int
calendar_day_parse(const char *word)
{
	for (int i = 0; i < 7; i++)
		if (g_ascii_strncasecmp(word, day_words[i], 3) == 0 &&
		    strlen(word) >= 3)
			return i;
	return -1;
}

int
calendar_set_hours(struct calendar *cal, const char *hours)
{
	int h1, m1, h2, m2, used = 0;

	if (sscanf(hours, "%2d:%2d-%2d:%2d%n", &h1, &m1, &h2, &m2,
	    &used) != 4 || hours[used] != '\0')
		return -1;
	if (h1 < 0 || h1 > 23 || m1 < 0 || m1 > 59 || h2 < 0 || h2 > 24 ||
	    m2 < 0 || m2 > 59 || (h2 == 24 && m2 != 0))
		return -1;
	if (h2 * 60 + m2 <= h1 * 60 + m1)
		return -1;
	cal->opens = h1 * 60 + m1;
	cal->closes = h2 * 60 + m2;
	return 0;
}

int
calendar_add_holiday(struct calendar *cal, const char *date)
{
	int y, m, d, used = 0;

	if (sscanf(date, "%4d-%2d-%2d%n", &y, &m, &d, &used) != 3 ||
	    date[used] != '\0' || !g_date_valid_dmy((GDateDay)d,
	    (GDateMonth)m, (GDateYear)y))
		return -1;
	g_hash_table_add(cal->holidays, g_strdup_printf("%04d-%02d-%02d",
	    y, m, d));
	return 0;
}

static GDateTime *
local_time(const struct calendar *cal, time_t at)
{
	GDateTime *utc = g_date_time_new_from_unix_utc(at);
	GDateTime *local;

	/* Rules with an unknown zone are refused; this is only a guard. */
	if (cal->tz == NULL)
		return utc;
	local = g_date_time_to_timezone(utc, cal->tz);
	g_date_time_unref(utc);
	return local;
}

static gboolean
is_working_day(const struct calendar *cal, GDateTime *day)
{
	int weekday = g_date_time_get_day_of_week(day) - 1;
	char *date = g_date_time_format(day, "%Y-%m-%d");
	gboolean holiday = g_hash_table_contains(cal->holidays, date);

	g_free(date);
	return (cal->working_days & (1u << weekday)) != 0 && !holiday;
}

static int
minute_of_day(GDateTime *t)
{
	return g_date_time_get_hour(t) * 60 + g_date_time_get_minute(t);
}

gboolean
calendar_is_working(const struct calendar *cal, time_t at)
{
	GDateTime *t = local_time(cal, at);
	int minute = minute_of_day(t);
	gboolean working = is_working_day(cal, t) && minute >= cal->opens &&
	    minute < cal->closes;

	g_date_time_unref(t);
	return working;
}

/* Local midnight-based time on DAY at MINUTE past midnight. */
static GDateTime *
at_minute(const struct calendar *cal, GDateTime *day, int minute)
{
	return g_date_time_new(cal->tz, g_date_time_get_year(day),
	    g_date_time_get_month(day), g_date_time_get_day_of_month(day),
	    minute / 60, minute % 60, 0);
}

static GDateTime *
next_day(const struct calendar *cal, GDateTime *day)
{
	GDateTime *noon = at_minute(cal, day, 12 * 60);
	GDateTime *next = g_date_time_add_days(noon, 1);

	g_date_time_unref(noon);
	return next;
}

/* The first working moment at or after T (T itself if working). */
static GDateTime *
working_start(const struct calendar *cal, GDateTime *t)
{
	GDateTime *day = g_date_time_ref(t);

	if (is_working_day(cal, day) && minute_of_day(t) >= cal->opens &&
	    minute_of_day(t) < cal->closes)
		return day;
	if (is_working_day(cal, day) && minute_of_day(t) < cal->opens) {
		GDateTime *open = at_minute(cal, day, cal->opens);
		g_date_time_unref(day);
		return open;
	}
	/* After closing or on a day off: the next working day's opening.
	 * A year is enough to find one; a calendar with no working day is
	 * refused when rules load. */
	for (int i = 0; i < 366; i++) {
		GDateTime *next = next_day(cal, day);

		g_date_time_unref(day);
		day = next;
		if (is_working_day(cal, day))
			break;
	}
	GDateTime *open = at_minute(cal, day, cal->opens);
	g_date_time_unref(day);
	return open;
}

time_t
calendar_add_working_days(const struct calendar *cal, time_t start,
    int days)
{
	GDateTime *t = local_time(cal, start);
	GDateTime *from = working_start(cal, t);
	GDateTime *day = g_date_time_ref(from);
	GDateTime *deadline;
	time_t result;

	for (int counted = 0, guard = 0; counted < days && guard < 3660;
	    guard++) {
		GDateTime *next = next_day(cal, day);

		g_date_time_unref(day);
		day = next;
		if (is_working_day(cal, day))
			counted++;
	}
	/* The same local time of day, seconds included. */
	deadline = g_date_time_new(cal->tz, g_date_time_get_year(day),
	    g_date_time_get_month(day), g_date_time_get_day_of_month(day),
	    g_date_time_get_hour(from), g_date_time_get_minute(from),
	    g_date_time_get_seconds(from));
	result = (time_t)g_date_time_to_unix(deadline);

	g_date_time_unref(deadline);
	g_date_time_unref(day);
	g_date_time_unref(from);
	g_date_time_unref(t);
	return result;
}

char *
calendar_format(const struct calendar *cal, time_t at)
{
	GDateTime *t = local_time(cal, at);
	char *text = g_date_time_format(t, "%a %Y-%m-%d %H:%M %Z");

	g_date_time_unref(t);
	return text;
}

/* End of the working hours of the day T falls on. */
static GDateTime *
closing_of(const struct calendar *cal, GDateTime *t)
{
	if (cal->closes < 24 * 60)
		return at_minute(cal, t, cal->closes);

	GDateTime *next = next_day(cal, t);
	GDateTime *midnight = at_minute(cal, next, 0);

	g_date_time_unref(next);
	return midnight;
}

time_t
calendar_next_working(const struct calendar *cal, time_t at)
{
	GDateTime *t = local_time(cal, at);
	GDateTime *start = working_start(cal, t);
	time_t result = (time_t)g_date_time_to_unix(start);

	g_date_time_unref(start);
	g_date_time_unref(t);
	return result;
}

time_t
calendar_add_working_seconds(const struct calendar *cal, time_t start,
    gint64 seconds)
{
	time_t t = start;

	/* One opening period per turn; ten years of them is a guard. */
	for (int guard = 0; guard < 3660; guard++) {
		GDateTime *local = local_time(cal, t);
		GDateTime *open = working_start(cal, local);
		GDateTime *close = closing_of(cal, open);
		gint64 from = g_date_time_to_unix(open);
		gint64 avail = g_date_time_to_unix(close) - from;

		g_date_time_unref(close);
		g_date_time_unref(open);
		g_date_time_unref(local);
		if (seconds <= avail)
			return (time_t)(from + seconds);
		seconds -= avail;
		t = (time_t)(from + avail);
	}
	return t;
}

gint64
calendar_working_seconds(const struct calendar *cal, time_t from,
    time_t to)
{
	gint64 total = 0;
	time_t t = from;

	for (int guard = 0; t < to && guard < 3660; guard++) {
		GDateTime *local = local_time(cal, t);
		GDateTime *open = working_start(cal, local);
		GDateTime *close = closing_of(cal, open);
		gint64 start = g_date_time_to_unix(open);
		gint64 end = MIN(g_date_time_to_unix(close), (gint64)to);

		g_date_time_unref(close);
		g_date_time_unref(open);
		g_date_time_unref(local);
		if (start >= to)
			break;
		total += end - start;
		t = (time_t)end;
	}
	return total;
}

/* Days an event covers: DTEND (or DURATION) is exclusive; at least 1. */
static int
event_span(icalcomponent *event, struct icaltimetype start)
{
	struct icaltimetype end = icalcomponent_get_dtend(event);
	int days;

	if (icaltime_is_null_time(end))
		return 1;
	days = (int)((icaltime_as_timet(end) - icaltime_as_timet(start) +
	    43200) / 86400);
	/* A timed event ending on the day it starts still takes the day. */
	return CLAMP(days, 1, 366);
}

static void
add_days(struct calendar *cal, struct icaltimetype day, int span)
{
	for (int i = 0; i < span; i++) {
		struct icaltimetype d = day;

		icaltime_adjust(&d, i, 0, 0, 0);
		g_hash_table_add(cal->holidays, g_strdup_printf(
		    "%04d-%02d-%02d", d.year, d.month, d.day));
	}
}

/* Add each day of the event's occurrences in [FROM_YEAR, TO_YEAR]. */
static int
add_event_days(struct calendar *cal, icalcomponent *event, int from_year,
    int to_year)
{
	struct icaltimetype start = icalcomponent_get_dtstart(event);
	icalproperty *rrule = icalcomponent_get_first_property(event,
	    ICAL_RRULE_PROPERTY);
	struct icaltimetype day = start;
	icalrecur_iterator *it = NULL;
	int added = 0, span;

	if (icaltime_is_null_time(start))
		return 0;
	span = event_span(event, start);
	if (rrule != NULL)
		it = icalrecur_iterator_new(icalproperty_get_rrule(rrule),
		    start);
	for (int guard = 0; guard < 1000; guard++) {
		if (guard > 0 && it == NULL)
			break;
		if (it != NULL)
			day = icalrecur_iterator_next(it);
		if (icaltime_is_null_time(day) || day.year > to_year)
			break;
		if (day.year >= from_year) {
			add_days(cal, day, span);
			added++;
		}
	}
	if (it != NULL)
		icalrecur_iterator_free(it);
	return added;
}

int
calendar_load_ics(struct calendar *cal, const char *path, int from_year,
    int to_year, GError **error)
{
	char *text = NULL;
	icalcomponent *root, *event;
	int added = 0;

	if (!g_file_get_contents(path, &text, NULL, error))
		return -1;
	root = icalparser_parse_string(text);
	g_free(text);
	if (root == NULL) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
		    "%s: not an iCalendar file", path);
		return -1;
	}
	for (event = icalcomponent_get_first_component(root,
	    ICAL_VEVENT_COMPONENT); event != NULL;
	    event = icalcomponent_get_next_component(root,
	    ICAL_VEVENT_COMPONENT))
		added += add_event_days(cal, event, from_year, to_year);
	icalcomponent_free(root);
	return added;
}
