// libaio (Debian: libaio-dev). No pkg-config file there, hence a plain module map.
//
// No _GNU_SOURCE here: it changes glibc's struct layouts (fd_set's member names) from the ones in
// Swift's Glibc module, and a clean build then fails with two definitions of fd_set. What it would
// have declared is declared by hand instead.
#ifndef CLIBAIO_SHIM_H
#define CLIBAIO_SHIM_H
#include <errno.h>
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

// Open-file-description locks (fcntl(2); glibc names them only with _GNU_SOURCE; the numbers are
// the same on every Linux architecture). QEMU locks disk images with them, one byte per permission.
#define CLIBAIO_F_OFD_GETLK 36
#define CLIBAIO_F_OFD_SETLK 37

/// Takes a shared (read) OFD lock on the byte at `offset`; 0, or -errno (-EAGAIN: another open
/// file holds an exclusive one).
static inline int clibaio_ofd_share_byte(int fd, long long offset) {
  struct flock lock = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
  return fcntl(fd, CLIBAIO_F_OFD_SETLK, &lock) == 0 ? 0 : -errno;
}

/// Whether another open file holds any lock on the byte at `offset` (1 or 0), or -errno. Locks of
/// `fd`'s own open file description do not count.
static inline int clibaio_ofd_byte_is_locked(int fd, long long offset) {
  struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = offset, .l_len = 1};
  if (fcntl(fd, CLIBAIO_F_OFD_GETLK, &lock) != 0) return -errno;
  return lock.l_type != F_UNLCK;
}

// The completion ring the kernel maps at an io_context_t's address (fs/aio.c, struct aio_ring).
struct clibaio_ring {
  unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
  struct io_event events[];
};
#define CLIBAIO_RING_MAGIC 0xa10a10a1u

/// Whether completions of `context` can be read from its ring without a system call.
static inline int clibaio_ring_usable(io_context_t context) {
  const struct clibaio_ring *ring = (const struct clibaio_ring *)context;
  return ring != 0 && ring->magic == CLIBAIO_RING_MAGIC && ring->incompat_features == 0;
}

/// Whether the ring holds finished events (read without a system call).
static inline int clibaio_ring_has_events(io_context_t context) {
  const struct clibaio_ring *ring = (const struct clibaio_ring *)context;
  return ring->head != __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
}

/// Copies up to `max` finished events from the ring into `events` and hands their slots back to the
/// kernel, as io_getevents with a zero timeout does but without entering the kernel (fio's
/// userspace_reap). Only one thread may reap a context this way, and not during its io_getevents.
static inline int clibaio_ring_reap(io_context_t context, struct io_event *events, int max) {
  struct clibaio_ring *ring = (struct clibaio_ring *)context;
  unsigned head = ring->head, nr = ring->nr;
  unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);  // events written before tail
  int count = 0;
  while (head != tail && count < max) {
    events[count++] = ring->events[head];
    head = head + 1 == nr ? 0 : head + 1;
  }
  __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);  // events read before the slots are reused
  return count;
}
#endif
