/*
 * reports.h: escalatorctl's views of the procedures and of the store:
 * a procedure as a Graphviz graph, deadlines coming and missed, and
 * counts and medians per procedure over a period.
 */
#ifndef ESC_REPORTS_H
#define ESC_REPORTS_H

#include <stdio.h>
#include <time.h>

#include "rules/rules.h"
#include "store/store.h"

/* T as local "YYYY-MM-DD HH:MM ZONE", "-" for 0; caller frees. */
char *report_time(time_t t);
/* Print PROC as DOT on OUT. */
void report_graph(FILE *out, const struct procedure *proc);
/* Pending deadlines and warnings, and deadlines missed since SINCE. */
int report_due(FILE *out, struct store *store, time_t now, time_t since,
    GError **error);
/* Cases opened in [FROM, TO) and deadlines ended in it. */
int report_period(FILE *out, struct store *store, time_t from, time_t to,
    GError **error);

#endif
