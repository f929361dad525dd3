/*
 * rules.c: loading and checking a rules file.
 *
 * The file is read in sections, each checked for unknown keys, values of
 * the wrong kind and references to things not defined (a mailbox naming
 * an unknown procedure, a procedure an unknown calendar or template).
 * Every problem is collected with its line; only a file with none is
 * turned into rules. Patterns are compiled once here, with JIT where the
 * platform has it, so matching a message compiles nothing.
 */
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/log.h"
#include "common/yaml.h"
#include "rules/loader.h"
#include "rules/prefilter.h"

static const char *const top_keys[] = { "operator", "mailboxes",
	"calendars", "roles", "functions", "default_function", "chains",
	"procedures", "tickets", "reply_prefixes", "gateway_tags",
	"commands", "refusal", "authentication", "limits", NULL };
static const char *const authentication_keys[] = {
	"trusted_authserv_ids", "hmac_key_file", NULL };
static const char *const operator_keys[] = { "domain", "sender",
	"sender_name", "internal_domains", NULL };
static const char *const calendar_keys[] = { "timezone", "working_days",
	"working_hours", "holidays", "holidays_file", NULL };
static const char *const procedure_keys[] = { "case_id", "tag",
	"calendar", "chain", "reopen", "states", "transitions", NULL };
static const char *const mailbox_keys[] = { "address", "procedure", NULL };
static const char *const ticket_keys[] = { "pattern", NULL };
static const char *const limit_keys[] = { "acknowledgements",
	"acknowledgement_window", "per_case", "per_case_window",
	"subject_scan", "tickets", NULL };

void
loader_pattern(struct loader *ld, struct fy_node *node, const char *source,
    uint32_t options, struct pattern *pat)
{
	int code;
	PCRE2_SIZE offset;
	PCRE2_UCHAR message[256];

	pat->source = g_strdup(source);
	pat->file = g_strdup(ld->file->path);
	pat->line = yaml_line(node);
	pat->code = pcre2_compile((PCRE2_SPTR)source, PCRE2_ZERO_TERMINATED,
	    options | PCRE2_UTF | PCRE2_UCP, &code, &offset, NULL);
	if (pat->code == NULL) {
		pcre2_get_error_message(code, message, sizeof message);
		yaml_error(ld->file, node, "pattern \"%s\": %s at offset %zu",
		    source, (char *)message, (size_t)offset);
		return;
	}
	/* Without JIT (some platforms, or ESCALATOR_NO_JIT set so that
	 * valgrind is not misled by JIT code) the interpreter is used. */
	if (g_getenv("ESCALATOR_NO_JIT") != NULL)
		return;
	if (pcre2_jit_compile(pat->code, PCRE2_JIT_COMPLETE) != 0)
		log_debug("rules: %s:%d: no JIT for pattern", pat->file,
		    pat->line);
}

static void
pattern_clear(struct pattern *pat)
{
	g_free(pat->source);
	g_free(pat->file);
	pcre2_code_free(pat->code);
	memset(pat, 0, sizeof *pat);
}

void
pattern_free(gpointer data)
{
	pattern_clear(data);
	g_free(data);
}

/* WORD with every ASCII punctuation mark escaped, for an alternation. */
static void
append_literal(GString *out, const char *word)
{
	for (const char *p = word; *p != '\0'; p++) {
		if (g_ascii_ispunct(*p) || *p == ' ')
			g_string_append_c(out, '\\');
		g_string_append_c(out, *p);
	}
}

/* The words of list KEY as "a|b|c", reporting non-scalar items. */
static char *
word_alternation(struct loader *ld, struct fy_node *list, GPtrArray *keep)
{
	GString *alt = g_string_new(NULL);
	struct fy_node *item;
	void *iter = NULL;

	while ((item = fy_node_sequence_iterate(list, &iter)) != NULL) {
		const char *word = yaml_scalar(ld->file, item, "word");

		if (word == NULL || *word == '\0')
			continue;
		if (alt->len > 0)
			g_string_append_c(alt, '|');
		append_literal(alt, word);
		if (keep != NULL)
			g_ptr_array_add(keep, g_strdup(word));
	}
	return g_string_free(alt, FALSE);
}

