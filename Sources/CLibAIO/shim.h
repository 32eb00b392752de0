// libaio (Debian: libaio-dev). No pkg-config file there, hence a plain module map.
//
// No _GNU_SOURCE here: it changes glibc's struct layouts (fd_set's member names) from the ones in
// Swift's Glibc module, and a clean build then fails with two definitions of fd_set. What it would
// have declared is declared by hand instead.
#ifndef CLIBAIO_SHIM_H
#define CLIBAIO_SHIM_H
#include <fcntl.h>
#include <libaio.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <sys/file.h>

extern int fallocate(int __fd, int __mode, __off_t __offset, __off_t __len);

/// fallocate(2), which glibc declares only with _GNU_SOURCE.
static inline int clibaio_fallocate(int fd, int mode, long long offset, long long length) {
  return fallocate(fd, mode, (__off_t)offset, (__off_t)length);
}

// __O_DIRECT is glibc's per-architecture value (arm64's differs from x86's); O_DIRECT needs _GNU_SOURCE.
static const int clibaio_o_direct = __O_DIRECT;
static const int clibaio_falloc_punch_hole = FALLOC_FL_PUNCH_HOLE;
static const int clibaio_falloc_keep_size = FALLOC_FL_KEEP_SIZE;
static const int clibaio_falloc_zero_range = FALLOC_FL_ZERO_RANGE;
#endif
