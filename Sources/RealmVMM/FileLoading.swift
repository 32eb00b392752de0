#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A boot file (kernel, initrd, firmware) mapped read-only: its size is checked against `limit`
/// before anything is read, its header can be checked by touching one page, and its bytes go from
/// the page cache straight into guest RAM instead of through a copy in realm-run's own memory.
public final class MappedImage: @unchecked Sendable {  // immutable after init
  public let path: String
  /// The file's bytes (empty for an empty file).
  public let bytes: UnsafeRawBufferPointer

  /// Maps the regular file at `path`; `what` names it in errors ("the kernel").
  init(_ path: String, what: String, limit: UInt64) throws(VMMError) {
    self.path = path
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw .file(path: path, errno: errno, action: "open \(what)") }
    defer { close(fd) }  // the mapping stays valid without the descriptor
    var status = stat()
    guard fstat(fd, &status) == 0 else { throw .file(path: path, errno: errno, action: "read \(what)") }
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw .invalidImage(path: path, reason: "\(what) is not a regular file")
    }
    let size = UInt64(status.st_size)
    guard size <= limit else {
      throw .invalidImage(path: path, reason: "\(what) is \(size >> 20) MiB, larger than guest RAM (\(limit >> 20) MiB); raise --mem")
    }
    guard size > 0 else {
      bytes = UnsafeRawBufferPointer(start: nil, count: 0)
      return
    }
    let address = mmap(nil, Int(size), PROT_READ, MAP_PRIVATE, fd, 0)
    guard let address, address != MAP_FAILED else { throw .file(path: path, errno: errno, action: "map \(what)") }
    bytes = UnsafeRawBufferPointer(start: address, count: Int(size))
  }

  deinit {
    if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
  }
}

/// Writes `bytes` to `path` (created or truncated).
func writeFile(_ path: String, _ bytes: [UInt8], what: String) throws(VMMError) {
  let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
  guard fd >= 0 else { throw .file(path: path, errno: errno, action: "create \(what)") }
  defer { close(fd) }
  var done = 0
  while done < bytes.count {
    let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
    if count < 0 && errno == EINTR { continue }
    guard count > 0 else { throw .file(path: path, errno: errno, action: "write \(what)") }
    done += count
  }
}
