// libaio (Debian: libaio-dev). No pkg-config file there, hence a plain module map.
#ifndef CLIBAIO_SHIM_H
#define CLIBAIO_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <libaio.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <sys/file.h>

/// fallocate(2) (glibc declares it only with _GNU_SOURCE, which Swift's Glibc module does not set).
static inline int clibaio_fallocate(int fd, int mode, long long offset, long long length) {
  return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

static const int clibaio_o_direct = O_DIRECT;
static const int clibaio_falloc_punch_hole = FALLOC_FL_PUNCH_HOLE;
static const int clibaio_falloc_keep_size = FALLOC_FL_KEEP_SIZE;
static const int clibaio_falloc_zero_range = FALLOC_FL_ZERO_RANGE;
#endif
