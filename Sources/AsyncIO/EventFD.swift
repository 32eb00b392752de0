import CLibAIO
import Platform

/// A new eventfd(2), non-blocking and close-on-exec, counting from 0: the I/O thread's wake-up and
/// completion counters, and the doorbells KVM signals. The caller closes it.
public func makeEventFD() throws(Errno) -> Int32 {
  let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
  guard fd >= 0 else { throw .current }
  return fd
}

/// Reads and clears an eventfd's count; nil when it was zero (or the read failed).
public func readEventFD(_ fd: Int32) -> UInt64? {
  var count: UInt64 = 0
  return read(fd, &count, 8) == 8 ? count : nil
}
