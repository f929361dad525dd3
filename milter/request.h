/*
 * request.h: what escalatord asks of the MTA when the milter protocol
 * is negotiated, in one place so that bench/nullmilter, the baseline of
 * the benchmarks, asks exactly the same.
 *
 * Stages it does not need are skipped (connect, HELO, unknown commands,
 * end of headers); stages that never reject get no reply (MAIL, RCPT,
 * each header); headers keep their leading space; SKIP ends the body
 * early once enough is read. It may add and change headers.
 */
#ifndef ESC_REQUEST_H
#define ESC_REQUEST_H

#include <libmilter/mfapi.h>

#define REQUEST_SKIPPED (SMFIP_NOCONNECT | SMFIP_NOHELO | \
	SMFIP_NOUNKNOWN | SMFIP_NOEOH)
#define REQUEST_NOREPLY (SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_HDR)
#define REQUEST_STEPS (REQUEST_SKIPPED | REQUEST_NOREPLY | \
	SMFIP_HDR_LEADSPC | SMFIP_SKIP)
#define REQUEST_ACTIONS (SMFIF_ADDHDRS | SMFIF_CHGHDRS)

#endif
