/* ioctl(2) is variadic, which Swift cannot call: these give it fixed signatures. */
#ifndef CKVM_SYSCALLS_H
#define CKVM_SYSCALLS_H

#include <sys/ioctl.h>

static inline int ckvm_ioctl_pointer(int fd, unsigned long request, void *argument) {
  return ioctl(fd, request, argument);
}

static inline int ckvm_ioctl_value(int fd, unsigned long request, unsigned long argument) {
  return ioctl(fd, request, argument);
}

#endif

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* mlock2(MLOCK_ONFAULT): Realm RAM must stay resident; lock pages as they are touched. */
static inline int ckvm_mlock_on_fault(void *address, unsigned long length) {
  return (int)syscall(SYS_mlock2, address, length, 1 /* MLOCK_ONFAULT */);
}

/* Raises RLIMIT_MEMLOCK's soft limit towards `bytes` (up to the hard limit); returns the soft
 * limit now in force (UINT64_MAX for unlimited). */
static inline unsigned long long ckvm_raise_memlock_limit(unsigned long long bytes) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return 0;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < bytes) {
    limit.rlim_cur = (limit.rlim_max == RLIM_INFINITY || limit.rlim_max > bytes) ? bytes : limit.rlim_max;
    setrlimit(RLIMIT_MEMLOCK, &limit);
    getrlimit(RLIMIT_MEMLOCK, &limit);
  }
  return limit.rlim_cur == RLIM_INFINITY ? ~0ull : (unsigned long long)limit.rlim_cur;
}
