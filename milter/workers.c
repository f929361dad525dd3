/*
 * workers.c: the outbox thread, the timer thread and the signal thread.
 *
 * The timer thread sleeps until the next timer is due (at most its poll
 * interval, so a timer added by another process is not missed), fires
 * what is due through the engine and wakes the outbox thread.
 *
 * The outbox thread sleeps until woken by a queued acknowledgement or
 * until its poll interval passes (retries come due while nobody wakes
 * it), then sends everything due. Sending never happens in a milter
 * callback, so a slow MTA submission cannot stall the SMTP session.
 *
 * The signal thread waits for SIGUSR1, loads the rules aside and swaps
 * them in only if they are valid; otherwise the old rules stay in force
 * and the reason is logged. It also waits for SIGQUIT, the graceful
 * stop (see drain_and_stop).
 */
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <libmilter/mfapi.h>

#include "common/clock.h"
#include "common/error.h"
#include "common/log.h"
#include "milter/callbacks.h"
#include "milter/workers.h"
#include "outbox/outbox.h"
#include "rules/engine.h"

#define OUTBOX_POLL_SECONDS 30
#define TIMER_POLL_SECONDS 30
#define TIMERS_PER_ROUND 100
#define DRAIN_SECONDS 60

static struct {
	const struct config *config;
	struct store *store;
	struct send_target *target;
	pthread_t outbox_thread, timer_thread, signal_thread;
	GMutex lock;
	GCond wake, timer_wake;
	gboolean woken, timer_woken, stopping;
} w;

/* Asked by the outbox between mails: a stop ends the pass early. */
static gboolean
outbox_keep_going(void)
{
	gboolean stopping;

	g_mutex_lock(&w.lock);
	stopping = w.stopping;
	g_mutex_unlock(&w.lock);
	return !stopping;
}

static void *
outbox_loop(void *unused)
{
	(void)unused;
	g_mutex_lock(&w.lock);
	while (!w.stopping) {
		GError *error = NULL;
		gint64 until;

		w.woken = FALSE;
		g_mutex_unlock(&w.lock);
		if (outbox_run(w.store, w.target, clock_now(),
		    outbox_keep_going, &error) < 0) {
			log_err("outbox: %s", error->message);
			g_error_free(error);
		}
		g_mutex_lock(&w.lock);
		until = g_get_monotonic_time() +
		    OUTBOX_POLL_SECONDS * G_TIME_SPAN_SECOND;
		while (!w.woken && !w.stopping)
			if (!g_cond_wait_until(&w.wake, &w.lock, until))
				break;
	}
	g_mutex_unlock(&w.lock);
	return NULL;
}

/* Seconds until the next timer is due, within the poll interval. */
static int
timer_sleep_seconds(void)
{
	GError *error = NULL;
	time_t due = 0, now = clock_now();
	int rc = store_timer_earliest(w.store, &due, &error);

	if (rc < 0) {
		log_err("timer: %s", error->message);
		g_error_free(error);
	}
	if (rc != 1 || due - now >= TIMER_POLL_SECONDS)
		return TIMER_POLL_SECONDS;
	return due <= now ? 0 : (int)(due - now);
}

static void
fire_due_timers(void)
{
	struct rules *rules = callbacks_rules_get();
	GError *error = NULL;
	int fired;

	do {
		fired = engine_fire_due(rules, w.store, clock_now(),
		    TIMERS_PER_ROUND, &error);
		if (fired > 0)
			workers_outbox_wake();
	} while (fired == TIMERS_PER_ROUND && !w.stopping);
	if (fired < 0) {
		/* A locked store: the timer stays due for the next round. */
		log_err("timer: %s", error->message);
		g_error_free(error);
	}
	rules_unref(&rules);
}

static void *
timer_loop(void *unused)
{
	(void)unused;
	g_mutex_lock(&w.lock);
	while (!w.stopping) {
		gint64 until;
		int seconds;

		w.timer_woken = FALSE;
		g_mutex_unlock(&w.lock);
		fire_due_timers();
		seconds = timer_sleep_seconds();
		g_mutex_lock(&w.lock);
		until = g_get_monotonic_time() +
		    MAX(seconds, 1) * G_TIME_SPAN_SECOND;
		while (!w.timer_woken && !w.stopping)
			if (!g_cond_wait_until(&w.timer_wake, &w.lock, until))
				break;
	}
	g_mutex_unlock(&w.lock);
	return NULL;
}

