import CNineP
import Platform

/// A path inside a shared directory: names, none of them empty, ".", ".." or holding "/" or NUL.
/// The empty path is the directory itself. It never leaves the share by construction, and every
/// resolution of it is confined again by the kernel (``SharedDirectory``).
public struct SharePath: Hashable, Sendable {
  public private(set) var names: [[UInt8]] = []

  public init() {}

  public var isRoot: Bool { names.isEmpty }

  /// Whether `name` may be one name of a path: not empty, ".", "..", at most 255 bytes, no "/" or NUL.
  public static func isValidName(_ name: [UInt8]) -> Bool {
    !name.isEmpty && name.count <= 255 && name != [0x2E] && name != [0x2E, 0x2E] && !name.contains(0x2F)
      && !name.contains(0)
  }

  /// This path with `name` appended (a name ``isValidName(_:)`` accepts).
  public func appending(_ name: [UInt8]) -> SharePath {
    var path = self
    path.names.append(name)
    return path
  }

  /// The parent (the root's parent is the root: ".." never leaves the share).
  public var parent: SharePath {
    var path = self
    _ = path.names.popLast()
    return path
  }

  /// Whether `self` is `prefix` or inside it.
  public func hasPrefix(_ prefix: SharePath) -> Bool {
    names.count >= prefix.names.count && Array(names.prefix(prefix.names.count)) == prefix.names
  }

  /// `self` with its leading `prefix` replaced by `replacement` (a rename moved it).
  public func replacingPrefix(_ prefix: SharePath, with replacement: SharePath) -> SharePath {
    var path = replacement
    path.names += names.dropFirst(prefix.names.count)
    return path
  }

  /// The relative path's bytes ("." for the root), for the *at calls.
  func withRelativePath<R>(_ body: (UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
    var bytes: [UInt8] = names.isEmpty ? [0x2E] : []
    for (index, name) in names.enumerated() {
      if index > 0 { bytes.append(0x2F) }
      bytes += name
    }
    bytes.append(0)
    return try bytes.withCString(body)
  }
}

/// Calls `body` with `name` as a C string.
@discardableResult
func withCName<R>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
  try (name + [0]).withCString(body)
}

// The standard library's closure-taking calls rethrow untyped errors: these keep Errno typed.
extension Array where Element == UInt8 {
  /// `body` with the bytes (NUL-terminated by the caller) as a C string.
  func withCString<R>(_ body: (UnsafePointer<CChar>) throws(Errno) -> R) throws(Errno) -> R {
    let result = withUnsafeBufferPointer { buffer in
      buffer.withMemoryRebound(to: CChar.self) { chars in Result { () throws(Errno) in try body(chars.baseAddress!) } }
    }
    return try result.get()
  }

  mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> R) throws(Errno) -> R {
    let result = withUnsafeMutableBytes { bytes in Result { () throws(Errno) in try body(bytes) } }
    return try result.get()
  }
}

extension ArraySlice where Element == UInt8 {
  func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(Errno) -> R) throws(Errno) -> R {
    let result = withUnsafeBytes { bytes in Result { () throws(Errno) in try body(bytes) } }
    return try result.get()
  }
}

/// A host directory a guest reaches through 9P. Every path is resolved by `openat2(2)` beneath the
/// directory's descriptor with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a symlink, however the
/// guest made it, is followed only while it stays inside (an absolute one, or one whose ".." leads
/// out, fails with EXDEV), and /proc's magic links are refused. Operations on a path's last name go
/// through its parent's descriptor with the *at calls, which never follow that name.
public final class SharedDirectory: Sendable {
  public let path: String
  public let readOnly: Bool
  private let root: FileDescriptor
  private let rootDevice: UInt64

  /// Opens `path` (which must be a directory).
  public init(path: String, readOnly: Bool) throws(Errno) {
    self.path = path
    self.readOnly = readOnly
    let fd = retryingOnInterrupt { Glibc.open(path, Int32(cninep_o_path) | O_DIRECTORY | O_CLOEXEC) }
    guard fd >= 0 else { throw .current }
    root = FileDescriptor(rawValue: fd)
    do {
      rootDevice = UInt64(try root.status().st_dev)
    } catch {
      root.close()
      throw error
    }
  }

