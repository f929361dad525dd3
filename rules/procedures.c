/*
 * procedures.c: loading who acts and how a case moves.
 *
 * Roles name staff addresses; functions pick the liaison a complaint
 * goes to first; chains list who a case climbs to, in order. Each
 * procedure has states (final, clock paused, deadline, warning) and a
 * list of transitions, each fired by the case opening, a message, a
 * command, or a deadline or its warning, and sending templates to roles
 * and parties of the case. Everything named is checked to exist; then
 * the graph is checked for states that cannot be reached and states
 * from which no final state can be.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/yaml.h"
#include "rules/auth.h"
#include "rules/loader.h"

static const char *const state_keys[] = { "final", "clock", "responded",
	"deadline", "warning", NULL };
static const char *const transition_keys[] = { "on", "command", "from",
	"by", "if", "to", "escalate", "owner", "remember", "open", "send",
	NULL };
static const char *const send_keys[] = { "template", "to", NULL };
static const char *const role_keys[] = { "addresses", "hours", "auth",
	"logins", NULL };
static const char *const function_keys[] = { "role", "patterns", NULL };
static const char *const reopen_keys[] = { "within_days", "to", NULL };

/* Parties of a case and groups of senders, besides the roles. */
static const char *const parties[] = { "sender", "complainant", "owner",
	"assignee", NULL };
static const char *const groups[] = { "staff", "anyone", NULL };

static gboolean
in_list(const char *const *list, const char *word)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, word) == 0)
			return TRUE;
	return FALSE;
}

/* "yes"/"true" or "no"/"false"; DFLT if KEY is missing. */
static gboolean
yaml_flag(struct yaml_file *f, struct fy_node *map, const char *key,
    gboolean dflt)
{
	const char *v = yaml_string(f, map, key, NULL);

	if (v == NULL)
		return dflt;
	if (g_ascii_strcasecmp(v, "true") == 0 ||
	    g_ascii_strcasecmp(v, "yes") == 0)
		return TRUE;
	if (g_ascii_strcasecmp(v, "false") != 0 &&
	    g_ascii_strcasecmp(v, "no") != 0)
		yaml_error(f, yaml_at(map, key), "%s: expected true or "
		    "false, got \"%s\"", key, v);
	return FALSE;
}

/* A scalar or a list of scalars as a NULL-terminated vector, or NULL. */
static char **
yaml_words(struct yaml_file *f, struct fy_node *map, const char *key)
{
	struct fy_node *node = fy_node_mapping_lookup_by_string(map, key,
	    FY_NT);
	GPtrArray *words = g_ptr_array_new();
	struct fy_node *item;
	void *iter = NULL;

	if (node == NULL) {
		g_ptr_array_free(words, TRUE);
		return NULL;
	}
	if (fy_node_is_scalar(node)) {
		g_ptr_array_add(words, g_strdup(yaml_scalar(f, node, key)));
	} else if (fy_node_is_sequence(node)) {
		while ((item = fy_node_sequence_iterate(node, &iter))) {
			const char *w = yaml_scalar(f, item, key);
			if (w != NULL)
				g_ptr_array_add(words, g_strdup(w));
		}
	} else {
		yaml_error(f, node, "%s: expected a word or a list", key);
	}
	g_ptr_array_add(words, NULL);
	return (char **)g_ptr_array_free(words, FALSE);
}

/*
 * "2 days" (working days), "4 hours", "30 minutes" (working time) into
 * OUT; -1 if malformed.
 */
static int
duration_parse(const char *text, struct duration *out)
{
	char *end;
	long n = strtol(text, &end, 10);

	memset(out, 0, sizeof *out);
	if (end == text || n <= 0 || n > 3650)
		return -1;
	while (*end == ' ')
		end++;
	if (strcmp(end, "day") == 0 || strcmp(end, "days") == 0)
		out->days = (int)n;
	else if (strcmp(end, "hour") == 0 || strcmp(end, "hours") == 0)
		out->seconds = n * 3600;
	else if (strcmp(end, "minute") == 0 || strcmp(end, "minutes") == 0)
		out->seconds = n * 60;
	else
		return -1;
	return 0;
}

