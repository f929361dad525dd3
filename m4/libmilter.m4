# ESC_CHECK_LIBMILTER: libmilter ships no pkg-config file, so look for
# its header and library directly.
AC_DEFUN([ESC_CHECK_LIBMILTER], [
  AC_CHECK_HEADER([libmilter/mfapi.h], [],
    [AC_MSG_ERROR([libmilter/mfapi.h not found: install libmilter-dev])])
  save_LIBS=$LIBS
  AC_SEARCH_LIBS([smfi_main], [milter], [],
    [AC_MSG_ERROR([libmilter not found: install libmilter-dev])], [-lpthread])
  LIBS=$save_LIBS
  MILTER_LIBS="-lmilter"
  AC_SUBST([MILTER_LIBS])
])
