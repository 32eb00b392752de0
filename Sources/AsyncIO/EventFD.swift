import CLibAIO
import Platform

/// A new eventfd(2), non-blocking and close-on-exec, counting from 0: the I/O thread's wake-up and
/// completion counters, and the doorbells KVM signals. The caller closes it.
public func makeEventFD() throws(Errno) -> Int32 {
  let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
  guard fd >= 0 else { throw .current }
  return fd
}

/// `count` new eventfds (``makeEventFD()``), or none: those made before a failure are closed.
public func makeEventFDs(_ count: Int) throws(Errno) -> [Int32] {
  var fds: [Int32] = []
  for _ in 0..<count {
    do {
      fds.append(try makeEventFD())
    } catch {
      fds.forEach { close($0) }
      throw error
    }
  }
  return fds
}

/// Adds 1 to an eventfd's count: wakes whoever polls it (a failure, a full count, is left alone:
/// the reader is woken either way).
public func signalEventFD(_ fd: Int32) {
  var one: UInt64 = 1
  _ = write(fd, &one, 8)
}

/// Reads and clears an eventfd's count; nil when it was zero (or the read failed).
public func readEventFD(_ fd: Int32) -> UInt64? {
  var count: UInt64 = 0
  return read(fd, &count, 8) == 8 ? count : nil
}