static void
load_duration(struct loader *ld, struct fy_node *map, const char *key,
    const char *owner, struct duration *out)
{
	const char *text = yaml_string(ld->file, map, key, NULL);

	if (text != NULL && duration_parse(text, out) < 0)
		yaml_error(ld->file, yaml_at(map, key), "%s: %s: expected "
		    "\"N days\", \"N hours\" or \"N minutes\", got \"%s\"",
		    owner, key, text);
}

/* auth: [smtp-auth, dkim, hmac] (all three if left out), logins. */
static void
load_role_auth(struct loader *ld, struct role *role, struct fy_node *map)
{
	char **methods = yaml_words(ld->file, map, "auth");

	role->logins = yaml_words(ld->file, map, "logins");
	if (methods == NULL)
		return;
	role->auth = 0;
	for (char **m = methods; *m; m++) {
		guint bit = auth_method_parse(*m);

		if (bit == 0)
			yaml_error(ld->file, yaml_at(map, "auth"), "role %s: "
			    "auth: expected smtp-auth, dkim or hmac, got "
			    "\"%s\"", role->name, *m);
		role->auth |= bit;
	}
	g_strfreev(methods);
}

/* Roles: "name: [addresses]" or "name: {addresses: [...], hours: CAL}". */
static void
load_role(struct loader *ld, const char *name, struct fy_node *value)
{
	struct yaml_file *f = ld->file;
	struct role *role = g_new0(struct role, 1);
	struct fy_node *list = value, *item;
	const char *hours = NULL;
	GPtrArray *addresses = g_ptr_array_new();
	void *iter = NULL;

	role->name = g_strdup(name);
	role->auth = AUTH_ALL;
	if (value != NULL && fy_node_is_mapping(value)) {
		yaml_check_keys(f, value, role_keys);
		list = yaml_sequence(f, value, "addresses");
		hours = yaml_string(f, value, "hours", NULL);
		load_role_auth(ld, role, value);
	}
	if (list == NULL || !fy_node_is_sequence(list))
		yaml_error(f, value, "role %s: expected a list of addresses",
		    name);
	while (list && fy_node_is_sequence(list) &&
	    (item = fy_node_sequence_iterate(list, &iter))) {
		const char *a = yaml_scalar(f, item, "address");

		if (a != NULL && strchr(a, '@') == NULL)
			yaml_error(f, item, "role %s: \"%s\" is not an "
			    "address", name, a);
		else if (a != NULL)
			g_ptr_array_add(addresses, g_ascii_strdown(a, -1));
	}
	g_ptr_array_add(addresses, NULL);
	role->addresses = (char **)g_ptr_array_free(addresses, FALSE);
	if (hours != NULL) {
		role->hours = loader_calendar(ld->rules, hours);
		if (role->hours == NULL)
			yaml_error(f, yaml_at(value, "hours"), "role %s: "
			    "unknown calendar \"%s\"", name, hours);
	}
	if (in_list(parties, name) || in_list(groups, name) ||
	    strcmp(name, "function") == 0)
		yaml_error(f, value, "role %s: the name is reserved for the "
		    "parties of a case", name);
	g_ptr_array_add(ld->rules->roles, role);
}

/* Iterate the mapping KEY of the top level, calling FN per entry. */
static void
each_entry(struct loader *ld, const char *key,
    void (*fn)(struct loader *, const char *, struct fy_node *))
{
	struct fy_node *map = yaml_mapping(ld->file, ld->file->root, key);
	struct fy_node_pair *pair;
	void *iter = NULL;

	while (map && (pair = fy_node_mapping_iterate(map, &iter))) {
		const char *name = yaml_scalar(ld->file,
		    fy_node_pair_key(pair), key);

		if (name != NULL)
			fn(ld, name, fy_node_pair_value(pair));
	}
}

void
load_roles(struct loader *ld)
{
	ld->rules->roles = g_ptr_array_new();
	ld->rules->functions = g_ptr_array_new();
	ld->rules->chains = g_ptr_array_new();
	each_entry(ld, "roles", load_role);
}

