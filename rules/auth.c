/*
 * auth.c: see auth.h. Authentication-Results are read as RFC 8601 has
 * them, leniently: comments in parentheses dropped, the authserv-id the
 * first word, then "method=result prop=value ..." items split by ';'.
 */
#include <string.h>

#include "rules/auth.h"

#define TOKEN_HEX 20

/* VALUE without (comments), lowercased. */
static char *
without_comments(const char *value)
{
	GString *out = g_string_new(NULL);
	int depth = 0;

	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '\\' && p[1] != '\0' && depth > 0)
			p++;
		else if (*p == '(')
			depth++;
		else if (*p == ')' && depth > 0)
			depth--;
		else if (depth == 0)
			g_string_append_c(out, g_ascii_tolower(*p));
	}
	return g_string_free(out, FALSE);
}

static gboolean
trusted_id(const struct rules *rules, const char *id)
{
	for (char **t = rules->trusted_authserv_ids; t && *t; t++)
		if (g_ascii_strcasecmp(*t, id) == 0)
			return TRUE;
	return FALSE;
}

/* Is DOMAIN the From domain FROM_DOMAIN or a parent of it? */
static gboolean
aligned(const char *domain, const char *from_domain)
{
	size_t d = strlen(domain), f = strlen(from_domain);

	if (d == 0)
		return FALSE;
	if (g_ascii_strcasecmp(domain, from_domain) == 0)
		return TRUE;
	return f > d && from_domain[f - d - 1] == '.' &&
	    g_ascii_strcasecmp(from_domain + f - d, domain) == 0 &&
	    strchr(domain, '.') != NULL;
}

/* Does one "dkim=pass header.d=..." item pass for FROM_DOMAIN? */
static gboolean
item_passes(const char *item, const char *from_domain)
{
	char **words = g_strsplit_set(item, " \t", -1);
	gboolean pass = FALSE, ok = FALSE;

	for (char **w = words; *w; w++) {
		const char *v = NULL;

		if (strcmp(*w, "dkim=pass") == 0)
			pass = TRUE;
		else if (g_str_has_prefix(*w, "header.d="))
			v = *w + strlen("header.d=");
		else if (g_str_has_prefix(*w, "header.i=") && strchr(*w, '@'))
			v = strchr(*w, '@') + 1;
		if (v != NULL && aligned(v, from_domain))
			ok = TRUE;
	}
	g_strfreev(words);
	return pass && ok;
}

static gboolean
header_passes(const struct rules *rules, const char *value,
    const char *from_domain)
{
	char *clean = without_comments(value);
	char **items = g_strsplit(clean, ";", -1);
	char **id = items[0] ? g_strsplit_set(g_strstrip(items[0]), " \t",
	    2) : NULL;
	gboolean pass = FALSE;

	if (id != NULL && id[0] != NULL && trusted_id(rules, id[0]))
		for (char **i = items + 1; *i && !pass; i++)
			pass = item_passes(g_strstrip(*i), from_domain);
	g_strfreev(id);
	g_strfreev(items);
	g_free(clean);
	return pass;
}

gboolean
auth_dkim_aligned(const struct rules *rules, const struct message *msg)
{
	const char *at = msg->from ? strrchr(msg->from, '@') : NULL;

	if (at == NULL || msg->auth_results == NULL)
		return FALSE;
	for (char **v = msg->auth_results; *v; v++)
		if (header_passes(rules, *v, at + 1))
			return TRUE;
	return FALSE;
}

static char *
token_for(const struct rules *rules, const char *case_id)
{
	char *id = g_ascii_strdown(case_id, -1);
	char *hex = g_compute_hmac_for_string(G_CHECKSUM_SHA256,
	    (const guchar *)rules->hmac_key, rules->hmac_key_len, id, -1);

	hex[TOKEN_HEX] = '\0';
	g_free(id);
	return hex;
}

char *
auth_reply_address(const struct rules *rules, const char *mailbox,
    const char *case_id)
{
	const char *at = strrchr(mailbox, '@');
	char *token, *id, *address;

	if (rules->hmac_key == NULL || at == NULL)
		return g_strdup(mailbox);
	token = token_for(rules, case_id);
	id = g_ascii_strdown(case_id, -1);
	address = g_strdup_printf("%.*s+%s.%s%s", (int)(at - mailbox),
	    mailbox, id, token, at);
	g_free(id);
	g_free(token);
	return address;
}

/* Two tokens of TOKEN_HEX characters, compared in constant time. */
static gboolean
same_token(const char *a, const char *b)
{
	unsigned diff = 0;

	for (int i = 0; i < TOKEN_HEX; i++)
		diff |= (unsigned)(g_ascii_tolower(a[i]) ^
		    g_ascii_tolower(b[i]));
	return diff == 0;
}

/* "local+case.token@domain": the case if the token is right. */
static char *
hmac_case_of(const struct rules *rules, const char *rcpt)
{
	const char *plus = strchr(rcpt, '+'), *at = strrchr(rcpt, '@');
	const char *dot;
	char *detail, *token, *result = NULL;

	if (plus == NULL || at == NULL || plus > at)
		return NULL;
	detail = g_strndup(plus + 1, (gsize)(at - plus - 1));
	dot = strrchr(detail, '.');
	if (dot != NULL && strlen(dot + 1) == TOKEN_HEX) {
		char *id = g_strndup(detail, (gsize)(dot - detail));

		token = token_for(rules, id);
		if (same_token(token, dot + 1))
			result = g_ascii_strup(id, -1);
		g_free(token);
		g_free(id);
	}
	g_free(detail);
	return result;
}

char *
auth_hmac_case(const struct rules *rules, char **recipients)
{
	char *found = NULL;

	if (rules->hmac_key == NULL)
		return NULL;
	for (char **r = recipients; r && *r && found == NULL; r++)
		found = hmac_case_of(rules, *r);
	return found;
}

guint
auth_method_parse(const char *word)
{
	if (strcmp(word, "smtp-auth") == 0)
		return AUTH_SMTP;
	if (strcmp(word, "dkim") == 0)
		return AUTH_DKIM;
	if (strcmp(word, "hmac") == 0)
		return AUTH_HMAC;
	return 0;
}
