/*
 * reports.c: see reports.h. Everything here only reads; times print in
 * the local zone of the machine, as in the other listings.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl/reports.h"

static char *
duration_text(const struct duration *d)
{
	if (d->days > 0)
		return g_strdup_printf("%d working day%s", d->days,
		    d->days == 1 ? "" : "s");
	if (d->seconds % 3600 == 0)
		return g_strdup_printf("%ld h", (long)(d->seconds / 3600));
	return g_strdup_printf("%ld min", (long)(d->seconds / 60));
}

static void
graph_state(FILE *out, const struct state *st)
{
	char *deadline = st->deadline.days || st->deadline.seconds ?
	    duration_text(&st->deadline) : NULL;

	fprintf(out, "  \"%s\" [label=\"%s%s%s%s\"%s%s];\n", st->name,
	    st->name, deadline ? "\\ndeadline " : "", deadline ? deadline :
	    "", st->paused ? "\\nclock paused" : "",
	    st->final ? ", shape=doubleoctagon" : "",
	    st->paused ? ", style=dashed" : "");
	g_free(deadline);
}

static char *
edge_label(const struct transition *t)
{
	GString *label = g_string_new(t->on == TRIGGER_COMMAND ? t->command :
	    trigger_word(t->on));

	if (t->when != IF_ALWAYS)
		g_string_append_printf(label, "\\nif %s",
		    condition_word(t->when));
	if (t->by != NULL) {
		char *by = g_strjoinv(", ", t->by);
		g_string_append_printf(label, "\\nby %s", by);
		g_free(by);
	}
	if (t->escalate == CHAIN_NEXT)
		g_string_append(label, "\\nchain: next");
	for (guint i = 0; i < t->sends->len; i++) {
		const struct send *s = t->sends->pdata[i];
		g_string_append_printf(label, "\\n> %s to %s",
		    s->template_name, s->to);
	}
	return g_string_free(label, FALSE);
}

static void
graph_transition(FILE *out, const struct transition *t)
{
	char *label = edge_label(t);
	const char *style = t->on == TRIGGER_DEADLINE ||
	    t->on == TRIGGER_WARNING ? ", color=red, fontcolor=red" : "";

	if (t->on == TRIGGER_OPENED) {
		fprintf(out, "  start -> \"%s\" [label=\"%s\"%s];\n", t->to,
		    label, style);
	} else if (t->from == NULL) {
		fprintf(out, "  \"any open state\" -> \"%s\" [label=\"%s\", "
		    "style=dotted%s];\n", t->to ? t->to : "any open state",
		    label, style);
	} else {
		for (char **s = t->from; *s; s++)
			fprintf(out, "  \"%s\" -> \"%s\" [label=\"%s\"%s%s];\n",
			    *s, t->to ? t->to : *s, label, style,
			    t->to ? "" : ", style=dashed");
	}
	g_free(label);
}

void
report_graph(FILE *out, const struct procedure *proc)
{
	gboolean any = FALSE;

	fprintf(out, "digraph \"%s\" {\n  rankdir=LR;\n"
	    "  node [shape=box, fontname=\"Helvetica\"];\n"
	    "  edge [fontname=\"Helvetica\", fontsize=9];\n"
	    "  start [shape=point];\n", proc->name);
	for (guint i = 0; i < proc->states->len; i++)
		graph_state(out, proc->states->pdata[i]);
	for (guint i = 0; i < proc->transitions->len; i++)
		any |= ((struct transition *)proc->transitions->pdata[i])->
		    from == NULL;
	if (any)
		fprintf(out, "  \"any open state\" [shape=plaintext];\n");
	for (guint i = 0; i < proc->transitions->len; i++)
		graph_transition(out, proc->transitions->pdata[i]);
	fprintf(out, "}\n");
}

char *
report_time(time_t t)
{
	GDateTime *dt;
	char *text;

	if (t == 0)
		return g_strdup("-");
	dt = g_date_time_new_from_unix_local(t);
	text = g_date_time_format(dt, "%Y-%m-%d %H:%M %Z");
	g_date_time_unref(dt);
	return text;
}

struct due_walk { FILE *out; time_t now; int n; };

static gboolean
print_pending(const struct timer_record *t, void *data)
{
	struct due_walk *w = data;
	char *at = report_time(t->due);

	fprintf(w->out, "%s  %-18s %-8s in %-20s%s\n", at, t->case_id,
	    t->kind == TIMER_DEADLINE ? "deadline" : "warning", t->state,
	    t->due <= w->now ? "  OVERDUE (not yet fired)" : "");
	w->n++;
	g_free(at);
	return TRUE;
}

static gboolean
print_missed(const struct timer_record *t, void *data)
{
	struct due_walk *w = data;
	char *due = report_time(t->due), *fired = report_time(t->ended);

	fprintf(w->out, "%s  %-18s missed in %-20s (fired %s)\n", due,
	    t->case_id, t->state, fired);
	w->n++;
	g_free(due);
	g_free(fired);
	return TRUE;
}

int
report_due(FILE *out, struct store *store, time_t now, time_t since,
    GError **error)
{
	struct due_walk w = { out, now, 0 };

	fprintf(out, "coming:\n");
	if (store_timers_each(store, print_pending, &w, error) < 0)
		return -1;
	if (w.n == 0)
		fprintf(out, "  none\n");
	w.n = 0;
	fprintf(out, "missed:\n");
	if (store_timers_missed_each(store, since, print_missed, &w,
	    error) < 0)
		return -1;
	if (w.n == 0)
		fprintf(out, "  none\n");
	return 0;
}

struct period {
	GHashTable *procs;	/* name -> struct tally * */
	GPtrArray *names;
};