static void
load_function(struct loader *ld, const char *name, struct fy_node *value)
{
	struct yaml_file *f = ld->file;
	struct function *fn = g_new0(struct function, 1);
	const char *role;
	struct fy_node *list, *item;
	void *iter = NULL;

	fn->name = g_strdup(name);
	fn->patterns = g_ptr_array_new_with_free_func(pattern_free);
	g_ptr_array_add(ld->rules->functions, fn);
	if (value == NULL || !fy_node_is_mapping(value)) {
		yaml_error(f, value, "function %s: expected role and "
		    "patterns", name);
		return;
	}
	yaml_check_keys(f, value, function_keys);
	role = yaml_string_required(f, value, "role");
	if (role != NULL && (fn->role = rules_role(ld->rules, role)) == NULL)
		yaml_error(f, yaml_at(value, "role"), "function %s: unknown "
		    "role \"%s\"", name, role);
	list = yaml_sequence(f, value, "patterns");
	while (list && (item = fy_node_sequence_iterate(list, &iter))) {
		const char *source = yaml_scalar(f, item, "pattern");
		struct pattern *pat;

		if (source == NULL)
			continue;
		pat = g_new0(struct pattern, 1);
		loader_pattern(ld, item, source, 0, pat);
		g_ptr_array_add(fn->patterns, pat);
	}
}

void
load_functions(struct loader *ld)
{
	const char *dflt = yaml_string(ld->file, ld->file->root,
	    "default_function", NULL);

	each_entry(ld, "functions", load_function);
	if (dflt == NULL) {
		if (ld->rules->functions->len > 0)
			yaml_error(ld->file, ld->file->root, "functions "
			    "need a default_function");
		return;
	}
	for (guint i = 0; i < ld->rules->functions->len; i++) {
		const struct function *fn = ld->rules->functions->pdata[i];
		if (strcmp(fn->name, dflt) == 0)
			ld->rules->default_function = fn;
	}
	if (ld->rules->default_function == NULL)
		yaml_error(ld->file, yaml_at(ld->file->root,
		    "default_function"), "default_function: unknown "
		    "function \"%s\"", dflt);
}

/* A chain step: "ROLE", "function", or "each: ROLE" (one at a time). */
static void
load_chain_step(struct loader *ld, struct chain *chain,
    struct fy_node *item)
{
	struct yaml_file *f = ld->file;
	struct chain_step step = { NULL, -1 };
	gboolean each = fy_node_is_mapping(item);
	const char *name = each ? yaml_string_required(f, item, "each") :
	    yaml_scalar(f, item, "chain step");

	if (name == NULL)
		return;
	if (!each && strcmp(name, "function") == 0) {
		if (ld->rules->functions->len == 0)
			yaml_error(f, item, "chain %s: \"function\" needs a "
			    "functions section", chain->name);
		g_array_append_val(chain->steps, step);
		return;
	}
	step.role = rules_role(ld->rules, name);
	if (step.role == NULL) {
		yaml_error(f, item, "chain %s: unknown role \"%s\"",
		    chain->name, name);
		return;
	}
	if (!each) {
		g_array_append_val(chain->steps, step);
		return;
	}
	for (int i = 0; step.role->addresses[i] != NULL; i++) {
		step.member = i;
		g_array_append_val(chain->steps, step);
	}
}

static void
load_chain(struct loader *ld, const char *name, struct fy_node *value)
{
	struct chain *chain = g_new0(struct chain, 1);
	struct fy_node *item;
	void *iter = NULL;

	chain->name = g_strdup(name);
	chain->steps = g_array_new(FALSE, FALSE, sizeof(struct chain_step));
	g_ptr_array_add(ld->rules->chains, chain);
	if (value == NULL || !fy_node_is_sequence(value)) {
		yaml_error(ld->file, value, "chain %s: expected a list of "
		    "roles", name);
		return;
	}
	while ((item = fy_node_sequence_iterate(value, &iter)))
		load_chain_step(ld, chain, item);
	if (chain->steps->len == 0)
		yaml_error(ld->file, value, "chain %s: no one in it", name);
}

void
load_chains(struct loader *ld)
{
	each_entry(ld, "chains", load_chain);
}

