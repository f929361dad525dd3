/*
 * check_calendar.c: deadlines in working days across weekends, holidays,
 * DST changes and the end of the year. Times are given as local times
 * in the calendar's zone; no test sleeps or reads the clock.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rules/calendar.h"
#include "t/testutil.h"

static struct calendar *
business(void)
{
	struct calendar *cal = calendar_new("business", "Europe/Zurich");

	cal->working_days = 0x1f;
	ck_assert_int_eq(calendar_set_hours(cal, "09:00-17:00"), 0);
	ck_assert_int_eq(calendar_add_holiday(cal, "2026-12-25"), 0);
	ck_assert_int_eq(calendar_add_holiday(cal, "2027-01-01"), 0);
	return cal;
}

static time_t
local(const struct calendar *cal, const char *text)
{
	int y, mo, d, h, mi;
	GDateTime *dt;
	time_t t;

	ck_assert_int_eq(sscanf(text, "%d-%d-%d %d:%d", &y, &mo, &d, &h, &mi),
	    5);
	dt = g_date_time_new(cal->tz, y, mo, d, h, mi, 0);
	t = (time_t)g_date_time_to_unix(dt);
	g_date_time_unref(dt);
	return t;
}

static char *
show(const struct calendar *cal, time_t t)
{
	GDateTime *utc = g_date_time_new_from_unix_utc(t);
	GDateTime *dt = g_date_time_to_timezone(utc, cal->tz);
	char *text = g_date_time_format(dt, "%Y-%m-%d %H:%M");

	g_date_time_unref(utc);
	g_date_time_unref(dt);
	return text;
}

static const struct {
	const char *start;
	int days;
	const char *want;
	const char *why;
} deadline_cases[] = {
	{ "2026-12-04 16:00", 2, "2026-12-08 16:00", "friday to tuesday" },
	{ "2026-12-07 10:30", 2, "2026-12-09 10:30", "midweek" },
	{ "2026-12-05 10:00", 2, "2026-12-09 09:00", "saturday: from monday"
	    " opening" },
	{ "2026-12-07 07:00", 1, "2026-12-08 09:00", "before opening" },
	{ "2026-12-07 18:00", 1, "2026-12-09 09:00", "after closing" },
	{ "2026-12-23 11:00", 2, "2026-12-28 11:00", "christmas skipped" },
	{ "2026-12-31 15:00", 1, "2027-01-04 15:00", "new year skipped" },
	{ "2027-03-26 16:00", 2, "2027-03-30 16:00", "over the spring DST "
	    "change, same local time" },
	{ "2027-10-29 10:00", 1, "2027-11-01 10:00", "over the autumn DST "
	    "change" },
	{ "2026-12-07 10:00", 0, "2026-12-07 10:00", "zero days" },
};

START_TEST(deadline_counts_working_days)
{
	struct calendar *cal = business();
	time_t start = local(cal, deadline_cases[_i].start);
	char *got = show(cal, calendar_add_working_days(cal, start,
	    deadline_cases[_i].days));

	ck_assert_msg(strcmp(got, deadline_cases[_i].want) == 0,
	    "%s: %s + %d: got %s, want %s", deadline_cases[_i].why,
	    deadline_cases[_i].start, deadline_cases[_i].days, got,
	    deadline_cases[_i].want);
	g_free(got);
	calendar_free(&cal);
}
END_TEST

START_TEST(around_the_clock_is_plain_days)
{
	struct calendar *cal = calendar_new("always", "UTC");
	time_t start = 1796000000;	/* a Saturday in 2026 */

	cal->working_days = 0x7f;
	ck_assert_int_eq(calendar_add_working_days(cal, start, 3),
	    start + 3 * 86400);
	calendar_free(&cal);
}
END_TEST

START_TEST(working_hours_are_recognised)
{
	struct calendar *cal = business();

	ck_assert(calendar_is_working(cal, local(cal, "2026-12-07 09:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2026-12-07 17:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2026-12-05 12:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2026-12-25 12:00")));
	calendar_free(&cal);
}
END_TEST

START_TEST(malformed_settings_are_refused)
{
	struct calendar *cal = calendar_new("x", "Europe/Zurich");

	ck_assert_int_eq(calendar_set_hours(cal, "9-5"), -1);
	ck_assert_int_eq(calendar_set_hours(cal, "17:00-09:00"), -1);
	ck_assert_int_eq(calendar_set_hours(cal, "09:00-24:30"), -1);
	ck_assert_int_eq(calendar_add_holiday(cal, "2026-02-30"), -1);
	ck_assert_int_eq(calendar_add_holiday(cal, "25.12.2026"), -1);
	ck_assert_int_eq(calendar_day_parse("Monday"), 0);
	ck_assert_int_eq(calendar_day_parse("sun"), 6);
	ck_assert_int_eq(calendar_day_parse("xx"), -1);
	calendar_free(&cal);
	cal = calendar_new("y", "Mars/Olympus_Mons");
	ck_assert_ptr_null(cal->tz);
	calendar_free(&cal);
}
END_TEST