static void
load_operator(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *op = yaml_mapping(f, f->root, "operator");
	struct fy_node *domains, *item;
	GPtrArray *list = g_ptr_array_new();
	void *iter = NULL;

	if (op == NULL) {
		yaml_error(f, f->root, "missing section \"operator\"");
		g_ptr_array_add(list, NULL);
		ld->rules->internal_domains = (char **)g_ptr_array_free(list,
		    FALSE);
		return;
	}
	yaml_check_keys(f, op, operator_keys);
	ld->rules->domain = g_strdup(yaml_string_required(f, op, "domain"));
	ld->rules->sender = g_ascii_strdown(yaml_string(f, op, "sender",
	    ""), -1);
	if (*ld->rules->sender == '\0' || !strchr(ld->rules->sender, '@'))
		yaml_error(f, yaml_at(op, "sender"),
		    "operator: sender must be an address");
	ld->rules->sender_name = g_strdup(yaml_string(f, op, "sender_name",
	    NULL));

	domains = yaml_sequence(f, op, "internal_domains");
	while (domains && (item = fy_node_sequence_iterate(domains, &iter))) {
		const char *d = yaml_scalar(f, item, "internal_domains");
		if (d != NULL)
			g_ptr_array_add(list, g_ascii_strdown(d, -1));
	}
	g_ptr_array_add(list, NULL);
	ld->rules->internal_domains = (char **)g_ptr_array_free(list, FALSE);
}

static void
load_calendar_days(struct loader *ld, struct calendar *cal,
    struct fy_node *map)
{
	struct fy_node *days = yaml_sequence(ld->file, map, "working_days");
	struct fy_node *item;
	void *iter = NULL;

	if (days == NULL) {
		cal->working_days = 0x1f;	/* Monday to Friday */
		return;
	}
	while ((item = fy_node_sequence_iterate(days, &iter)) != NULL) {
		const char *word = yaml_scalar(ld->file, item, "working_days");
		int day = word ? calendar_day_parse(word) : -1;

		if (day < 0 && word != NULL)
			yaml_error(ld->file, item, "working_days: expected "
			    "mon, tue, wed, thu, fri, sat or sun, got \"%s\"",
			    word);
		else if (day >= 0)
			cal->working_days |= (guint8)(1u << day);
	}
	if (cal->working_days == 0)
		yaml_error(ld->file, days, "working_days: no working day");
}

/*
 * Holidays from an iCalendar file (a relative path is taken from the
 * rules file's folder), recurring ones expanded from last year to ten
 * years ahead: rules are reloaded far more often than that.
 */
static void
load_calendar_ics(struct loader *ld, struct calendar *cal,
    struct fy_node *map)
{
	const char *file = yaml_string(ld->file, map, "holidays_file", NULL);
	GDateTime *now = g_date_time_new_now_utc();
	int year = g_date_time_get_year(now);
	char *dir, *path;
	GError *error = NULL;

	g_date_time_unref(now);
	if (file == NULL)
		return;
	dir = g_path_get_dirname(ld->file->path);
	path = g_path_is_absolute(file) ? g_strdup(file) :
	    g_build_filename(dir, file, NULL);
	if (calendar_load_ics(cal, path, year - 1, year + 10, &error) < 0) {
		yaml_error(ld->file, yaml_at(map, "holidays_file"),
		    "calendar %s: holidays_file: %s", cal->name,
		    error->message);
		g_error_free(error);
	}
	g_free(path);
	g_free(dir);
}

static void
load_calendar(struct loader *ld, const char *name, struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	const char *tz = yaml_string(f, map, "timezone", "UTC");
	const char *hours = yaml_string(f, map, "working_hours",
	    "00:00-24:00");
	struct fy_node *holidays = yaml_sequence(f, map, "holidays");
	struct fy_node *item;
	struct calendar *cal;
	void *iter = NULL;

	yaml_check_keys(f, map, calendar_keys);
	cal = calendar_new(name, tz);
	if (cal->tz == NULL)
		yaml_error(f, yaml_at(map, "timezone"),
		    "calendar %s: unknown time zone \"%s\"",
		    name, tz);
	if (calendar_set_hours(cal, hours) < 0)
		yaml_error(f, yaml_at(map, "working_hours"),
		    "calendar %s: working_hours: expected "
		    "HH:MM-HH:MM, got \"%s\"", name, hours);
	load_calendar_days(ld, cal, map);
	while (holidays && (item = fy_node_sequence_iterate(holidays,
	    &iter))) {
		const char *date = yaml_scalar(f, item, "holidays");

		if (date != NULL && calendar_add_holiday(cal, date) < 0)
			yaml_error(f, item, "holidays: expected YYYY-MM-DD, "
			    "got \"%s\"", date);
	}
	load_calendar_ics(ld, cal, map);
	g_ptr_array_add(ld->rules->calendars, cal);
}

