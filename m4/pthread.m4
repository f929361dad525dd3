# AX_PTHREAD_SIMPLE: POSIX threads through the compiler's -pthread, which
# both gcc and clang accept on the systems escalator targets.
AC_DEFUN([AX_PTHREAD_SIMPLE], [
  PTHREAD_CFLAGS="-pthread"
  PTHREAD_LIBS="-pthread"
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