static const struct {
	const char *start;
	int hours;
	const char *want;
	const char *why;
} hour_cases[] = {
	{ "2026-12-07 10:00", 4, "2026-12-07 14:00", "within a day" },
	{ "2026-12-04 15:00", 4, "2026-12-07 11:00", "over the weekend" },
	{ "2026-12-05 12:00", 1, "2026-12-07 10:00", "from a saturday" },
	{ "2026-12-24 16:00", 2, "2026-12-28 10:00", "over christmas" },
	{ "2027-03-26 16:00", 2, "2027-03-29 10:00", "over the DST change" },
	{ "2026-12-31 16:30", 1, "2027-01-04 09:30", "over new year" },
};

START_TEST(working_hours_count_only_opening_time)
{
	struct calendar *cal = business();
	time_t start = local(cal, hour_cases[_i].start);
	time_t due = calendar_add_working_seconds(cal, start,
	    (gint64)hour_cases[_i].hours * 3600);
	char *got = show(cal, due);

	ck_assert_msg(strcmp(got, hour_cases[_i].want) == 0, "%s: %s + %dh: "
	    "got %s, want %s", hour_cases[_i].why, hour_cases[_i].start,
	    hour_cases[_i].hours, got, hour_cases[_i].want);
	/* And back: the working time between is what was added. */
	ck_assert_int_eq(calendar_working_seconds(cal, start, due),
	    (gint64)hour_cases[_i].hours * 3600);
	g_free(got);
	calendar_free(&cal);
}
END_TEST

START_TEST(holidays_come_from_an_icalendar_file)
{
	struct calendar *cal = business();
	char *dir = test_tmpdir();
	char *path = g_build_filename(dir, "holidays.ics", NULL);
	const char *ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
	    "PRODID:-//test//EN\r\n"
	    "BEGIN:VEVENT\r\nUID:1@test\r\nDTSTART;VALUE=DATE:20200801\r\n"
	    "RRULE:FREQ=YEARLY\r\nSUMMARY:National day\r\nEND:VEVENT\r\n"
	    "BEGIN:VEVENT\r\nUID:2@test\r\nDTSTART;VALUE=DATE:20271208\r\n"
	    "SUMMARY:Once\r\nEND:VEVENT\r\n"
	    "BEGIN:VEVENT\r\nUID:3@test\r\nDTSTART;VALUE=DATE:20271229\r\n"
	    "DTEND;VALUE=DATE:20280101\r\nSUMMARY:Closure, three days\r\n"
	    "END:VEVENT\r\nEND:VCALENDAR\r\n";
	GError *error = NULL;
	char *got;

	ck_assert(g_file_set_contents(path, ics, -1, NULL));
	/* 1 August of 2026, 2027 and 2028, 8 December 2027, a closure. */
	ck_assert_int_eq(calendar_load_ics(cal, path, 2026, 2028, &error), 5);
	ck_assert(!calendar_is_working(cal, local(cal, "2027-12-29 10:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2027-12-31 10:00")));
	ck_assert(calendar_is_working(cal, local(cal, "2027-12-28 10:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2028-08-01 10:00")));
	ck_assert(!calendar_is_working(cal, local(cal, "2027-12-08 10:00")));
	ck_assert(calendar_is_working(cal, local(cal, "2027-12-09 10:00")));
	got = show(cal, calendar_add_working_days(cal,
	    local(cal, "2027-12-07 10:00"), 1));
	ck_assert_str_eq(got, "2027-12-09 10:00");
	g_free(got);
	ck_assert_int_eq(calendar_load_ics(cal, "/nonexistent.ics", 2026, 2028,
	    &error), -1);
	g_clear_error(&error);
	unlink(path);
	g_free(path);
	test_tmpdir_remove(dir);
	calendar_free(&cal);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("calendar");
	TCase *tc = tcase_create("deadlines");

	tcase_add_loop_test(tc, deadline_counts_working_days, 0,
	    G_N_ELEMENTS(deadline_cases));
	tcase_add_test(tc, around_the_clock_is_plain_days);
	tcase_add_test(tc, working_hours_are_recognised);
	tcase_add_test(tc, malformed_settings_are_refused);
	tcase_add_loop_test(tc, working_hours_count_only_opening_time, 0,
	    G_N_ELEMENTS(hour_cases));
	tcase_add_test(tc, holidays_come_from_an_icalendar_file);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
