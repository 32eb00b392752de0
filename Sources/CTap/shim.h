// A tap device for virtio-net (`--net tap=NAME`): ioctl(2) is variadic, which Swift cannot call,
// and linux/if_tun.h clashes with glibc's net/if.h, so the few numbers it needs are written here
// (the same on every Linux architecture).
#ifndef CTAP_SHIM_H
#define CTAP_SHIM_H
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define CTAP_TUNSETIFF 0x400454caul /* _IOW('T', 202, int) */
#define CTAP_IFF_TAP 0x0002
#define CTAP_IFF_NO_PI 0x1000

/// Opens the tap device `name` (creating it when there is none and the caller may: root or
/// CAP_NET_ADMIN), non-blocking, one Ethernet frame per read and write, and brings its link up
/// where the caller may. Returns the descriptor, or -errno. The kernel's name is written to
/// `actual` (IFNAMSIZ bytes): `name` may hold a %d pattern.
static inline int ctap_open(const char *name, char *actual) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct ifreq request;
  memset(&request, 0, sizeof request);
  strncpy(request.ifr_name, name, IFNAMSIZ - 1);
  request.ifr_flags = CTAP_IFF_TAP | CTAP_IFF_NO_PI;
  if (ioctl(fd, CTAP_TUNSETIFF, &request) < 0) {
    int error = errno;
    close(fd);
    return -error;
  }
  memcpy(actual, request.ifr_name, IFNAMSIZ);
  int control = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (control >= 0) {
    if (ioctl(control, SIOCGIFFLAGS, &request) == 0 && !(request.ifr_flags & IFF_UP)) {
      request.ifr_flags |= IFF_UP;
      ioctl(control, SIOCSIFFLAGS, &request);
    }
    close(control);
  }
  return fd;
}

static const int ctap_name_size = IFNAMSIZ;
#endif