void
workers_timer_wake(void)
{
	g_mutex_lock(&w.lock);
	w.timer_woken = TRUE;
	g_cond_signal(&w.timer_wake);
	g_mutex_unlock(&w.lock);
}

void
workers_outbox_wake(void)
{
	g_mutex_lock(&w.lock);
	w.woken = TRUE;
	g_cond_signal(&w.wake);
	g_mutex_unlock(&w.lock);
}

static void
reload_rules(void)
{
	GError *error = NULL;
	struct rules *rules = rules_load(w.config->rules, w.config->templates,
	    &error);

	if (rules == NULL) {
		char **lines = g_strsplit(error->message, "\n", -1);

		/* One log line per problem: syslog keeps lines whole. */
		log_err("reload: rules %s not loaded, the old rules stay in "
		    "force", w.config->rules);
		for (char **line = lines; *line != NULL; line++)
			log_err("reload: %s", *line);
		g_strfreev(lines);
		g_error_free(error);
		return;
	}
	for (guint i = 0; i < rules->warnings->len; i++)
		log_warn("reload: %s", (char *)rules->warnings->pdata[i]);
	callbacks_rules_swap(rules);
	log_info("reload: rules %s loaded", w.config->rules);
}

int
workers_wait_for_none(int (*count)(void), int seconds)
{
	for (int i = 0; i < seconds * 10 && count() > 0; i++)
		g_usleep(100 * 1000);
	return count();
}

/*
 * SIGQUIT: stop gracefully. New watched mail is tempfailed at DATA while
 * the messages already past DATA finish (up to DRAIN_SECONDS); then
 * libmilter is told to stop, which drops only idle sessions.
 */
static void
drain_and_stop(void)
{
	log_info("stop: draining, %d messages in flight",
	    callbacks_messages_open());
	callbacks_drain();
	if (workers_wait_for_none(callbacks_messages_open, DRAIN_SECONDS) > 0)
		log_warn("stop: %d messages still in flight after %d s",
		    callbacks_messages_open(), DRAIN_SECONDS);
	smfi_stop();
}

static void *
signal_loop(void *unused)
{
	sigset_t set;
	int sig;

	(void)unused;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);	/* SIGUSR2: wake the thread to stop */
	sigaddset(&set, SIGQUIT);
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR2 && w.stopping)
			break;
		/* A reload also looks at timers and the outbox at once: new
		 * rules may change what is due (and the tests move their
		 * clock, then send SIGUSR1). */
		if (sig == SIGUSR1) {
			reload_rules();
			workers_timer_wake();
			workers_outbox_wake();
		}
		if (sig == SIGQUIT)
			drain_and_stop();
	}
	return NULL;
}

int
workers_start(const struct config *config, struct store *store,
    struct send_target *target, GError **error)
{
	sigset_t set;

	w.config = config;
	w.store = store;
	w.target = target;

	/* Threads made from here on leave SIGUSR1/2 to signal_loop and the
	 * stop signals to libmilter's own signal thread. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGQUIT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	if (pthread_create(&w.outbox_thread, NULL, outbox_loop, NULL) != 0 ||
	    pthread_create(&w.timer_thread, NULL, timer_loop, NULL) != 0 ||
	    pthread_create(&w.signal_thread, NULL, signal_loop, NULL) != 0) {
		g_set_error(error, ESC_ERROR, ESC_ERROR_IO,
		    "cannot start worker threads");
		return -1;
	}
	return 0;
}

void
workers_stop(void)
{
	g_mutex_lock(&w.lock);
	w.stopping = TRUE;
	g_cond_signal(&w.wake);
	g_cond_signal(&w.timer_wake);
	g_mutex_unlock(&w.lock);
	pthread_join(w.outbox_thread, NULL);
	pthread_join(w.timer_thread, NULL);
	pthread_kill(w.signal_thread, SIGUSR2);
	pthread_join(w.signal_thread, NULL);
}
