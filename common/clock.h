/*
 * clock.h: the time escalator runs on.
 *
 * Always the system clock, except where the environment variable
 * ESCALATOR_CLOCK_FILE names a file holding a Unix time: then that time,
 * read afresh at each call. The tests use it to walk a case through
 * days of deadlines in seconds; nothing in production sets it.
 */
#ifndef ESC_CLOCK_H
#define ESC_CLOCK_H

#include <time.h>

time_t clock_now(void);

#endif
