#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads a whole regular file, refusing directories and anything larger than `limit` bytes.
func readFile(_ path: String, what: String, limit: UInt64) throws(VMMError) -> [UInt8] {
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else { throw .file(path: path, errno: errno, action: "open \(what)") }
  defer { close(fd) }
  var status = stat()
  guard fstat(fd, &status) == 0 else { throw .file(path: path, errno: errno, action: "read \(what)") }
  guard status.st_mode & S_IFMT == S_IFREG else {
    throw .invalidImage(path: path, reason: "\(what) is not a regular file")
  }
  let size = UInt64(status.st_size)
  guard size <= limit else {
    throw .invalidImage(path: path, reason: "\(what) is \(size >> 20) MiB, larger than guest RAM (\(limit >> 20) MiB); raise --mem")
  }
  var bytes = [UInt8](repeating: 0, count: Int(size))
  var done = 0
  while done < bytes.count {
    let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
    if count < 0 && errno == EINTR { continue }
    guard count > 0 else {
      throw .file(path: path, errno: count < 0 ? errno : EIO, action: "read \(what)")
    }
    done += count
  }
  return bytes
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