static void
load_calendars(struct loader *ld)
{
	struct fy_node *map = yaml_mapping(ld->file, ld->file->root,
	    "calendars");
	struct fy_node_pair *pair;
	void *iter = NULL;

	while (map && (pair = fy_node_mapping_iterate(map, &iter))) {
		const char *name = yaml_scalar(ld->file,
		    fy_node_pair_key(pair), "calendar name");
		struct fy_node *value = fy_node_pair_value(pair);

		if (name == NULL)
			continue;
		if (value == NULL || !fy_node_is_mapping(value)) {
			yaml_error(ld->file, fy_node_pair_key(pair),
			    "calendar %s: expected a mapping of keys", name);
			continue;
		}
		load_calendar(ld, name, value);
	}
}

const struct calendar *
loader_calendar(const struct rules *rules, const char *name)
{
	for (guint i = 0; i < rules->calendars->len; i++) {
		const struct calendar *cal = rules->calendars->pdata[i];
		if (strcmp(cal->name, name) == 0)
			return cal;
	}
	return NULL;
}

struct template *
loader_template(struct loader *ld, struct fy_node *at, const char *name)
{
	char *file, *path;
	GError *error = NULL;
	struct template *tpl;

	if (g_hash_table_lookup_extended(ld->rules->templates, name, NULL,
	    (gpointer *)&tpl))
		return tpl;
	file = g_strconcat(name, ".txt", NULL);
	path = g_build_filename(ld->template_dir, file, NULL);
	tpl = template_load(path, &error);
	if (tpl == NULL) {
		yaml_error(ld->file, at, "template %s: %s", name,
		    error->message);
		g_error_free(error);
	}
	/* A bad one is kept as NULL, so it is reported once. */
	g_hash_table_insert(ld->rules->templates, g_strdup(name), tpl);
	g_free(path);
	g_free(file);
	return tpl;
}

/* A case id format holds {seq} or {seq:WIDTH}, and may hold {year}. */
static gboolean
case_id_format_valid(const char *format)
{
	return strstr(format, "{seq}") != NULL ||
	    strstr(format, "{seq:") != NULL;
}

static void
load_procedure(struct loader *ld, const char *name, struct fy_node *map)
{
	struct yaml_file *f = ld->file;
	struct procedure *proc = g_new0(struct procedure, 1);
	const char *format = yaml_string_required(f, map, "case_id");
	const char *tag = yaml_string_required(f, map, "tag");
	const char *calendar = yaml_string(f, map, "calendar", NULL);

	yaml_check_keys(f, map, procedure_keys);
	proc->name = g_strdup(name);
	proc->case_id = g_strdup(format ? format : "");
	proc->case_id_line = yaml_line(yaml_at(map, "case_id"));
	if (format != NULL && !case_id_format_valid(format))
		yaml_error(f, yaml_at(map, "case_id"),
		    "procedure %s: case_id must contain {seq} "
		    "or {seq:WIDTH}, got \"%s\"", name, format);
	if (tag != NULL)
		loader_pattern(ld, fy_node_mapping_lookup_by_string(map,
		    "tag", FY_NT), tag, PCRE2_CASELESS, &proc->tag);
	if (proc->tag.code != NULL) {
		uint32_t groups = 0;

		pcre2_pattern_info(proc->tag.code, PCRE2_INFO_CAPTURECOUNT,
		    &groups);
		if (groups < 1)
			yaml_error(f, yaml_at(map, "tag"),
			    "procedure %s: tag needs a group "
			    "(...) around the case id", name);
	}
	if (calendar != NULL) {
		proc->calendar = loader_calendar(ld->rules, calendar);
		if (proc->calendar == NULL)
			yaml_error(f, yaml_at(map, "calendar"),
			    "procedure %s: unknown calendar "
			    "\"%s\"", name, calendar);
	}
	g_ptr_array_add(ld->rules->procedures, proc);
	load_procedure_flow(ld, proc, map);
}

