import CLibAIO
import Platform

/// Why a disk image could not be opened. Each has a one-line description naming the file.
public enum BlockFileError: Error, Equatable, CustomStringConvertible {
  case missing(path: String)
  case permission(path: String, readOnly: Bool)
  /// Another process (another VMM) holds a conflicting lock on the image.
  case locked(path: String)
  /// The same file (device and inode) was given as two disks.
  case givenTwice(path: String, earlier: String)
  case notADisk(path: String)
  case directUnsupported(path: String)
  case system(path: String, action: String, errno: Errno)

  public var description: String {
    switch self {
    case .missing(let path):
      return "disk image \(path) does not exist"
    case .permission(let path, let readOnly):
      return "cannot open disk image \(path) for \(readOnly ? "reading" : "reading and writing"): permission denied\(readOnly ? "" : " (add ,ro for a read-only disk)")"
    case .locked(let path):
      return "disk image \(path) is in use by another process (QEMU or another realm-run holds a lock on it)"
    case .givenTwice(let path, let earlier):
      return path == earlier
        ? "disk image \(path) is given twice; give each disk once"
        : "disk images \(earlier) and \(path) are the same file; give each disk once"
    case .notADisk(let path):
      return "disk image \(path) is not a regular file or block device"
    case .directUnsupported(let path):
      return "disk image \(path): its file system does not support O_DIRECT (drop ,direct)"
    case .system(let path, let action, let errno):
      return "cannot \(action) disk image \(path): \(errno)"
    }
  }
}

/// An open disk image: descriptor, size, and QEMU's advisory image locks (see ``ImageLock``), so
/// that neither QEMU nor another realm-run writes an image realm-run uses, nor reads one it writes.
public final class BlockFile: @unchecked Sendable {
  public let path: String
  public let fd: FileDescriptor
  public let readOnly: Bool
  public let direct: Bool
  /// Size in bytes (a partial last sector is not visible to the guest).
  public let size: UInt64
  /// Whether `fallocate(PUNCH_HOLE)` works here (discard).
  public let canPunchHoles: Bool
  /// Stable id: device and inode numbers.
  public let identity: (device: UInt64, inode: UInt64)

  public init(path: String, readOnly: Bool, direct: Bool = false) throws(BlockFileError) {
    self.path = path
    self.readOnly = readOnly
    self.direct = direct
    var flags = readOnly ? O_RDONLY : O_RDWR
    if direct { flags |= clibaio_o_direct }
    let fd: FileDescriptor
    do {
      fd = try .open(path, flags)
    } catch {
      switch error {
      case ENOENT: throw .missing(path: path)
      case EACCES, EPERM, EROFS: throw .permission(path: path, readOnly: readOnly)
      case EINVAL where direct: throw .directUnsupported(path: path)
      default: throw .system(path: path, action: "open", errno: error)
      }
    }
    let info: stat
    let end: Int64
    do throws(BlockFileError) {
      do { info = try fd.status() } catch { throw .system(path: path, action: "stat", errno: error) }
      guard Self.isDisk(info) else { throw .notADisk(path: path) }
      switch ImageLock.acquire(fd, write: !readOnly) {
      case .acquired: break
      case .conflict: throw .locked(path: path)
      case .failed(let error): throw .system(path: path, action: "lock", errno: error)
      }
      do { end = try fd.seek(to: 0, from: SEEK_END) } catch { throw .system(path: path, action: "find the size of", errno: error) }
    } catch {
      fd.close()
      throw error
    }
    self.fd = fd
    size = UInt64(end)
    identity = (UInt64(info.st_dev), UInt64(info.st_ino))
    // Punching a hole past the end changes nothing, and tells whether the file system can.
    canPunchHoles = !readOnly && info.st_mode & S_IFMT == S_IFREG
      && clibaio_fallocate(fd.rawValue, clibaio_falloc_punch_hole | clibaio_falloc_keep_size, end, 4096) == 0
  }

  deinit {
    fd.close()  // also drops the locks
  }

  /// Checks that `path` names a disk image realm-run could open (it exists, is a regular file or a
  /// block device, and can be read), without opening it as a disk or locking it: what `measure`
  /// needs of its `--disk` options.
  public static func check(path: String) throws(BlockFileError) {
    let fd: FileDescriptor
    do {
      fd = try .open(path, O_RDONLY)
    } catch {
      switch error {
      case ENOENT: throw .missing(path: path)
      case EACCES, EPERM: throw .permission(path: path, readOnly: true)
      default: throw .system(path: path, action: "open", errno: error)
      }
    }
    defer { fd.close() }
    let info: stat
    do { info = try fd.status() } catch { throw .system(path: path, action: "stat", errno: error) }
    guard isDisk(info) else { throw .notADisk(path: path) }
  }

  /// Whether a file of this kind can back a disk.
  static func isDisk(_ info: stat) -> Bool {
    let kind = info.st_mode & S_IFMT
    return kind == S_IFREG || kind == S_IFBLK
  }

  /// The device and inode numbers of the file at `path`, or nil if it cannot be stat'ed (opening it
  /// then says why).
  public static func identity(of path: String) -> (device: UInt64, inode: UInt64)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (UInt64(info.st_dev), UInt64(info.st_ino))
  }

  /// Flushes written data to stable storage.
  public func sync() -> Bool { readOnly || (try? fd.syncData()) != nil }
}

/// QEMU's disk image locking (block/file-posix.c), so that QEMU and realm-run see each other's use
/// of an image: shared open-file-description locks on one byte per block permission, at 100 + bit
/// for a permission held and at 200 + bit for one not shared with others. Locks are taken first and
/// checked after, as QEMU does, so two processes starting at once cannot both pass.
///
/// realm-run takes what QEMU's virtio-blk takes: read (and write, for a writable disk), sharing
/// read, unchanged writes and resizing, but not writing. So a second writer is refused, and so is a
/// writer while realm-run reads, or a reader that wants no writers while realm-run writes.
enum ImageLock {
  /// QEMU's permission bits (include/block/block-common.h) that realm-run locks.
  enum Permission {
    static let consistentRead = 0
    static let write = 1
  }
  static let heldBase: Int64 = 100
  static let unsharedBase: Int64 = 200

  enum Result: Equatable {
    case acquired
    case conflict
    case failed(errno: Errno)
  }

  /// Takes realm-run's locks on `fd` and checks that no other open file conflicts with them.
  /// The locks last as long as the open file (closing it drops them).
  static func acquire(_ fd: FileDescriptor, write: Bool) -> Result {
    let held = write ? [Permission.consistentRead, Permission.write] : [Permission.consistentRead]
    let unshared = [Permission.write]
    for byte in held.map({ heldBase + Int64($0) }) + unshared.map({ unsharedBase + Int64($0) }) {
      let status = clibaio_ofd_share_byte(fd.rawValue, byte)
      if status == -EAGAIN || status == -EACCES { return .conflict }
      if status < 0 { return .failed(errno: Errno(rawValue: -status)) }
    }
    // Conflicts: someone who does not share a permission realm-run holds, or holds one it does not share.
    for byte in held.map({ unsharedBase + Int64($0) }) + unshared.map({ heldBase + Int64($0) }) {
      let status = clibaio_ofd_byte_is_locked(fd.rawValue, byte)
      if status < 0 { return .failed(errno: Errno(rawValue: -status)) }
      if status == 1 { return .conflict }
    }
    return .acquired
  }
}