  deinit {
    root.close()
  }

  static let resolve = cninep_resolve_beneath | cninep_resolve_no_magiclinks

  /// Opens `path` beneath the share with `flags` (O_CLOEXEC added).
  public func open(_ path: SharePath, flags: Int32, mode: UInt32 = 0) throws(Errno) -> FileDescriptor {
    try path.withRelativePath { relative throws(Errno) in try Self.open(relative, beneath: root, flags: flags, mode: mode) }
  }

  static func open(
    _ path: UnsafePointer<CChar>, beneath directory: FileDescriptor, flags: Int32, mode: UInt32 = 0
  ) throws(Errno) -> FileDescriptor {
    let fd = retryingOnInterrupt {
      cninep_openat2(directory.rawValue, path, UInt64(UInt32(bitPattern: flags | O_CLOEXEC)), UInt64(mode), resolve)
    }
    guard fd >= 0 else { throw .current }
    return FileDescriptor(rawValue: fd)
  }

  /// An O_PATH descriptor for `path` itself (a symlink is not followed), for `body`.
  public func withHandle<R>(_ path: SharePath, _ body: (FileDescriptor) throws(Errno) -> R) throws(Errno) -> R {
    let fd = try open(path, flags: Int32(cninep_o_path) | O_NOFOLLOW)
    defer { fd.close() }
    return try body(fd)
  }

  /// `path`'s status (lstat: a symlink's own).
  public func status(_ path: SharePath) throws(Errno) -> stat {
    try withHandle(path) { fd throws(Errno) in try fd.status() }
  }

  /// The directory `path` (O_PATH) for `body`: where a new name is made or an old one removed.
  @discardableResult
  public func withDirectory<R>(_ path: SharePath, _ body: (FileDescriptor) throws(Errno) -> R) throws(Errno) -> R {
    let fd = try open(path, flags: Int32(cninep_o_path) | O_DIRECTORY)
    defer { fd.close() }
    return try body(fd)
  }

  /// Refuses a change in a read-only share.
  public func checkWritable() throws(Errno) {
    if readOnly { throw Errno(rawValue: EROFS) }
  }

  /// The qid of a file with status `status`: its type, and its inode (mixed with its device when
  /// it lies on another filesystem mounted inside the share).
  public func qid(_ status: stat) -> NinePQid {
    let type: UInt8
    switch status.st_mode & S_IFMT {
    case S_IFDIR: type = NinePQid.directory
    case S_IFLNK: type = NinePQid.symlink
    default: type = NinePQid.file
    }
    let device = UInt64(status.st_dev)
    let inode = UInt64(status.st_ino)
    return NinePQid(type: type, path: device == rootDevice ? inode : inode ^ (device << 48))
  }

  /// The qid of a directory entry (getdents64's inode and type).
  func qid(inode: UInt64, direntType: UInt8) -> NinePQid {
    let type: UInt8 = direntType == 4 ? NinePQid.directory : direntType == 10 ? NinePQid.symlink : NinePQid.file
    return NinePQid(type: type, path: inode)
  }

  /// statfs(2) of the filesystem holding `path`.
  func fileSystemStatus(_ path: SharePath) throws(Errno) -> cninep_statfs {
    try withHandle(path) { fd throws(Errno) in
      var result = cninep_statfs()
      guard cninep_fstatfs(fd.rawValue, &result) == 0 else { throw .current }
      return result
    }
  }
}

/// Runs a system call that returns -1 and sets errno on failure; retries on EINTR.
@discardableResult
func check<T: FixedWidthInteger & SignedInteger>(_ body: () -> T) throws(Errno) -> T {
  let result = retryingOnInterrupt(body)
  guard result >= 0 else { throw .current }
  return result
}
