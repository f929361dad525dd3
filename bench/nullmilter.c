/*
 * nullmilter.c: the baseline of the benchmarks. A libmilter filter that
 * registers the same callbacks, actions and protocol steps as escalatord
 * (milter/callbacks.c) and does no work in them: every message is
 * accepted at end of message, or at DATA with -d, as escalatord does
 * with mail to unwatched mailboxes. Measured against it, a figure is
 * what escalatord itself costs, with libmilter's and the socket's share
 * taken out.
 *
 *   nullmilter -s unix:PATH [-d]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "milter/request.h"

static int accept_at_data;

/* The no-reply steps agreed, kept in the private pointer. */
static unsigned long
noreply_of(SMFICTX *ctx)
{
	return (unsigned long)(uintptr_t)smfi_getpriv(ctx);
}

static sfsistat
stage_reply(SMFICTX *ctx, unsigned long nr_flag)
{
	return (noreply_of(ctx) & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* The same request as escalatord's (milter/request.h). */
static sfsistat
on_negotiate(SMFICTX *ctx, unsigned long actions, unsigned long steps,
    unsigned long unused2, unsigned long unused3, unsigned long *actions_r,
    unsigned long *steps_r, unsigned long *unused2_r,
    unsigned long *unused3_r)
{
	(void)unused2;
	(void)unused3;
	*actions_r = actions & REQUEST_ACTIONS;
	*steps_r = steps & REQUEST_STEPS;
	*unused2_r = 0;
	*unused3_r = 0;
	smfi_setpriv(ctx, (void *)(uintptr_t)(*steps_r & REQUEST_NOREPLY));
	return SMFIS_CONTINUE;
}

static sfsistat
on_envfrom(SMFICTX *ctx, char **argv)
{
	(void)argv;
	return stage_reply(ctx, SMFIP_NR_MAIL);
}

static sfsistat
on_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)argv;
	return stage_reply(ctx, SMFIP_NR_RCPT);
}

static sfsistat
on_data(SMFICTX *ctx)
{
	(void)ctx;
	return accept_at_data ? SMFIS_ACCEPT : SMFIS_CONTINUE;
}

static sfsistat
on_header(SMFICTX *ctx, char *name, char *value)
{
	(void)name;
	(void)value;
	return stage_reply(ctx, SMFIP_NR_HDR);
}

static sfsistat
on_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return SMFIS_CONTINUE;
}

static sfsistat
on_eom(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_ACCEPT;
}

static sfsistat
on_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
on_close(SMFICTX *ctx)
{
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

static struct smfiDesc filter = {
	.xxfi_name = "nullmilter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = REQUEST_ACTIONS,
	.xxfi_envfrom = on_envfrom,
	.xxfi_envrcpt = on_envrcpt,
	.xxfi_header = on_header,
	.xxfi_body = on_body,
	.xxfi_eom = on_eom,
	.xxfi_abort = on_abort,
	.xxfi_close = on_close,
	.xxfi_data = on_data,
	.xxfi_negotiate = on_negotiate,
};

int
main(int argc, char **argv)
{
	const char *socket = NULL;
	int c;

	while ((c = getopt(argc, argv, "s:d")) != -1) {
		if (c == 's')
			socket = optarg;
		else if (c == 'd')
			accept_at_data = 1;
		else
			socket = NULL, optind = argc + 1;
	}
	if (socket == NULL || optind != argc) {
		fprintf(stderr, "usage: nullmilter -s unix:PATH [-d]\n");
		return 2;
	}
	if (smfi_setconn((char *)socket) == MI_FAILURE ||
	    smfi_register(filter) == MI_FAILURE ||
	    smfi_opensocket(1) == MI_FAILURE) {
		fprintf(stderr, "nullmilter: cannot listen on %s\n", socket);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