static void
load_procedures(struct loader *ld)
{
	struct fy_node *map = yaml_mapping(ld->file, ld->file->root,
	    "procedures");
	struct fy_node_pair *pair;
	void *iter = NULL;

	if (map == NULL)
		yaml_error(ld->file, ld->file->root,
		    "missing section \"procedures\"");
	while (map && (pair = fy_node_mapping_iterate(map, &iter))) {
		const char *name = yaml_scalar(ld->file,
		    fy_node_pair_key(pair), "procedure name");
		struct fy_node *value = fy_node_pair_value(pair);

		if (name == NULL)
			continue;
		if (value == NULL || !fy_node_is_mapping(value)) {
			yaml_error(ld->file, fy_node_pair_key(pair),
			    "procedure %s: expected a mapping of keys", name);
			continue;
		}
		load_procedure(ld, name, value);
	}
}

/* The literal text of a case id format before its first placeholder. */
static char *
case_id_prefix(const char *format)
{
	const char *brace = strchr(format, '{');

	return g_strndup(format, brace ? (gsize)(brace - format) :
	    strlen(format));
}

/*
 * Case ids of two procedures must never collide, or opening a case in
 * one would fail on an id the other already holds. Ids made from
 * different formats cannot collide when neither literal prefix starts
 * the other; that much is required.
 */
static void
check_case_id_prefixes(struct loader *ld)
{
	GPtrArray *procs = ld->rules->procedures;

	for (guint i = 0; i < procs->len; i++)
		for (guint j = i + 1; j < procs->len; j++) {
			const struct procedure *a = procs->pdata[i];
			const struct procedure *b = procs->pdata[j];
			char *pa = case_id_prefix(a->case_id);
			char *pb = case_id_prefix(b->case_id);

			if (g_str_has_prefix(pa, pb) ||
			    g_str_has_prefix(pb, pa))
				g_ptr_array_add(ld->file->errors,
				    g_strdup_printf("%s:%d: procedure %s: "
				    "case_id \"%s\" could make the same ids as "
				    "procedure %s's \"%s\"; give each its own "
				    "prefix", ld->file->path, b->case_id_line,
				    b->name, b->case_id, a->name, a->case_id));
			g_free(pa);
			g_free(pb);
		}
}

static void
load_mailboxes(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *list = yaml_sequence(f, f->root, "mailboxes");
	struct fy_node *item;
	void *iter = NULL;

	if (list == NULL)
		yaml_error(f, f->root, "missing section \"mailboxes\"");
	while (list && (item = fy_node_sequence_iterate(list, &iter))) {
		const char *address, *procedure;
		struct mailbox *mb;

		if (!fy_node_is_mapping(item)) {
			yaml_error(f, item, "mailboxes: expected address "
			    "and procedure");
			continue;
		}
		yaml_check_keys(f, item, mailbox_keys);
		address = yaml_string_required(f, item, "address");
		procedure = yaml_string_required(f, item, "procedure");
		if (address == NULL || procedure == NULL)
			continue;
		if (rules_mailbox(ld->rules, address) != NULL)
			yaml_error(f, yaml_at(item, "address"), "mailbox %s: "
			    "listed twice", address);
		mb = g_new0(struct mailbox, 1);
		mb->address = g_ascii_strdown(address, -1);
		mb->procedure = (struct procedure *)rules_procedure(ld->rules,
		    procedure);
		if (mb->procedure != NULL && mb->procedure->reply_to == NULL)
			mb->procedure->reply_to = g_strdup(mb->address);
		if (mb->procedure == NULL)
			yaml_error(f, yaml_at(item, "procedure"),
			    "mailbox %s: unknown procedure "
			    "\"%s\"", address, procedure);
		g_ptr_array_add(ld->rules->mailboxes, mb);
	}
}

static void
load_tickets(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *list = yaml_sequence(f, f->root, "tickets");
	struct fy_node *item;
	void *iter = NULL;

	while (list && (item = fy_node_sequence_iterate(list, &iter))) {
		struct pattern *pat;
		const char *source;

		if (!fy_node_is_mapping(item)) {
			yaml_error(f, item, "tickets: expected pattern: '...'");
			continue;
		}
		yaml_check_keys(f, item, ticket_keys);
		source = yaml_string_required(f, item, "pattern");
		if (source == NULL)
			continue;
		pat = g_new0(struct pattern, 1);
		loader_pattern(ld, fy_node_mapping_lookup_by_string(item,
		    "pattern", FY_NT), source, 0, pat);
		g_ptr_array_add(ld->rules->tickets, pat);
	}
	ld->rules->ticket_prefilter = prefilter_new(ld->rules->tickets);
}

