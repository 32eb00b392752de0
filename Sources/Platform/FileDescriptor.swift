/// An open file descriptor. A plain value: it is closed only by ``close()``, so its owner (a class
/// with a `deinit`, or a `defer`) decides when.
///
/// Calls a signal can interrupt are retried on EINTR (through ``retryingOnInterrupt(_:)``), reads
/// and writes go on over short transfers, and failures throw the ``Errno``.
public struct FileDescriptor: RawRepresentable, Hashable, Sendable {
  /// The descriptor number.
  public let rawValue: Int32

  /// Wraps a descriptor opened elsewhere (a pipe, an eventfd, a terminal).
  public init(rawValue: Int32) {
    self.rawValue = rawValue
  }

  /// Standard input (0).
  public static let standardInput = FileDescriptor(rawValue: STDIN_FILENO)
  /// Standard output (1).
  public static let standardOutput = FileDescriptor(rawValue: STDOUT_FILENO)
  /// Standard error (2).
  public static let standardError = FileDescriptor(rawValue: STDERR_FILENO)

  /// Opens `path` with `flags` (`O_RDONLY`, `O_WRONLY | O_CREAT | O_TRUNC`, ...), always adding
  /// `O_CLOEXEC`; a created file gets `mode` (less the umask).
  public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
    let fd = retryingOnInterrupt { Glibc.open(path, flags | O_CLOEXEC, mode) }
    guard fd >= 0 else { throw .current }
    return FileDescriptor(rawValue: fd)
  }

  /// Closes the descriptor. A failure is not reported: Linux releases the descriptor even then
  /// (so it must not be retried), and data that must last is synced with ``sync()`` first.
  public func close() {
    _ = Glibc.close(rawValue)
  }

  /// Whether the descriptor is a terminal (`isatty`).
  public var isTerminal: Bool { isatty(rawValue) == 1 }

  /// Reads into `buffer` until it is full or the file ends; returns the bytes read (fewer than
  /// `buffer.count` only at the end of the file).
  public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
    try transfer(buffer.count) { done in
      Glibc.read(rawValue, buffer.baseAddress! + done, buffer.count - done)
    }
  }

  /// Reads into `buffer` from `offset` (`pread`, the file position is unchanged) until it is full
  /// or the file ends; returns the bytes read (fewer than `buffer.count` only at the end).
  public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(Errno) -> Int {
    try transfer(buffer.count) { done in
      pread(rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
    }
  }

  /// Writes all of `buffer`. On a non-blocking descriptor (a terminal another program made so, a
  /// full pipe) it waits until the descriptor can take more, instead of failing with EAGAIN.
  public func write(_ buffer: UnsafeRawBufferPointer) throws(Errno) {
    let count = try transfer(buffer.count, waitingToWrite: true) { done in
      Glibc.write(rawValue, buffer.baseAddress! + done, buffer.count - done)
    }
    guard count == buffer.count else { throw Errno(rawValue: EIO) }  // write returned 0
  }

  /// Writes all of `buffer` at `offset` (`pwrite`, the file position is unchanged), waiting as
  /// ``write(_:)`` does.
  public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(Errno) {
    let count = try transfer(buffer.count, waitingToWrite: true) { done in
      pwrite(rawValue, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
    }
    guard count == buffer.count else { throw Errno(rawValue: EIO) }  // pwrite returned 0
  }

  /// The file's status (`fstat`): its type, size, device and inode.
  public func status() throws(Errno) -> stat {
    var status = stat()
    guard fstat(rawValue, &status) == 0 else { throw .current }
    return status
  }

  /// Moves the file position (`lseek`) to `offset` from `whence` (`SEEK_SET`, `SEEK_END`, ...);
  /// returns the new position.
  @discardableResult
  public func seek(to offset: Int64, from whence: Int32) throws(Errno) -> Int64 {
    let position = lseek(rawValue, off_t(offset), whence)
    guard position >= 0 else { throw .current }
    return Int64(position)
  }

  /// Puts the file's data and metadata on stable storage (`fsync`).
  public func sync() throws(Errno) {
    guard retryingOnInterrupt({ fsync(rawValue) }) == 0 else { throw .current }
  }

  /// Puts the file's data on stable storage, and the metadata needed to read it back (`fdatasync`).
  public func syncData() throws(Errno) {
    guard retryingOnInterrupt({ fdatasync(rawValue) }) == 0 else { throw .current }
  }

  /// Calls `step(done)` until `count` bytes are done or it returns 0 (end of file); returns the
  /// bytes done. EINTR retries the step; for a write (`waitingToWrite`), EAGAIN waits until the
  /// descriptor can take more.
  private func transfer(_ count: Int, waitingToWrite: Bool = false, _ step: (_ done: Int) -> Int) throws(Errno) -> Int {
    var done = 0
    while done < count {
      let result = retryingOnInterrupt { step(done) }
      if result < 0 {
        guard waitingToWrite, errno == EAGAIN else { throw .current }
        var poller = pollfd(fd: rawValue, events: Int16(POLLOUT), revents: 0)
        guard retryingOnInterrupt({ poll(&poller, 1, -1) }) >= 0 else { throw .current }
        continue
      }
      if result == 0 { break }
      done += result
    }
    return done
  }
}
