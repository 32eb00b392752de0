import Platform

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
    let fd: FileDescriptor
    do { fd = try .open(path, O_RDONLY) } catch { throw .file(path: path, errno: error, action: "open \(what)") }
    defer { fd.close() }  // the mapping stays valid without the descriptor
    let status: stat
    do { status = try fd.status() } catch { throw .file(path: path, errno: error, action: "read \(what)") }
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
    let address = mmap(nil, Int(size), PROT_READ, MAP_PRIVATE, fd.rawValue, 0)
    guard let address, address != MAP_FAILED else { throw .file(path: path, errno: .current, action: "map \(what)") }
    bytes = UnsafeRawBufferPointer(start: address, count: Int(size))
  }

  /// Drops the pages holding `range` of the file from this process (the page cache keeps them;
  /// reading them again faults them back in): what has been placed or hashed need not stay.
  public func release(_ range: Range<Int>) {
    guard let base = bytes.baseAddress, !range.isEmpty, range.upperBound <= bytes.count else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = range.lowerBound / page * page
    let end = min((range.upperBound + page - 1) / page * page, (bytes.count + page - 1) / page * page)
    madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
  }

  deinit {
    if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
  }
}
