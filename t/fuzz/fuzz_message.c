/*
 * fuzz_message.c: libFuzzer target for reading and classifying a
 * message, the work the milter does at the end of each one: the input
 * is a whole message, parsed as message_parse() does it for the milter
 * and for escalatorctl, then classified under t/rules/test-rules.yaml
 * with each envelope sender the engine may see. A crash, a sanitizer
 * report, a leak or a slow input (-timeout) is a finding; each one
 * becomes a test in t/check_parser.c or t/check_messages.c.
 *
 * The outputs are checked too, as a user would see them: every field is
 * valid UTF-8, the body stays within its limit, and classification
 * never finds a case tag outside the subject.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/message.h"
#include "rules/classify.h"

static struct rules *rules;

static void
check_text(const char *text)
{
	if (text != NULL && !g_utf8_validate(text, -1, NULL))
		abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	GError *error = NULL;

	(void)argc;
	(void)argv;
	rules = rules_load(SRCDIR "/t/rules/test-rules.yaml",
	    SRCDIR "/templates", &error);
	if (rules == NULL) {
		fprintf(stderr, "fuzz_message: rules: %s\n", error->message);
		exit(1);
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static const char *const senders[] = { NULL, "", "x@example.net" };
	struct message *m = message_parse((const char *)data, len);
	struct classification cls;

	check_text(m->subject);
	check_text(m->from);
	check_text(m->from_name);
	check_text(m->message_id);
	check_text(m->body);
	check_text(m->returned_id);
	if (strlen(m->body) > MESSAGE_MAX_BODY)
		abort();
	for (size_t i = 0; i < G_N_ELEMENTS(senders); i++) {
		classify_message(rules, m, senders[i], &cls);
		check_text(cls.subject);
		(void)message_automatic(m, senders[i]);
		classification_clear(&cls);
	}
	message_free(&m);
	return 0;
}