/*
 * Reply prefixes ("Re:", "AW:", "Re[2]:", "回复：") and gateway tags
 * ("[EXT]") in any number and order at the start of a subject, as one
 * anchored pattern.
 */
static void
load_subject_words(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *prefixes = yaml_sequence(f, f->root, "reply_prefixes");
	struct fy_node *tags = yaml_sequence(f, f->root, "gateway_tags");
	struct fy_node *commands = yaml_sequence(f, f->root, "commands");
	GPtrArray *words = g_ptr_array_new();
	char *p = prefixes ? word_alternation(ld, prefixes, NULL) :
	    g_strdup("Re");
	char *t = tags ? word_alternation(ld, tags, NULL) : g_strdup("");
	char *c = commands ? word_alternation(ld, commands, words) :
	    g_strdup("");
	char *source;

	/* One prefix or tag; the classifier strips them one at a time, so
	 * a subject of thousands of "Re: " costs no backtracking. */
	source = g_strdup_printf("\\s*(?:(?:%s)\\s*(?:\\[\\d+\\]|"
	    "\\(\\d+\\))?\\s*[:\\x{FF1A}]%s%s%s)\\s*", p, *t ? "|\\[(?:" :
	    "", t, *t ? ")\\]" : "");
	loader_pattern(ld, prefixes ? prefixes : f->root, source,
	    PCRE2_CASELESS | PCRE2_ANCHORED, &ld->rules->reply_prefix);
	g_free(source);

	if (*c == '\0')
		yaml_error(f, yaml_at(f->root, "commands"), commands ?
		    "commands: expected at least one command word" :
		    "missing section \"commands\"");
	source = g_strdup_printf("(?<![\\p{L}\\p{N}_])(?:%s)"
	    "(?![\\p{L}\\p{N}_])", *c ? c : "(*FAIL)");
	loader_pattern(ld, commands ? commands : f->root, source,
	    PCRE2_CASELESS, &ld->rules->command);
	g_free(source);

	g_ptr_array_add(words, NULL);
	ld->rules->command_words = (char **)g_ptr_array_free(words, FALSE);
	g_free(p);
	g_free(t);
	g_free(c);
}

static void
load_limits(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *map = yaml_mapping(f, f->root, "limits");
	struct rules *r = ld->rules;

	yaml_check_keys(f, map, limit_keys);
	r->ack_limit = (int)yaml_integer(f, map, "acknowledgements", 5, 0,
	    100000);
	r->ack_window = (int)yaml_integer(f, map, "acknowledgement_window",
	    3600, 1, 30 * 86400);
	r->case_limit = (int)yaml_integer(f, map, "per_case", 3, 1, 100000);
	r->case_window = (int)yaml_integer(f, map, "per_case_window", 3600,
	    1, 30 * 86400);
	r->subject_scan = (int)yaml_integer(f, map, "subject_scan", 998, 78,
	    65536);
	r->ticket_limit = (int)yaml_integer(f, map, "tickets", 50, 1, 10000);
	r->match_context = pcre2_match_context_create(NULL);
	pcre2_set_match_limit(r->match_context, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->match_context, RULES_DEPTH_LIMIT);
}

/* The template that tells a staff member why a command was refused. */
static void
load_refusal(struct loader *ld)
{
	const char *name = yaml_string(ld->file, ld->file->root, "refusal",
	    NULL);

	if (name != NULL)
		ld->rules->refusal = loader_template(ld,
		    yaml_at(ld->file->root, "refusal"), name);
}

/* The HMAC key: a file of at least 16 bytes that only we may read. */
static void
load_hmac_key(struct loader *ld, struct fy_node *map)
{
	const char *file = yaml_string(ld->file, map, "hmac_key_file", NULL);
	char *dir, *path, *key = NULL;
	GError *error = NULL;
	struct stat st;
	gsize len = 0;

	if (file == NULL)
		return;
	dir = g_path_get_dirname(ld->file->path);
	path = g_path_is_absolute(file) ? g_strdup(file) :
	    g_build_filename(dir, file, NULL);
	if (stat(path, &st) == 0 && (st.st_mode & 077) != 0)
		yaml_error(ld->file, yaml_at(map, "hmac_key_file"),
		    "hmac_key_file %s: readable by others (mode %04o); "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 07777));
	else if (!g_file_get_contents(path, &key, &len, &error))
		yaml_error(ld->file, yaml_at(map, "hmac_key_file"),
		    "hmac_key_file: %s", error->message);
	else if (len < 16)
		yaml_error(ld->file, yaml_at(map, "hmac_key_file"),
		    "hmac_key_file %s: want at least 16 bytes of key", path);
	else {
		ld->rules->hmac_key = key;
		ld->rules->hmac_key_len = len;
		key = NULL;
	}
	g_clear_error(&error);
	g_free(key);
	g_free(path);
	g_free(dir);
}

