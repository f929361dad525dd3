/*
 * classify.c: reading a message against the rules.
 *
 * The subject is examined up to the rules' subject_scan bytes, the body
 * as far as the parser kept it. Reply prefixes in any language are
 * stripped first; the case tag may then stand anywhere in the subject
 * and the command is the first command word after the tag (or before
 * it, if none follows), as a whole word in any case. Commands count
 * only in a subject that tags a case, so "please escalate" in a new
 * complaint is not a command. Ticket numbers come from the subject and
 * the body.
 */
#include <string.h>

#include "common/text.h"
#include "rules/classify.h"
#include "rules/prefilter.h"

static void
warn(struct classification *out, GError *error)
{
	g_ptr_array_add(out->warnings, g_strdup(error->message));
	g_error_free(error);
}

/*
 * The subject without its reply prefixes and gateway tags, stripped one
 * at a time from the start, then cut to the rules' subject_scan bytes
 * on a character boundary.
 */
static char *
strip_prefixes(const struct rules *rules, const char *subject,
    struct classification *out)
{
	size_t len = strlen(subject), offset = 0, start, end;
	GError *error = NULL;
	int rc;

	while ((rc = pattern_find(rules, &rules->reply_prefix, subject, len,
	    offset, 0, &start, &end, &error)) == 1 && end > offset)
		offset = end;
	if (rc < 0)
		warn(out, error);

	subject += offset;
	len -= offset;
	if (len > (size_t)rules->subject_scan) {
		const char *cut = g_utf8_find_prev_char(subject,
		    subject + rules->subject_scan + 1);
		len = cut != NULL ? (size_t)(cut - subject) : 0;
	}
	return g_strndup(subject, len);
}

static void
find_tag(const struct rules *rules, struct classification *out,
    size_t *tag_start, size_t *tag_end)
{
	size_t len = strlen(out->subject);

	for (guint i = 0; i < rules->procedures->len; i++) {
		const struct procedure *proc = rules->procedures->pdata[i];
		size_t start, end, ws, we;
		GError *error = NULL;
		int rc;

		rc = pattern_find(rules, &proc->tag, out->subject, len, 0, 0,
		    &ws, &we, &error);
		if (rc < 0)
			warn(out, error);
		if (rc != 1)
			continue;
		pattern_find(rules, &proc->tag, out->subject, len, 0, 1,
		    &start, &end, NULL);
		out->procedure = proc;
		out->case_ref = g_ascii_strup(out->subject + start,
		    (gssize)(end - start));
		*tag_start = ws;
		*tag_end = we;
		return;
	}
}

static const char *
canonical_command(const struct rules *rules, const char *word, size_t len)
{
	for (char **w = rules->command_words; *w != NULL; w++)
		if (strlen(*w) == len &&
		    g_ascii_strncasecmp(*w, word, len) == 0)
			return *w;
	return NULL;
}

/*
 * A word in capitals right after the tag, alone or before a colon
 * ("[ESC-2026-000042] ESCALTE: ..."), that is not a command word: kept
 * as an unknown command, which staff are told of. Anything else after a
 * tag is ordinary text.
 */
static void
find_unknown_command(struct classification *out, size_t tag_end)
{
	const char *s = out->subject + tag_end;
	const char *word, *end;

	while (*s == ' ' || *s == '\t')
		s++;
	word = s;
	while (g_ascii_isupper(*s) || g_ascii_isdigit(*s) || *s == '-')
		s++;
	end = s;
	while (*s == ' ' || *s == '\t')
		s++;
	if (end - word < 3 || !g_ascii_isupper(*word) ||
	    (*s != ':' && *s != '\0'))
		return;
	out->unknown_command = g_strndup(word, (gsize)(end - word));
	while (*s == ':' || *s == ' ' || *s == '\t')
		s++;
	if (*s != '\0')
		out->command_text = g_strdup(s);
}

/* The first command word after the tag, else the first before it. */
static void
find_command(const struct rules *rules, struct classification *out,
    size_t tag_start, size_t tag_end)
{
	const char *s = out->subject;
	size_t len = strlen(s), start, end;
	GError *error = NULL;
	const char *word;
	int rc;

	rc = pattern_find(rules, &rules->command, s, len, tag_end, 0, &start,
	    &end, &error);
	if (rc == 0)
		rc = pattern_find(rules, &rules->command, s, tag_start, 0, 0,
		    &start, &end, &error);
	if (rc < 0)
		warn(out, error);
	if (rc == 0)
		find_unknown_command(out, tag_end);
	if (rc != 1)
		return;

	word = canonical_command(rules, s + start, end - start);
	out->command = g_strdup(word != NULL ? word : "");
	if (start < tag_end)
		return;		/* before the tag: what follows is the tag */
	while (s[end] == ':' || s[end] == ' ' || s[end] == '\t' ||
	    s[end] == '-')
		end++;
	if (s[end] != '\0')
		out->command_text = g_strdup(s + end);
}

