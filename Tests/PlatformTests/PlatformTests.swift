import Foundation
import Platform
import Synchronization
import Testing

@Suite struct ErrnoTests {
  @Test func describesTheError() {
    #expect(Errno(rawValue: ENOENT).description == "No such file or directory")
    #expect(Errno(rawValue: EACCES).description == "Permission denied")
    #expect(Errno(rawValue: ENOENT) == Errno(rawValue: ENOENT))
    #expect(Errno(rawValue: ENOENT) != Errno(rawValue: EACCES))
  }

  @Test func currentIsTheThreadsErrno() {
    errno = EBADF
    #expect(Errno.current == Errno(rawValue: EBADF))
    #expect(close(-1) == -1)
    #expect(Errno.current.rawValue == EBADF)
  }

  @Test func matchesErrorNumbersInASwitch() {
    func name(_ error: Errno) -> String {
      switch error {
      case ENOENT: return "missing"
      case EACCES, EPERM: return "denied"
      default: return "other"
      }
    }
    #expect(name(Errno(rawValue: ENOENT)) == "missing")
    #expect(name(Errno(rawValue: EPERM)) == "denied")
    #expect(name(Errno(rawValue: EIO)) == "other")
  }
}

@Suite struct RetryTests {
  @Test func retriesWhileTheCallFailsWithEINTR() {
    var calls = 0
    let result = retryingOnInterrupt { () -> Int in
      calls += 1
      if calls <= 2 {
        errno = EINTR
        return -1
      }
      return 42
    }
    #expect(result == 42)
    #expect(calls == 3)
  }

  @Test func returnsOtherFailuresAtOnce() {
    var calls = 0
    let result = retryingOnInterrupt { () -> Int32 in
      calls += 1
      errno = EAGAIN
      return -1
    }
    #expect(result == -1)
    #expect(errno == EAGAIN)
    #expect(calls == 1)
  }

  @Test func retriesMinusEINTR() {
    var results: [Int32] = [-EINTR, -EINTR, -ENOENT, 7]
    var calls = 0
    let result = retryingOnMinusEINTR { () -> Int32 in
      calls += 1
      return results.removeFirst()
    }
    #expect(result == -ENOENT)
    #expect(calls == 3)
  }
}

@Suite struct FileDescriptorTests {
  /// A temporary directory, removed after `body`.
  func inScratch(_ body: (String) throws -> Void) throws {
    let path = NSTemporaryDirectory() + "realm-run-platform-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    try body(path)
  }

  @Test func writesAndReadsBack() throws {
    try inScratch { directory in
      let path = directory + "/file"
      let fd = try FileDescriptor.open(path, O_RDWR | O_CREAT | O_EXCL, mode: 0o600)
      defer { fd.close() }
      let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
      try bytes.withUnsafeBytes { try fd.write($0) }
      try [UInt8]([0xAA, 0xBB]).withUnsafeBytes { try fd.write($0, at: 100) }
      #expect(try fd.status().st_size == 10_000)
      #expect(try fd.status().st_mode & 0o777 == 0o600)
      #expect(fcntl(fd.rawValue, F_GETFD) & FD_CLOEXEC != 0)

      var expected = bytes
      expected[100] = 0xAA
      expected[101] = 0xBB
      var all = [UInt8](repeating: 0, count: 20_000)
      #expect(try fd.seek(to: 0, from: SEEK_SET) == 0)
      let count = try all.withUnsafeMutableBytes { try fd.read(into: $0) }
      #expect(count == 10_000)  // the file ends first
      let same = Array(all[..<count]) == expected  // a Bool: a failed == on arrays prints them whole
      #expect(same)

      var middle = [UInt8](repeating: 0, count: 4)
      #expect(try middle.withUnsafeMutableBytes { try fd.read(into: $0, at: 99) } == 4)
      #expect(middle == [expected[99], 0xAA, 0xBB, expected[102]])
      #expect(try middle.withUnsafeMutableBytes { try fd.read(into: $0, at: 9_998) } == 2)
      #expect(try fd.seek(to: 0, from: SEEK_END) == 10_000)
      try fd.sync()
      try fd.syncData()
    }
  }