static void
load_authentication(struct loader *ld)
{
	struct yaml_file *f = ld->file;
	struct fy_node *map = yaml_mapping(f, f->root, "authentication");
	struct fy_node *ids, *item;
	GPtrArray *list = g_ptr_array_new();
	void *iter = NULL;

	yaml_check_keys(f, map, authentication_keys);
	ids = map ? yaml_sequence(f, map, "trusted_authserv_ids") : NULL;
	while (ids && (item = fy_node_sequence_iterate(ids, &iter))) {
		const char *id = yaml_scalar(f, item, "authserv-id");
		if (id != NULL)
			g_ptr_array_add(list, g_strdup(id));
	}
	g_ptr_array_add(list, NULL);
	ld->rules->trusted_authserv_ids = (char **)g_ptr_array_free(list,
	    FALSE);
	if (map != NULL)
		load_hmac_key(ld, map);
}

static void
template_unref_cb(gpointer data)
{
	struct template *tpl = data;

	template_free(&tpl);
}

static void
rules_free(struct rules *r)
{
	for (guint i = 0; i < r->procedures->len; i++) {
		struct procedure *p = r->procedures->pdata[i];
		g_free(p->name);
		g_free(p->case_id);
		pattern_clear(&p->tag);
		procedure_flow_free(p);
		g_free(p);
	}
	for (guint i = 0; i < r->mailboxes->len; i++) {
		struct mailbox *m = r->mailboxes->pdata[i];
		g_free(m->address);
		g_free(m);
	}
	for (guint i = 0; i < r->calendars->len; i++) {
		struct calendar *c = r->calendars->pdata[i];
		calendar_free(&c);
	}
	g_ptr_array_unref(r->procedures);
	g_ptr_array_unref(r->mailboxes);
	g_ptr_array_unref(r->calendars);
	prefilter_free(&r->ticket_prefilter);
	g_ptr_array_unref(r->tickets);
	roles_free(r);
	g_hash_table_unref(r->templates);
	g_ptr_array_unref(r->warnings);
	g_strfreev(r->trusted_authserv_ids);
	if (r->hmac_key != NULL)
		memset(r->hmac_key, 0, r->hmac_key_len);
	g_free(r->hmac_key);
	pattern_clear(&r->reply_prefix);
	pattern_clear(&r->command);
	g_strfreev(r->command_words);
	g_strfreev(r->internal_domains);
	pcre2_match_context_free(r->match_context);
	g_free(r->domain);
	g_free(r->sender);
	g_free(r->sender_name);
	g_free(r->path);
	g_free(r);
}

struct rules *
rules_load(const char *path, const char *template_dir, GError **error)
{
	GPtrArray *errors = g_ptr_array_new_with_free_func(g_free);
	struct rules *r = g_new0(struct rules, 1);
	struct loader ld = { NULL, r, template_dir };

	r->path = g_strdup(path);
	r->refs = 1;
	r->procedures = g_ptr_array_new();
	r->mailboxes = g_ptr_array_new();
	r->calendars = g_ptr_array_new();
	r->tickets = g_ptr_array_new_with_free_func(pattern_free);
	r->templates = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
	    template_unref_cb);
	r->warnings = g_ptr_array_new_with_free_func(g_free);

	ld.file = yaml_open(path, NULL, errors);
	if (ld.file->root != NULL) {
		yaml_check_keys(ld.file, ld.file->root, top_keys);
		load_operator(&ld);
		load_calendars(&ld);
		load_roles(&ld);
		load_functions(&ld);
		load_chains(&ld);
		load_subject_words(&ld);
		load_procedures(&ld);
		check_case_id_prefixes(&ld);
		load_mailboxes(&ld);
		load_tickets(&ld);
		load_limits(&ld);
		load_refusal(&ld);
		load_authentication(&ld);
		check_procedures(&ld);
		if (r->mailboxes->len == 0)
			yaml_error(ld.file, NULL, "no watched mailboxes");
	}
	yaml_close(&ld.file);

	if (yaml_errors_report(errors, error) < 0) {
		rules_free(r);
		r = NULL;
	}
	g_ptr_array_unref(errors);
	return r;
}