static struct state *
state_new(struct loader *ld, const char *name, struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	struct state *st = g_new0(struct state, 1);
	const char *clock;
	char *owner = g_strdup_printf("state %s", name);

	st->name = g_strdup(name);
	st->line = yaml_line(map);
	if (map == NULL || fy_node_is_scalar(map)) {
		/* "closed:" with nothing after it: a plain state. */
		g_free(owner);
		return st;
	}
	if (!fy_node_is_mapping(map)) {
		yaml_error(f, map, "%s: expected a mapping of keys", owner);
		g_free(owner);
		return st;
	}
	yaml_check_keys(f, map, state_keys);
	st->final = yaml_flag(f, map, "final", FALSE);
	st->responded = yaml_flag(f, map, "responded", FALSE);
	clock = yaml_string(f, map, "clock", "running");
	st->paused = strcmp(clock, "paused") == 0;
	if (!st->paused && strcmp(clock, "running") != 0)
		yaml_error(f, yaml_at(map, "clock"), "%s: clock: expected "
		    "paused or running, got \"%s\"", owner, clock);
	load_duration(ld, map, "deadline", owner, &st->deadline);
	load_duration(ld, map, "warning", owner, &st->warning);
	if ((st->warning.days || st->warning.seconds) &&
	    !(st->deadline.days || st->deadline.seconds))
		yaml_error(f, yaml_at(map, "warning"), "%s: a warning needs "
		    "a deadline", owner);
	if (st->final && (st->deadline.days || st->deadline.seconds))
		yaml_error(f, yaml_at(map, "deadline"), "%s: a final state "
		    "has no deadline", owner);
	g_free(owner);
	return st;
}

static void
load_states(struct loader *ld, struct procedure *proc, struct fy_node *map)
{
	struct fy_node_pair *pair;
	void *iter = NULL;

	if (map == NULL) {
		yaml_error(ld->file, NULL, "procedure %s: missing states",
		    proc->name);
		return;
	}
	while ((pair = fy_node_mapping_iterate(map, &iter))) {
		const char *name = yaml_scalar(ld->file,
		    fy_node_pair_key(pair), "state name");

		if (name != NULL)
			g_ptr_array_add(proc->states, state_new(ld, name,
			    fy_node_pair_value(pair)));
	}
}

/* In the order of enum trigger and enum condition. */
static const char *const trigger_words[] = { "opened", "message",
	"command", "deadline", "warning", NULL };
static const char *const condition_words[] = { "always", "tickets",
	"no-tickets", "chain-next", "chain-end", NULL };

const char *
trigger_word(enum trigger on)
{
	return trigger_words[on];
}

const char *
condition_word(enum condition when)
{
	return condition_words[when];
}
static const char *const move_words[] = { "no", "next", "first", NULL };

/* Index of WORD in WORDS, or -1 (reported at NODE) if not there. */
static int
word_index(struct loader *ld, struct fy_node *node, const char *const *words,
    const char *word, const char *what)
{
	for (int i = 0; words[i] != NULL; i++)
		if (strcmp(words[i], word) == 0)
			return i;
	yaml_error(ld->file, node, "%s: unknown word \"%s\"", what, word);
	return -1;
}

static gboolean
is_command_word(const struct rules *rules, const char *word)
{
	for (char **w = rules->command_words; w && *w; w++)
		if (g_ascii_strcasecmp(*w, word) == 0)
			return TRUE;
	return FALSE;
}

static void
send_free(gpointer data)
{
	struct send *s = data;

	g_free(s->to);
	g_free(s->template_name);
	g_free(s);
}

/* send: [{template: NAME, to: WHO or [WHO...]}, ...] */
static void
load_sends(struct loader *ld, struct transition *t, struct fy_node *list)
{
	struct yaml_file *f = ld->file;
	struct fy_node *item;
	void *iter = NULL;

	while (list && (item = fy_node_sequence_iterate(list, &iter))) {
		const char *name;
		char **to;

		if (!fy_node_is_mapping(item)) {
			yaml_error(f, item, "send: expected template and to");
			continue;
		}
		yaml_check_keys(f, item, send_keys);
		name = yaml_string_required(f, item, "template");
		to = yaml_words(f, item, "to");
		if (to == NULL)
			yaml_error(f, item, "send: missing \"to\"");
		for (char **w = to; name && w && *w; w++) {
			struct send *s = g_new0(struct send, 1);

			s->to = g_strdup(*w);
			s->template_name = g_strdup(name);
			s->template = loader_template(ld, yaml_at(item,
			    "template"), name);
			g_ptr_array_add(t->sends, s);
		}
		g_strfreev(to);
	}
}

