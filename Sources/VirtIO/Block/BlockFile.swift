import CLibAIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a disk image could not be opened. Each has a one-line description naming the file.
public enum BlockFileError: Error, Equatable, CustomStringConvertible {
  case missing(path: String)
  case permission(path: String, readOnly: Bool)
  /// Another process (another VMM) holds a conflicting lock on the image.
  case locked(path: String)
  case notADisk(path: String)
  case directUnsupported(path: String)
  case system(path: String, action: String, errno: Int32)

  public var description: String {
    switch self {
    case .missing(let path):
      return "disk image \(path) does not exist"
    case .permission(let path, let readOnly):
      return "cannot open disk image \(path) for \(readOnly ? "reading" : "reading and writing"): permission denied\(readOnly ? "" : " (add ,ro for a read-only disk)")"
    case .locked(let path):
      return "disk image \(path) is in use by another process (it holds a lock on it)"
    case .notADisk(let path):
      return "disk image \(path) is not a regular file or block device"
    case .directUnsupported(let path):
      return "disk image \(path): its file system does not support O_DIRECT (drop ,direct)"
    case .system(let path, let action, let errno):
      return "cannot \(action) disk image \(path): \(String(cString: strerror(errno)))"
    }
  }
}

/// An open disk image: descriptor, size, advisory lock (`flock`: exclusive for read-write, shared
/// for read-only, so two VMMs cannot write one image).
public final class BlockFile: @unchecked Sendable {
  public let path: String
  public let fd: Int32
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
    var flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
    if direct { flags |= clibaio_o_direct }
    let fd = open(path, flags)
    guard fd >= 0 else {
      switch errno {
      case ENOENT: throw .missing(path: path)
      case EACCES, EPERM, EROFS: throw .permission(path: path, readOnly: readOnly)
      case EINVAL where direct: throw .directUnsupported(path: path)
      case let error: throw .system(path: path, action: "open", errno: error)
      }
    }
    var info = stat()
    guard fstat(fd, &info) == 0 else {
      let error = errno
      close(fd)
      throw .system(path: path, action: "stat", errno: error)
    }
    let kind = info.st_mode & S_IFMT
    guard kind == S_IFREG || kind == S_IFBLK else {
      close(fd)
      throw .notADisk(path: path)
    }
    guard flock(fd, readOnly ? LOCK_SH | LOCK_NB : LOCK_EX | LOCK_NB) == 0 else {
      let error = errno
      close(fd)
      if error == EWOULDBLOCK { throw .locked(path: path) }
      throw .system(path: path, action: "lock", errno: error)
    }
    let end = lseek(fd, 0, SEEK_END)
    guard end >= 0 else {
      let error = errno
      close(fd)
      throw .system(path: path, action: "find the size of", errno: error)
    }
    self.fd = fd
    size = UInt64(end)
    identity = (UInt64(info.st_dev), UInt64(info.st_ino))
    // Punching a hole past the end changes nothing, and tells whether the file system can.
    canPunchHoles = !readOnly && kind == S_IFREG
      && clibaio_fallocate(fd, clibaio_falloc_punch_hole | clibaio_falloc_keep_size, Int64(end), 4096) == 0
  }

  deinit {
    close(fd)  // also drops the lock
  }

  /// Flushes written data to stable storage.
  public func sync() -> Bool { readOnly || fdatasync(fd) == 0 }
}
