/*
 * fuzz_rules.c: libFuzzer target for the rules loader. The input is the
 * text of a rules file, written to a private temporary file (the loader
 * reads paths, as escalatord and escalatorctl do) and loaded against
 * the shipped templates. Loading may fail, saying why; it must never
 * crash, leak, take long, or succeed with rules that then cannot
 * classify a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "parser/message.h"
#include "rules/classify.h"

static char *path;
static struct message *probe;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static void
cleanup(void)
{
	g_unlink(path);
	g_free(path);
	message_free(&probe);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char text[] = "From: a@example.net\n"
	    "Subject: Re: [ESC-42] ESCALATE [IANA #123456]\n\nTicket 2024-0042\n";
	int fd = g_file_open_tmp("escalator-fuzz-rules-XXXXXX.yaml", &path,
	    NULL);

	(void)argc;
	(void)argv;
	if (fd < 0)
		exit(1);
	close(fd);
	probe = message_parse(text, strlen(text));
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	GError *error = NULL;
	struct rules *rules;
	struct classification cls;

	if (!g_file_set_contents(path, (const char *)data, (gssize)len, NULL))
		abort();
	rules = rules_load(path, SRCDIR "/templates", &error);
	if (rules == NULL) {
		/* A failure always says why. */
		if (error == NULL || *error->message == '\0')
			abort();
		g_error_free(error);
		return 0;
	}
	classify_message(rules, probe, "a@example.net", &cls);
	classification_clear(&cls);
	rules_unref(&rules);
	return 0;
}
