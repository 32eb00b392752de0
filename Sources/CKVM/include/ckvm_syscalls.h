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