static void
load_transition_words(struct loader *ld, struct transition *t,
    struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	const char *on = yaml_string(f, map, "on", NULL);
	const char *command = yaml_string(f, map, "command", NULL);
	const char *when = yaml_string(f, map, "if", "always");
	const char *move = yaml_string(f, map, "escalate", "no");
	const char *owner = yaml_string(f, map, "owner", NULL);
	int i;

	if (command != NULL && on != NULL && strcmp(on, "command") != 0)
		yaml_error(f, map, "transition: \"on: %s\" and a command "
		    "exclude each other", on);
	if (command != NULL) {
		t->on = TRIGGER_COMMAND;
		t->command = g_ascii_strup(command, -1);
		if (!is_command_word(ld->rules, command))
			yaml_error(f, yaml_at(map, "command"), "transition: "
			    "\"%s\" is not in the commands list", command);
	} else if (on == NULL || strcmp(on, "command") == 0) {
		yaml_error(f, map, "transition: needs \"on\" (opened, "
		    "message, deadline, warning) or \"command\"");
	} else if ((i = word_index(ld, yaml_at(map, "on"), trigger_words, on,
	    "on")) >= 0) {
		t->on = (enum trigger)i;
	}
	if ((i = word_index(ld, yaml_at(map, "if"), condition_words, when,
	    "if")) >= 0)
		t->when = (enum condition)i;
	if ((i = word_index(ld, yaml_at(map, "escalate"), move_words, move,
	    "escalate")) >= 0)
		t->escalate = (enum chain_move)i;
	if (owner != NULL && strcmp(owner, "sender") != 0)
		yaml_error(f, yaml_at(map, "owner"), "owner: only \"sender\" "
		    "can be made the owner");
	t->take_ownership = owner != NULL;
}

static struct transition *
transition_new(struct loader *ld, struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	struct transition *t = g_new0(struct transition, 1);
	const char *s;

	t->line = yaml_line(map);
	t->sends = g_ptr_array_new_with_free_func(send_free);
	yaml_check_keys(f, map, transition_keys);
	load_transition_words(ld, t, map);
	t->from = yaml_words(f, map, "from");
	t->by = yaml_words(f, map, "by");
	if ((s = yaml_string(f, map, "to", NULL)) != NULL)
		t->to = g_strdup(s);
	if ((s = yaml_string(f, map, "remember", NULL)) != NULL)
		t->remember = g_strdup(s);
	if ((s = yaml_string(f, map, "open", NULL)) != NULL)
		t->open = g_strdup(s);
	load_sends(ld, t, yaml_sequence(f, map, "send"));
	if (t->on == TRIGGER_OPENED && t->from != NULL)
		yaml_error(f, yaml_at(map, "from"), "transition: \"on: "
		    "opened\" has no state to come from");
	if (t->on == TRIGGER_OPENED && t->to == NULL)
		yaml_error(f, map, "transition: \"on: opened\" needs \"to\"");
	return t;
}

static void
load_transitions(struct loader *ld, struct procedure *proc,
    struct fy_node *list)
{
	struct fy_node *item;
	void *iter = NULL;

	if (list == NULL) {
		yaml_error(ld->file, NULL, "procedure %s: missing "
		    "transitions", proc->name);
		return;
	}
	while ((item = fy_node_sequence_iterate(list, &iter))) {
		if (!fy_node_is_mapping(item)) {
			yaml_error(ld->file, item, "transitions: expected "
			    "a mapping of keys");
			continue;
		}
		g_ptr_array_add(proc->transitions, transition_new(ld, item));
	}
}

static void
load_reopen(struct loader *ld, struct procedure *proc, struct fy_node *map)
{
	const char *to;

	if (map == NULL)
		return;
	yaml_check_keys(ld->file, map, reopen_keys);
	proc->reopen_days = (int)yaml_integer(ld->file, map, "within_days",
	    0, 0, 3650);
	to = yaml_string_required(ld->file, map, "to");
	proc->reopen_to = to ? g_strdup(to) : NULL;
}

