/*
 * calendar.h: working time, for deadlines.
 *
 * A calendar has a time zone, working days, working hours and holidays.
 * "Within N business days" is counted as the same local time of day on
 * the Nth working day after the start: Friday 16:00 plus 2 is Tuesday
 * 16:00. A start outside working hours counts from the next opening:
 * Saturday 10:00 plus 2 is Wednesday at opening time. A calendar open
 * every day around the clock is plain elapsed days. Local times are kept
 * across DST changes (a deadline stays at 16:00 local). Hours and
 * minutes count working time only (calendar_add_working_seconds).
 */
#ifndef ESC_CALENDAR_H
#define ESC_CALENDAR_H

#include <time.h>
#include <glib.h>

struct calendar {
	char *name;
	char *timezone;		/* IANA name, e.g. "Europe/Zurich" */
	GTimeZone *tz;
	guint8 working_days;	/* bit 0 Monday ... bit 6 Sunday */
	int opens;		/* minutes after midnight */
	int closes;		/* minutes after midnight, up to 1440 */
	GHashTable *holidays;	/* "YYYY-MM-DD" set */
};

/* A calendar open on DAYS ("mon".."sun") during HOURS ("09:00-17:00"). */
struct calendar *calendar_new(const char *name, const char *timezone);
void calendar_free(struct calendar **cal);

/* Parse "09:00-17:00" into the calendar; -1 if malformed. */
int calendar_set_hours(struct calendar *cal, const char *hours);
/* Parse a day word ("mon", "Monday"): 0..6, or -1. */
int calendar_day_parse(const char *word);
/* Add a holiday "YYYY-MM-DD"; -1 if malformed. */
int calendar_add_holiday(struct calendar *cal, const char *date);

/* Is AT inside working hours of a working day? */
gboolean calendar_is_working(const struct calendar *cal, time_t at);
/* The deadline DAYS working days after START, as described above. */
time_t calendar_add_working_days(const struct calendar *cal, time_t start,
    int days);
/* The first working moment at or after AT (AT itself if working). */
time_t calendar_next_working(const struct calendar *cal, time_t at);
/*
 * SECONDS of working time after START: inside opening hours on working
 * days, so 4 hours from Friday 15:00 in a 09:00-17:00 calendar is
 * Monday 11:00. Around the clock it is plain elapsed time.
 */
time_t calendar_add_working_seconds(const struct calendar *cal,
    time_t start, gint64 seconds);
/* Working seconds between FROM and TO (0 if TO is not after FROM). */
gint64 calendar_working_seconds(const struct calendar *cal, time_t from,
    time_t to);
/*
 * Add the days of every event in the iCalendar file PATH as holidays
 * (every day from DTSTART up to its exclusive DTEND), recurring events
 * expanded over FROM_YEAR..TO_YEAR. The number of occurrences added,
 * or -1 with ERROR.
 */
int calendar_load_ics(struct calendar *cal, const char *path,
    int from_year, int to_year, GError **error);

/* Format AT in the calendar's zone: "Tue 2026-12-08 16:00 CET". */
char *calendar_format(const struct calendar *cal, time_t at);

#endif