struct rules *
rules_ref(struct rules *rules)
{
	g_atomic_int_inc(&rules->refs);
	return rules;
}

void
rules_unref(struct rules **rules)
{
	if (*rules != NULL && g_atomic_int_dec_and_test(&(*rules)->refs))
		rules_free(*rules);
	*rules = NULL;
}

const struct mailbox *
rules_mailbox(const struct rules *rules, const char *address)
{
	const char *plus = strchr(address, '+'), *at = strrchr(address, '@');
	char *plain = NULL;
	const struct mailbox *found = NULL;

	/* escalation+esc-2026-000042.TOKEN@ is escalation@ (auth.h). */
	if (plus != NULL && at != NULL && plus < at) {
		plain = g_strdup_printf("%.*s%s", (int)(plus - address),
		    address, at);
		address = plain;
	}
	for (guint i = 0; i < rules->mailboxes->len && !found; i++) {
		const struct mailbox *mb = rules->mailboxes->pdata[i];
		if (g_ascii_strcasecmp(mb->address, address) == 0)
			found = mb;
	}
	g_free(plain);
	return found;
}

const struct procedure *
rules_procedure(const struct rules *rules, const char *name)
{
	for (guint i = 0; i < rules->procedures->len; i++) {
		const struct procedure *p = rules->procedures->pdata[i];
		if (strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

char *
procedure_case_id(const struct procedure *proc, int year, gint64 seq)
{
	GString *id = g_string_new(NULL);
	const char *p = proc->case_id;

	while (*p != '\0') {
		int width = 0;

		if (g_str_has_prefix(p, "{year}")) {
			g_string_append_printf(id, "%04d", year);
			p += strlen("{year}");
		} else if (g_str_has_prefix(p, "{seq}") ||
		    sscanf(p, "{seq:%d}", &width) == 1) {
			g_string_append_printf(id, "%0*" G_GINT64_FORMAT,
			    CLAMP(width, 0, 12), seq);
			p = strchr(p, '}') + 1;
		} else {
			g_string_append_c(id, *p++);
		}
	}
	return g_string_free(id, FALSE);
}

/*
 * Match data for pattern_find(), one per thread and kept: a message runs
 * every ticket pattern over its subject and text, and making and freeing
 * it for each run cost more than many of the runs. Callers want group 0
 * or 1, so two pairs are enough; PCRE2 fills what fits.
 */
static void
match_data_free(gpointer md)
{
	pcre2_match_data_free(md);
}

static GPrivate thread_match_data = G_PRIVATE_INIT(match_data_free);

static pcre2_match_data *
match_data_of_thread(void)
{
	pcre2_match_data *md = g_private_get(&thread_match_data);

	if (md == NULL) {
		md = pcre2_match_data_create(2, NULL);
		g_private_set(&thread_match_data, md);
	}
	return md;
}

int
pattern_find(const struct rules *rules, const struct pattern *pat,
    const char *text, size_t len, size_t offset, int group,
    size_t *start_r, size_t *end_r, GError **error)
{
	pcre2_match_data *md;
	PCRE2_SIZE *ov;
	int rc;

	g_return_val_if_fail(group == 0 || group == 1, -1);
	if (pat->code == NULL || offset > len)
		return 0;
	md = match_data_of_thread();
	/* Text from the parser is valid UTF-8: check it once, not here. */
	rc = pcre2_match(pat->code, (PCRE2_SPTR)text, len, offset,
	    PCRE2_NO_UTF_CHECK, md, rules->match_context);
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (rc < 0) {
		PCRE2_UCHAR message[128];

		pcre2_get_error_message(rc, message, sizeof message);
		g_set_error(error, ESC_ERROR, ESC_ERROR_LIMIT,
		    "%s:%d: pattern: %s", pat->file, pat->line,
		    (char *)message);
		return -1;
	}
	/* 0: more groups than the two pairs hold; both are filled. */
	ov = pcre2_get_ovector_pointer(md);
	if ((rc > 0 && group >= rc) || ov[2 * group] == PCRE2_UNSET)
		group = 0;
	*start_r = ov[2 * group];
	*end_r = ov[2 * group + 1];
	return 1;
}