void
load_procedure_flow(struct loader *ld, struct procedure *proc,
    struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	const char *chain = yaml_string(f, map, "chain", NULL);

	proc->states = g_ptr_array_new();
	proc->transitions = g_ptr_array_new();
	for (guint i = 0; chain && i < ld->rules->chains->len; i++) {
		const struct chain *c = ld->rules->chains->pdata[i];
		if (strcmp(c->name, chain) == 0)
			proc->chain = c;
	}
	if (chain != NULL && proc->chain == NULL)
		yaml_error(f, yaml_at(map, "chain"), "procedure %s: unknown "
		    "chain \"%s\"", proc->name, chain);
	load_states(ld, proc, yaml_mapping(f, map, "states"));
	load_transitions(ld, proc, yaml_sequence(f, map, "transitions"));
	load_reopen(ld, proc, yaml_mapping(f, map, "reopen"));
}

static void
warn(struct loader *ld, int line, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Worth a look, but not wrong: "check" shows it, loading goes on. */
static void
warn(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_ptr_array_add(ld->rules->warnings, line > 0 ?
	    g_strdup_printf("%s:%d: warning: %s", ld->file->path, line, text) :
	    g_strdup_printf("%s: warning: %s", ld->file->path, text));
	g_free(text);
}

static gboolean
is_remembered(const struct procedure *proc, const char *name)
{
	for (guint i = 0; i < proc->transitions->len; i++) {
		const struct transition *t = proc->transitions->pdata[i];
		if (t->remember != NULL && strcmp(t->remember, name) == 0)
			return TRUE;
	}
	return FALSE;
}

static void
check_state_name(struct loader *ld, const struct procedure *proc,
    int line, const char *name)
{
	if (procedure_state(proc, name) == NULL)
		g_ptr_array_add(ld->file->errors, g_strdup_printf("%s:%d: "
		    "procedure %s: unknown state \"%s\"", ld->file->path,
		    line, proc->name, name));
}

static void
error_at(struct loader *ld, int line, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
error_at(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	g_ptr_array_add(ld->file->errors, g_strdup_printf("%s:%d: %s",
	    ld->file->path, line, text));
	g_free(text);
}

/* Every name a transition uses must stand for something. */
static void
check_transition(struct loader *ld, const struct procedure *proc,
    const struct transition *t)
{
	const struct rules *r = ld->rules;

	for (char **s = t->from; s && *s; s++)
		check_state_name(ld, proc, t->line, *s);
	if (t->to != NULL)
		check_state_name(ld, proc, t->line, t->to);
	for (char **w = t->by; w && *w; w++)
		if (rules_role(r, *w) == NULL && !in_list(groups, *w) &&
		    (!in_list(parties, *w) || strcmp(*w, "sender") == 0))
			error_at(ld, t->line, "by: unknown role \"%s\"", *w);
	for (guint i = 0; i < t->sends->len; i++) {
		const struct send *s = t->sends->pdata[i];
		if (rules_role(r, s->to) == NULL && !in_list(parties, s->to) &&
		    !is_remembered(proc, s->to))
			error_at(ld, t->line, "send: unknown role or contact "
			    "\"%s\"", s->to);
	}
	if (t->open != NULL && rules_procedure(r, t->open) == NULL)
		error_at(ld, t->line, "open: unknown procedure \"%s\"",
		    t->open);
	if ((t->escalate != CHAIN_STAY || t->when == IF_CHAIN_NEXT ||
	    t->when == IF_CHAIN_END) && proc->chain == NULL)
		error_at(ld, t->line, "procedure %s has no chain to escalate "
		    "on", proc->name);
	if (t->remember != NULL && t->on != TRIGGER_COMMAND)
		error_at(ld, t->line, "remember: only a command's text can "
		    "name a contact");
	if (t->remember != NULL && (rules_role(r, t->remember) ||
	    in_list(parties, t->remember)))
		error_at(ld, t->line, "remember: \"%s\" is already a role",
		    t->remember);
}

gboolean
transition_leaves(const struct transition *t, const struct state *st)
{
	if (t->on == TRIGGER_OPENED)
		return FALSE;
	if (t->from == NULL)
		return st == NULL || !st->final;
	for (char **s = t->from; st != NULL && *s; s++)
		if (strcmp(*s, st->name) == 0)
			return TRUE;
	return FALSE;
}

/* States reachable from the opening transitions. */
static GHashTable *
reachable_states(const struct procedure *proc)
{
	GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
	gboolean grew = TRUE;

	for (guint i = 0; i < proc->transitions->len; i++) {
		const struct transition *t = proc->transitions->pdata[i];
		if (t->on == TRIGGER_OPENED && t->to != NULL)
			g_hash_table_add(seen, t->to);
	}
	if (proc->reopen_to != NULL)
		g_hash_table_add(seen, proc->reopen_to);
	while (grew) {
		grew = FALSE;
		for (guint i = 0; i < proc->states->len; i++) {
			const struct state *st = proc->states->pdata[i];

			if (!g_hash_table_contains(seen, st->name))
				continue;
			for (guint j = 0; j < proc->transitions->len; j++) {
				const struct transition *t =
				    proc->transitions->pdata[j];
				if (t->to && transition_leaves(t, st) &&
				    g_hash_table_add(seen, t->to))
					grew = TRUE;
			}
		}
	}
	return seen;
}

/* States from which some final state can be reached. */
static GHashTable *
states_with_an_end(const struct procedure *proc)
{
	GHashTable *ends = g_hash_table_new(g_str_hash, g_str_equal);
	gboolean grew = TRUE;

	while (grew) {
		grew = FALSE;
		for (guint i = 0; i < proc->states->len; i++) {
			const struct state *st = proc->states->pdata[i];

			if (g_hash_table_contains(ends, st->name))
				continue;
			if (st->final) {
				grew = g_hash_table_add(ends, st->name);
				continue;
			}
			for (guint j = 0; j < proc->transitions->len; j++) {
				const struct transition *t =
				    proc->transitions->pdata[j];
				if (t->to && transition_leaves(t, st) &&
				    g_hash_table_contains(ends, t->to)) {
					grew = g_hash_table_add(ends,
					    st->name);
					break;
				}
			}
		}
	}
	return ends;
}

static gboolean
has_trigger_from(const struct procedure *proc, const struct state *st,
    enum trigger on)
{
	for (guint j = 0; j < proc->transitions->len; j++) {
		const struct transition *t = proc->transitions->pdata[j];
		if (t->on == on && transition_leaves(t, st))
			return TRUE;
	}
	return FALSE;
}

static void
check_graph(struct loader *ld, const struct procedure *proc)
{
	GHashTable *reached = reachable_states(proc);
	GHashTable *ends = states_with_an_end(proc);

	for (guint i = 0; i < proc->states->len; i++) {
		const struct state *st = proc->states->pdata[i];

		if (!g_hash_table_contains(reached, st->name))
			warn(ld, st->line, "procedure %s: state %s cannot "
			    "be reached", proc->name, st->name);
		else if (!g_hash_table_contains(ends, st->name))
			warn(ld, st->line, "procedure %s: no final state can "
			    "be reached from state %s", proc->name,
			    st->name);
		if ((st->deadline.days || st->deadline.seconds) &&
		    !has_trigger_from(proc, st, TRIGGER_DEADLINE))
			warn(ld, st->line, "procedure %s: state %s has a "
			    "deadline but no transition on deadline",
			    proc->name, st->name);
		if ((st->warning.days || st->warning.seconds) &&
		    !has_trigger_from(proc, st, TRIGGER_WARNING))
			warn(ld, st->line, "procedure %s: state %s has a "
			    "warning but no transition on warning",
			    proc->name, st->name);
	}
	g_hash_table_unref(reached);
	g_hash_table_unref(ends);
}

void
check_procedures(struct loader *ld)
{
	for (guint i = 0; i < ld->rules->procedures->len; i++) {
		const struct procedure *proc = ld->rules->procedures->pdata[i];
		gboolean opens = FALSE;

		if (proc->states == NULL)
			continue;
		for (guint j = 0; j < proc->transitions->len; j++) {
			const struct transition *t =
			    proc->transitions->pdata[j];
			check_transition(ld, proc, t);
			opens |= t->on == TRIGGER_OPENED;
		}
		if (!opens)
			error_at(ld, proc->case_id_line, "procedure %s: no "
			    "transition \"on: opened\" to start a case in",
			    proc->name);
		if (proc->reopen_to != NULL)
			check_state_name(ld, proc, proc->case_id_line,
			    proc->reopen_to);
		if (proc->chain != NULL && proc->calendar == NULL)
			error_at(ld, proc->case_id_line, "procedure %s: "
			    "needs a calendar", proc->name);
		for (guint j = 0; j < proc->states->len; j++) {
			const struct state *st = proc->states->pdata[j];
			if ((st->deadline.days || st->deadline.seconds) &&
			    proc->calendar == NULL)
				error_at(ld, st->line, "procedure %s: a "
				    "deadline needs a calendar", proc->name);
		}
		/* Only a graph whose names all resolve is worth walking. */
		if (ld->file->errors->len == 0)
			check_graph(ld, proc);
	}
}

const struct role *
rules_role(const struct rules *rules, const char *name)
{
	for (guint i = 0; rules->roles && i < rules->roles->len; i++) {
		const struct role *role = rules->roles->pdata[i];
		if (strcmp(role->name, name) == 0)
			return role;
	}
	return NULL;
}

gboolean
address_in(char **list, const char *address)
{
	for (; list != NULL && address != NULL && *list; list++)
		if (g_ascii_strcasecmp(*list, address) == 0)
			return TRUE;
	return FALSE;
}

gboolean
rules_is_staff(const struct rules *rules, const char *address)
{
	for (guint i = 0; i < rules->roles->len; i++)
		if (address_in(((struct role *)rules->roles->pdata[i])->
		    addresses, address))
			return TRUE;
	return FALSE;
}

const struct state *
procedure_state(const struct procedure *proc, const char *name)
{
	for (guint i = 0; proc->states && i < proc->states->len; i++) {
		const struct state *st = proc->states->pdata[i];
		if (strcmp(st->name, name) == 0)
			return st;
	}
	return NULL;
}

const struct function *
rules_function_for(const struct rules *rules, const char *subject,
    const char *body)
{
	const char *texts[] = { subject ? subject : "", body ? body : "" };
	size_t start, end;

	for (guint i = 0; i < rules->functions->len; i++) {
		const struct function *fn = rules->functions->pdata[i];

		/* A budget overrun counts as no match: the default holds. */
		for (guint j = 0; j < fn->patterns->len; j++)
			for (int t = 0; t < 2; t++)
				if (pattern_find(rules, fn->patterns->pdata[j],
				    texts[t], strlen(texts[t]), 0, 0, &start,
				    &end, NULL) == 1)
					return fn;
	}
	return rules->default_function;
}

static void
transition_free(gpointer data)
{
	struct transition *t = data;

	g_free(t->command);
	g_strfreev(t->from);
	g_strfreev(t->by);
	g_free(t->to);
	g_free(t->remember);
	g_free(t->open);
	g_ptr_array_unref(t->sends);
	g_free(t);
}

static void
state_free(gpointer data)
{
	struct state *st = data;

	g_free(st->name);
	g_free(st);
}

void
procedure_flow_free(struct procedure *proc)
{
	if (proc->states != NULL) {
		g_ptr_array_set_free_func(proc->states, state_free);
		g_ptr_array_unref(proc->states);
	}
	if (proc->transitions != NULL) {
		g_ptr_array_set_free_func(proc->transitions, transition_free);
		g_ptr_array_unref(proc->transitions);
	}
	g_free(proc->reply_to);
	g_free(proc->reopen_to);
}

void
roles_free(struct rules *rules)
{
	for (guint i = 0; rules->roles && i < rules->roles->len; i++) {
		struct role *role = rules->roles->pdata[i];
		g_free(role->name);
		g_strfreev(role->addresses);
		g_strfreev(role->logins);
		g_free(role);
	}
	for (guint i = 0; rules->functions && i < rules->functions->len;
	    i++) {
		struct function *fn = rules->functions->pdata[i];
		g_free(fn->name);
		g_ptr_array_unref(fn->patterns);
		g_free(fn);
	}
	for (guint i = 0; rules->chains && i < rules->chains->len; i++) {
		struct chain *c = rules->chains->pdata[i];
		g_free(c->name);
		g_array_unref(c->steps);
		g_free(c);
	}
	if (rules->roles != NULL)
		g_ptr_array_unref(rules->roles);
	if (rules->functions != NULL)
		g_ptr_array_unref(rules->functions);
	if (rules->chains != NULL)
		g_ptr_array_unref(rules->chains);
}