/* FALSE once the rules' limit of tickets per message is reached. */
static gboolean
add_ticket(const struct rules *rules, struct classification *out,
    const char *text, size_t len)
{
	for (guint i = 0; i < out->tickets->len; i++) {
		const char *known = out->tickets->pdata[i];

		if (strlen(known) == len && memcmp(known, text, len) == 0)
			return TRUE;
	}
	if (out->tickets->len >= (guint)rules->ticket_limit) {
		g_ptr_array_add(out->warnings, g_strdup_printf("tickets: more "
		    "than %d in the message, the rest ignored",
		    rules->ticket_limit));
		return FALSE;
	}
	g_ptr_array_add(out->tickets, g_strndup(text, len));
	return TRUE;
}

/* FALSE when the ticket limit stopped the search. */
static gboolean
find_tickets_in(const struct rules *rules, struct classification *out,
    const char *text)
{
	size_t len = strlen(text);
	/* One scan says which patterns can match at all. */
	g_autofree gboolean *may_match = prefilter_candidates(
	    rules->ticket_prefilter, rules->match_context, text, len);

	for (guint i = 0; i < rules->tickets->len; i++) {
		const struct pattern *pat = rules->tickets->pdata[i];
		size_t offset = 0, start, end;
		GError *error = NULL;
		int rc = 0;

		if (may_match != NULL && !may_match[i])
			continue;

		while ((rc = pattern_find(rules, pat, text, len, offset, 1,
		    &start, &end, &error)) == 1) {
			if (end > start && !add_ticket(rules, out,
			    text + start, end - start))
				return FALSE;
			offset = end > offset ? end : offset + 1;
			if (offset > len)
				break;
			/* Do not stop inside a multi-byte character. */
			while (offset < len &&
			    ((guchar)text[offset] & 0xC0) == 0x80)
				offset++;
		}
		if (rc < 0)
			warn(out, error);
	}
	return TRUE;
}

/*
 * RFC 3834, as the parser reads it (message_automatic): delivery reports,
 * the null sender and mailer daemons are bounces; Auto-Submitted and
 * other reports (read receipts) automatic replies; Precedence and
 * List-Id bulk mail.
 */
static void
find_automatic(const struct message *msg, const char *envelope_from,
    struct classification *out)
{
	const char *why = message_automatic(msg, envelope_from);

	out->automatic_why = why;
	if (why == NULL)
		out->automatic = AUTO_NONE;
	else if (strcmp(why, "Auto-Submitted") == 0 ||
	    strcmp(why, "report") == 0)
		out->automatic = AUTO_REPLY;
	else if (strcmp(why, "Precedence") == 0 ||
	    strcmp(why, "List-Id") == 0)
		out->automatic = AUTO_BULK;
	else
		out->automatic = AUTO_BOUNCE;
}

static gboolean
id_is_ours(const struct rules *rules, const char *id)
{
	const char *at = id != NULL ? strrchr(id, '@') : NULL;

	return at != NULL && rules->domain != NULL &&
	    g_ascii_strcasecmp(at + 1, rules->domain) == 0;
}

void
classify_message(const struct rules *rules, const struct message *msg,
    const char *envelope_from, struct classification *out)
{
	size_t tag_start = 0, tag_end = 0;

	memset(out, 0, sizeof *out);
	out->tickets = g_ptr_array_new_with_free_func(g_free);
	out->warnings = g_ptr_array_new_with_free_func(g_free);

	out->subject = strip_prefixes(rules, msg->subject, out);
	find_tag(rules, out, &tag_start, &tag_end);
	if (out->case_ref != NULL)
		find_command(rules, out, tag_start, tag_end);
	if (find_tickets_in(rules, out, out->subject))
		find_tickets_in(rules, out, msg->body);
	find_automatic(msg, envelope_from, out);
	out->function = rules_function_for(rules, out->subject, msg->body);

	out->answers_us = id_is_ours(rules, msg->in_reply_to);
	for (char **ref = msg->references; *ref != NULL; ref++)
		out->answers_us = out->answers_us || id_is_ours(rules, *ref);
}

void
classification_clear(struct classification *out)
{
	g_free(out->subject);
	g_free(out->case_ref);
	g_free(out->command);
	g_free(out->command_text);
	g_free(out->unknown_command);
	if (out->tickets != NULL)
		g_ptr_array_unref(out->tickets);
	if (out->warnings != NULL)
		g_ptr_array_unref(out->warnings);
	memset(out, 0, sizeof *out);
}

const char *
automatic_name(enum automatic kind)
{
	switch (kind) {
	case AUTO_NONE:
		return "none";
	case AUTO_REPLY:
		return "auto-reply";
	case AUTO_BULK:
		return "bulk";
	case AUTO_BOUNCE:
		return "bounce";
	}
	return "?";
}
