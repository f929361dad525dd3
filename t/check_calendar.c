/*
 * check_calendar.c: deadlines in working days across weekends, holidays,
 * DST changes and the end of the year. Times are given as local times
 * in the calendar's zone; no test sleeps or reads the clock.
 */
#include <stdio.h>
#include <string.h>

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
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
