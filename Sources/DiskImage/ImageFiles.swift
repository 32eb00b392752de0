import Platform

// glibc declares SEEK_DATA and SEEK_HOLE only for _GNU_SOURCE, which its Swift module lacks (Linux's values).
private let seekData: Int32 = 3
private let seekHole: Int32 = 4

/// The device and inode of a file. Two paths name the same file, through a hard link or a symbolic
/// link too, exactly when these agree; comparing paths would miss both.
struct FileIdentity: Equatable {
  let device: UInt64
  let inode: UInt64

  init(_ status: stat) {
    device = UInt64(status.st_dev)
    inode = UInt64(status.st_ino)
  }
}

/// An input of the image (kernel, initrd or rootfs), opened once. Its identity, its size and what
/// is copied all come from this one open file, so a file renamed, replaced or grown after the
/// checks cannot change what goes into the image.
final class InputFile {
  let path: String
  /// "kernel", "initrd" or "rootfs", for messages.
  let role: String
  let identity: FileIdentity
  /// The size when opened: no more than this is ever read, even if the file grows.
  let size: UInt64
  private let fd: FileDescriptor

  init(path: String, role: String) throws(DiskImageError) {
    self.path = path
    self.role = role
    do {
      fd = try .open(path, O_RDONLY)
    } catch {
      throw .cannotRead(path: path, reason: error.description)
    }
    let status: stat
    do {
      status = try fd.status()
    } catch {
      fd.close()
      throw .cannotRead(path: path, reason: error.description)
    }
    guard (status.st_mode & S_IFMT) == S_IFREG else {
      fd.close()
      throw .cannotRead(path: path, reason: "not a regular file")
    }
    identity = FileIdentity(status)
    size = UInt64(status.st_size)
  }

  deinit { fd.close() }

  /// The whole file, for the ESP (whose FAT32 files are under 4 GiB).
  func readAll() throws(DiskImageError) -> [UInt8] {
    guard size < 1 << 32 else { throw .tooLarge(path: path) }
    var bytes = [UInt8](repeating: 0, count: Int(size))
    // withUnsafeMutableBytes rethrows untyped: carry the typed error out in a Result.
    try bytes.withUnsafeMutableBytes { buffer in Result { () throws(DiskImageError) in try read(into: buffer, at: 0) } }.get()
    return bytes
  }

  /// Fills `buffer` from `offset`, which with the buffer's length lies within `size`; the file
  /// ending sooner means it shrank after it was opened.
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
    let count: Int
    do {
      count = try fd.read(into: buffer, at: Int64(offset))
    } catch {
      throw .cannotRead(path: path, reason: error.description)
    }
    guard count == buffer.count else { throw .cannotRead(path: path, reason: "the file shrank while it was copied") }
  }

  /// The next run of data at or after `offset` (and before `size`), skipping holes; `nil` when
  /// only holes remain. Where the file system cannot tell holes (SEEK_DATA fails with EINVAL), all
  /// of the rest counts as data.
  func nextData(from offset: UInt64) throws(DiskImageError) -> Range<UInt64>? {
    let start: Int64
    do {
      start = try fd.seek(to: Int64(offset), from: seekData)
    } catch {
      switch error {
      case ENXIO: return nil  // a hole or the end of the file follows `offset`
      case EINVAL: return offset..<size
      default: throw .cannotRead(path: path, reason: error.description)
      }
    }
    guard UInt64(start) < size else { return nil }
    let end: Int64
    do {
      end = try fd.seek(to: start, from: seekHole)
    } catch {
      throw .cannotRead(path: path, reason: error.description)
    }
    return UInt64(start)..<min(UInt64(end), size)
  }
}

/// The image being written. It goes to a new temporary file in the output's directory, so a
/// failure (or a crash) never leaves the output half-written or destroyed, and is renamed over the
/// output only by ``commit()``, once complete and on disk. Sparse wherever nothing, or only
/// zeros, is written.
final class OutputFile {
  /// The output as the caller named it, for messages.
  let path: String
  /// Where the image goes: `path` with symbolic links resolved, so that replacing an output that
  /// is a link replaces the file it points to (as writing through the link did), not the link.
  let destination: String
  /// The file at `destination` now, if any: an input must not be this file.
  let existing: FileIdentity?
  /// The replaced output's permissions, which the image keeps, as it did when written in place.
  private let existingMode: mode_t?
  /// The directory of `destination`, where the temporary file goes (a rename within one file
  /// system is what makes replacing the output a single step).
  private let directory: String
  /// Hidden, and named after the output, so that a file left by a crash is recognisable.
  private let temporaryPrefix: String
  private var temporaryPath: String?
  private var fd: FileDescriptor?
  private var committed = false