struct tally {
	int opened, closed, met, missed;
	GArray *to_ack, *to_response;	/* seconds, gint64 */
};

static struct tally *
tally_of(struct period *p, const char *name)
{
	struct tally *t = g_hash_table_lookup(p->procs, name);

	if (t == NULL) {
		t = g_new0(struct tally, 1);
		t->to_ack = g_array_new(FALSE, FALSE, sizeof(gint64));
		t->to_response = g_array_new(FALSE, FALSE, sizeof(gint64));
		g_hash_table_insert(p->procs, g_strdup(name), t);
		g_ptr_array_add(p->names, g_strdup(name));
	}
	return t;
}

static gboolean
tally_case(const struct case_record *rec, void *data)
{
	struct tally *t = tally_of(data, rec->procedure);
	gint64 d;

	t->opened++;
	if (rec->closed)
		t->closed++;
	if (rec->acknowledged) {
		d = rec->acknowledged - rec->opened;
		g_array_append_val(t->to_ack, d);
	}
	if (rec->responded) {
		d = rec->responded - rec->opened;
		g_array_append_val(t->to_response, d);
	}
	return TRUE;
}

static gboolean
tally_deadlines(const char *procedure, int met, int missed, void *data)
{
	struct tally *t = tally_of(data, procedure);

	t->met += met;
	t->missed += missed;
	return TRUE;
}

static gint
compare_gint64(gconstpointer a, gconstpointer b)
{
	gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

	return x < y ? -1 : x > y;
}

static char *
median_text(GArray *values)
{
	gint64 m;

	if (values->len == 0)
		return g_strdup("-");
	g_array_sort(values, compare_gint64);
	m = g_array_index(values, gint64, values->len / 2);
	if (values->len % 2 == 0)
		m = (m + g_array_index(values, gint64, values->len / 2 - 1)) /
		    2;
	if (m < 3600)
		return g_strdup_printf("%ld min", (long)(m / 60));
	if (m < 2 * 86400)
		return g_strdup_printf("%.1f h", m / 3600.0);
	return g_strdup_printf("%.1f days", m / 86400.0);
}

static void
tally_free(gpointer data)
{
	struct tally *t = data;

	g_array_unref(t->to_ack);
	g_array_unref(t->to_response);
	g_free(t);
}

int
report_period(FILE *out, struct store *store, time_t from, time_t to,
    GError **error)
{
	struct period p = { g_hash_table_new_full(g_str_hash, g_str_equal,
	    g_free, tally_free), g_ptr_array_new_with_free_func(g_free) };
	int rc = store_cases_opened_each(store, from, to, tally_case, &p,
	    error);

	if (rc == 0)
		rc = store_deadlines_count(store, from, to, tally_deadlines,
		    &p, error);
	fprintf(out, "%-12s %7s %7s %14s %14s %6s %7s\n", "procedure",
	    "opened", "closed", "median ack", "median resp", "met", "missed");
	for (guint i = 0; rc == 0 && i < p.names->len; i++) {
		struct tally *t = g_hash_table_lookup(p.procs,
		    p.names->pdata[i]);
		char *ack = median_text(t->to_ack);
		char *resp = median_text(t->to_response);

		fprintf(out, "%-12s %7d %7d %14s %14s %6d %7d\n",
		    (char *)p.names->pdata[i], t->opened, t->closed, ack,
		    resp, t->met, t->missed);
		g_free(ack);
		g_free(resp);
	}
	g_hash_table_unref(p.procs);
	g_ptr_array_unref(p.names);
	return rc;
}