  @Test func openFailureThrowsTheErrno() throws {
    try inScratch { directory in
      #expect(throws: Errno(rawValue: ENOENT)) { try FileDescriptor.open(directory + "/missing", O_RDONLY) }
      let fd = try FileDescriptor.open(directory + "/file", O_WRONLY | O_CREAT)
      fd.close()
      #expect(throws: Errno(rawValue: EEXIST)) { try FileDescriptor.open(directory + "/file", O_WRONLY | O_CREAT | O_EXCL) }
      var byte: UInt8 = 0
      #expect(throws: Errno(rawValue: EBADF)) {
        try withUnsafeMutableBytes(of: &byte) { try FileDescriptor(rawValue: -1).read(into: $0) }
      }
    }
  }

  /// A pipe delivers what a writer thread sends in small pieces: one read gets them all.
  @Test func readGoesOnOverShortReads() throws {
    let (reader, writer) = try Self.pipe()
    defer { reader.close() }
    let pieces = 50
    let finished = Self.start {
      for index in 0..<pieces {
        var piece = [UInt8](repeating: UInt8(index), count: 10)
        _ = Glibc.write(writer.rawValue, &piece, piece.count)
        usleep(200)
      }
      writer.close()
    }
    defer { finished.wait() }
    var buffer = [UInt8](repeating: 0xFF, count: pieces * 10 + 100)
    let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
    #expect(count == pieces * 10)  // then the end of the pipe
    let expected = (0..<pieces).flatMap { [UInt8](repeating: UInt8($0), count: 10) }
    let same = Array(buffer[..<count]) == expected
    #expect(same)
  }

  /// A signal without SA_RESTART interrupts a blocked read(2) with EINTR: the read goes on.
  @Test func readGoesOnAfterASignal() throws {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART: read(2) fails with EINTR
    sigaction(SIGUSR2, &action, nil)
    var unblocked = sigset_t()
    sigemptyset(&unblocked)
    sigaddset(&unblocked, SIGUSR2)
    pthread_sigmask(SIG_UNBLOCK, &unblocked, nil)

    let (reader, writer) = try Self.pipe()
    defer { reader.close() }
    let target = pthread_self()
    let signals = Atomic<Int>(0)
    let finished = Self.start {
      for _ in 0..<20 {
        usleep(5000)
        if pthread_kill(target, SIGUSR2) == 0 { signals.add(1, ordering: .relaxed) }
      }
      var data: [UInt8] = [1, 2, 3]
      _ = Glibc.write(writer.rawValue, &data, data.count)  // no signal after this
      writer.close()
    }
    defer { finished.wait() }  // also when the read throws: the signals must stop before the test ends
    var buffer = [UInt8](repeating: 0, count: 8)
    let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
    #expect(signals.load(ordering: .relaxed) == 20)
    #expect(count == 3)
    #expect(buffer[..<3] == [1, 2, 3])
  }

  /// A write to a full non-blocking pipe waits for room (instead of failing with EAGAIN) and
  /// writes everything, while a slow reader drains it.
  @Test func writeWaitsOnANonBlockingDescriptor() throws {
    let (reader, writer) = try Self.pipe()
    #expect(fcntl(writer.rawValue, F_SETFL, fcntl(writer.rawValue, F_GETFL) | O_NONBLOCK) == 0)
    let total = 1 << 20
    let received = Atomic<Int>(0)
    let finished = Self.start {
      var buffer = [UInt8](repeating: 0, count: 4096)
      while true {
        usleep(100)
        let count = Glibc.read(reader.rawValue, &buffer, buffer.count)
        if count <= 0 { break }
        received.add(count, ordering: .relaxed)
      }
      reader.close()
    }
    let bytes = [UInt8](repeating: 0x5A, count: total)
    var failure: (any Error)?
    do { try bytes.withUnsafeBytes { try writer.write($0) } } catch { failure = error }
    writer.close()  // the reader then sees the end
    finished.wait()
    #expect(failure == nil)
    #expect(received.load(ordering: .relaxed) == total)
  }

  static func pipe() throws -> (FileDescriptor, FileDescriptor) {
    var fds: [Int32] = [-1, -1]
    guard Glibc.pipe(&fds) == 0 else { throw Errno.current }
    return (FileDescriptor(rawValue: fds[0]), FileDescriptor(rawValue: fds[1]))
  }

  /// Runs `body` on a thread of its own; the semaphore is signalled when it returns.
  static func start(_ body: @escaping @Sendable () -> Void) -> DispatchSemaphore {
    let finished = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
      body()
      finished.signal()
    }
    return finished
  }
}
