// What the 9P server needs of Linux that Swift's Glibc module does not give: openat2(2) and its
// RESOLVE_ flags, getdents64(2), statfs(2), and the constants glibc declares only with
// _GNU_SOURCE (which is not defined here: it changes glibc's struct layouts from the ones in
// Swift's Glibc module; see CLibAIO's shim.h).
#ifndef CNINEP_SHIM_H
#define CNINEP_SHIM_H
#include <fcntl.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437 /* the same number on every architecture */
#endif

// linux/openat2.h's struct open_how and resolve flags (stable UAPI).
struct cninep_open_how {
  uint64_t flags;
  uint64_t mode;
  uint64_t resolve;
};
static const uint64_t cninep_resolve_no_magiclinks = 0x02;
static const uint64_t cninep_resolve_no_symlinks = 0x04;
static const uint64_t cninep_resolve_beneath = 0x08;

static const int cninep_o_path = __O_PATH;
static const int cninep_o_direct = __O_DIRECT;
static const int cninep_o_largefile = __O_LARGEFILE;
static const int cninep_o_noatime = __O_NOATIME;
static const int cninep_at_empty_path = 0x1000;
static const long cninep_utime_now = (1l << 30) - 1;
static const long cninep_utime_omit = (1l << 30) - 2;

/// openat2(2): `path` beneath `dirfd` with `resolve` restrictions; a descriptor, or -1 and errno.
static inline int cninep_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  struct cninep_open_how how = {flags, mode, resolve};
  return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

/// getdents64(2): directory entries from `fd`'s position into `buffer`; bytes, 0 at the end, or -1.
static inline long cninep_getdents64(int fd, void *buffer, unsigned long size) {
  return syscall(SYS_getdents64, fd, buffer, size);
}

/// The statfs(2) fields 9P2000.L's Rstatfs carries.
struct cninep_statfs {
  uint32_t type, bsize;
  uint64_t blocks, bfree, bavail, files, ffree, fsid;
  uint32_t namelen;
};

static inline int cninep_fstatfs(int fd, struct cninep_statfs *out) {
  struct statfs st;
  if (fstatfs(fd, &st) != 0) return -1;
  out->type = (uint32_t)st.f_type;
  out->bsize = (uint32_t)st.f_bsize;
  out->blocks = st.f_blocks;
  out->bfree = st.f_bfree;
  out->bavail = st.f_bavail;
  out->files = st.f_files;
  out->ffree = st.f_ffree;
  out->fsid = (uint64_t)(uint32_t)st.f_fsid.__val[0] | ((uint64_t)(uint32_t)st.f_fsid.__val[1] << 32);
  out->namelen = (uint32_t)st.f_namelen;
  return 0;
}
#endif
