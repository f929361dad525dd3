/* error.c: the ESC_ERROR domain for GError. */
#include "common/error.h"

GQuark
esc_error_quark(void)
{
	return g_quark_from_static_string("escalator-error");
}