  /// Looks at the output: if it exists it must be a regular file. Creates nothing yet
  /// (``create(size:)`` does), so that the caller can check the inputs against ``existing``, and
  /// whether it may replace it, before anything is written.
  init(path: String) throws(DiskImageError) {
    self.path = path
    var status = stat()
    if lstat(path, &status) != 0 {
      guard errno == ENOENT else { throw .cannotWrite(path: path, reason: Errno.current.description) }
      destination = path
      existing = nil
      existingMode = nil
    } else {
      guard stat(path, &status) == 0 else { throw .cannotWrite(path: path, reason: Errno.current.description) }
      // A device or a directory would be replaced by a file, not written to: refuse, don't surprise.
      guard (status.st_mode & S_IFMT) == S_IFREG else { throw .cannotWrite(path: path, reason: "not a regular file") }
      guard let resolved = realpath(path, nil) else { throw .cannotWrite(path: path, reason: Errno.current.description) }
      destination = String(cString: resolved)
      free(resolved)
      existing = FileIdentity(status)
      existingMode = status.st_mode & 0o777
    }
    let target = destination
    let slash = target.lastIndex(of: "/")
    directory = slash.map { $0 == target.startIndex ? "/" : String(target[..<$0]) } ?? "."
    let name = slash.map { String(target[target.index(after: $0)...]) } ?? target
    temporaryPrefix = directory + "/." + name + ".realm-run-"
  }

  /// Creates the temporary file, `size` bytes long and all hole. O_EXCL with a random name: it is
  /// never a file that already exists.
  func create(size: UInt64) throws(DiskImageError) {
    while fd == nil {
      let candidate = temporaryPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 36)
      do {
        fd = try .open(candidate, O_WRONLY | O_CREAT | O_EXCL)
        temporaryPath = candidate
      } catch {
        guard error.rawValue == EEXIST else {
          throw .cannotWrite(path: path, reason: "cannot create a file in \(directory): \(error)")
        }
      }
    }
    let fd = self.fd!.rawValue
    if let existingMode, fchmod(fd, existingMode) != 0 { throw .cannotWrite(path: path, reason: Errno.current.description) }
    guard ftruncate(fd, off_t(size)) == 0 else { throw .cannotWrite(path: path, reason: Errno.current.description) }
  }

  /// Closes the file and, unless committed, removes it: every way out of writing calls this.
  func finish() {
    fd?.close()
    fd = nil
    if !committed, let temporaryPath { _ = unlink(temporaryPath) }
  }

  func write(_ bytes: [UInt8], at offset: UInt64) throws(DiskImageError) {
    try bytes.withUnsafeBytes { buffer in Result { () throws(DiskImageError) in try write(buffer, at: offset) } }.get()
  }

  /// Writes `buffer` at `offset`, except pieces of it that are all zero: the file is all hole
  /// when created, so those read back as zero anyway and the image stays sparse (a mostly empty
  /// 64 MiB ESP, a rootfs's unused blocks).
  func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws(DiskImageError) {
    let piece = 64 << 10
    var start = 0
    while start < buffer.count {
      let end = min(start + piece, buffer.count)
      var done = start
      if OutputFile.isZero(UnsafeRawBufferPointer(rebasing: buffer[start..<end])) { done = end }
      if done < end {
        do {
          try fd!.write(UnsafeRawBufferPointer(rebasing: buffer[done..<end]), at: Int64(offset) + Int64(done))
        } catch {
          throw .cannotWrite(path: path, reason: error.description)
        }
      }
      start = end
    }
  }

  /// Whether every byte is zero, a word at a time (a byte loop is slow in debug builds).
  static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var i = 0
    while i + 8 <= bytes.count {
      if bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
      i += 8
    }
    return bytes[i...].allSatisfy { $0 == 0 }
  }

  /// Copies `source`'s first `source.size` bytes to `offset`, never more even if it has grown.
  /// Only its data runs are read: its holes stay holes in the image (and zeros within data runs
  /// become holes, as ``write(_:at:)`` makes them). `progress` gets the bytes of `source` done.
  func copy(_ source: InputFile, at offset: UInt64, progress: (UInt64) -> Void) throws(DiskImageError) {
    let chunk = 4 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { buffer.deallocate() }
    var position: UInt64 = 0
    while position < source.size, let run = try source.nextData(from: position) {
      position = run.lowerBound
      while position < run.upperBound {
        let part = UnsafeMutableRawBufferPointer(rebasing: buffer[..<Int(min(UInt64(chunk), run.upperBound - position))])
        try source.read(into: part, at: position)
        try write(UnsafeRawBufferPointer(part), at: offset + position)
        position += UInt64(part.count)
        progress(position)
      }
    }
    progress(source.size)
  }

  /// Makes the image the output: on disk first (fsync), then renamed over the output, then the
  /// rename itself on disk (fsync of the directory), so that after a crash the output is either
  /// the old file or the whole new image.
  func commit() throws(DiskImageError) {
    do throws(Errno) {
      try fd!.sync()
      guard rename(temporaryPath!, destination) == 0 else { throw .current }
      committed = true
      let directoryFD = try FileDescriptor.open(directory, O_RDONLY | O_DIRECTORY)
      defer { directoryFD.close() }
      try directoryFD.sync()
    } catch {
      throw .cannotWrite(path: path, reason: error.description)
    }
  }
}
