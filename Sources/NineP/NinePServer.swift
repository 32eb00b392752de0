import CNineP
import Platform

/// A 9P2000.L file server over one ``SharedDirectory``: enough for Linux's `9p` filesystem
/// (`trans=virtio,version=9p2000.L`) to read, write, create, rename, stat, list, link and symlink.
///
/// The client is a guest and untrusted. It names files only by fids the server gave out, each a
/// ``SharePath`` (names it checked, and ".." that stops at the root), and the directory resolves
/// every path again in the kernel, beneath the share. Message sizes (``maxMessageSize``), fids
/// (``maxFids``), walk lengths and names are bounded; every request that breaks a rule gets
/// Rlerror with an errno, never a crash. Device nodes cannot be made.
///
/// Not thread-safe: one request at a time (the virtio device serialises them).
public final class NinePServer {
  /// The largest msize the server agrees to: Rread's data then fits in at most this.
  public static let maxMessageSize: UInt32 = 512 << 10
  /// The smallest msize a client may ask for (as QEMU: a Rreaddir must fit an entry).
  public static let minMessageSize: UInt32 = 4096
  /// The most fids a client may hold at once; open ones hold a host descriptor each.
  public static let maxFids = 4096
  public static let protocolVersion = Array("9P2000.L".utf8)

  public let directory: SharedDirectory
  /// The msize agreed by Tversion; 0 until then (every other request is refused).
  public private(set) var messageSize: UInt32 = 0
  private var fids: [UInt32: Fid] = [:]

  /// What a fid stands for.
  struct Fid {
    var path: SharePath
    /// After Tlopen or Tlcreate: the open file.
    var file: FileDescriptor?
    var isDirectory = false
  }

  public init(directory: SharedDirectory) {
    self.directory = directory
  }

  deinit {
    closeAll()
  }

  /// Fids the client holds.
  public var fidCount: Int { fids.count }

  private func closeAll() {
    for fid in fids.values { fid.file?.close() }
    fids = [:]
  }

  /// Answers one request message with its reply message (Rlerror when it fails or does not decode).
  public func handle(_ message: ArraySlice<UInt8>) -> [UInt8] {
    let tag = NinePMessage.tag(of: message) ?? NinePWire.noTag
    do throws(Errno) {
      let decoded: NinePMessage
      do {
        decoded = try NinePMessage.decode(message)
      } catch {
        throw Errno(rawValue: EPROTO)
      }
      var reply = NinePWriter(type: decoded.request.messageType.reply, tag: tag)
      try answer(decoded.request, into: &reply)
      return reply.finish()
    } catch {
      return errorReply(to: message, errno: error.rawValue)
    }
  }

  /// Rlerror(`errno`) for `message` (its tag when its header is whole).
  public func errorReply(to message: ArraySlice<UInt8>, errno: Int32) -> [UInt8] {
    var reply = NinePWriter(type: NinePRequest.MessageType.errorReply, tag: NinePMessage.tag(of: message) ?? NinePWire.noTag)
    reply.u32(UInt32(bitPattern: errno))
    return reply.finish()
  }

  // MARK: - Requests

  private func answer(_ request: NinePRequest, into reply: inout NinePWriter) throws(Errno) {
    if case .version(let size, let version) = request {
      // A new session: every fid of the old one is gone.
      closeAll()
      guard size >= Self.minMessageSize else { throw Errno(rawValue: EINVAL) }
      messageSize = min(size, Self.maxMessageSize)
      reply.u32(messageSize)
      reply.string(version == Self.protocolVersion ? Self.protocolVersion : Array("unknown".utf8))
      if version != Self.protocolVersion { messageSize = 0 }
      return
    }
    guard messageSize > 0 else { throw Errno(rawValue: EPROTO) }
    switch request {
    case .version: break
    case .attach(let fid, _, _, _, _):
      try addFid(fid, Fid(path: SharePath()))
      reply.qid(directory.qid(try directory.status(SharePath())))
    case .flush:
      break  // requests are answered in order, one at a time: none is left to cancel
    case .walk(let fid, let newFid, let names):
      try walk(fid: fid, newFid: newFid, names: names, into: &reply)
    case .lopen(let fid, let flags):
      try open(fid: fid, flags: flags, into: &reply)
    case .lcreate(let fid, let name, let flags, let mode, _):
      try create(fid: fid, name: name, flags: flags, mode: mode, into: &reply)
    case .symlink(let fid, let name, let target, _):
      try directory.checkWritable()
      guard !target.isEmpty, !target.contains(0), target.count <= 4095 else { throw Errno(rawValue: EINVAL) }
      let path = try newName(name, in: fid)
      try directory.withDirectory(path.parent) { parent throws(Errno) in
        try withCName(target) { target throws(Errno) in
          try withCName(name) { name throws(Errno) in try check { symlinkat(target, parent.rawValue, name) } }
        }
      }
      reply.qid(directory.qid(try directory.status(path)))
    case .mknod(let fid, let name, let mode, _, _, _):
      try directory.checkWritable()
      // Regular files, FIFOs and sockets only: a device node would reach past the share.
      let type = mode & 0o170000
      guard type == 0o100000 || type == 0o010000 || type == 0o140000 else {  // S_IFREG, S_IFIFO, S_IFSOCK
        throw Errno(rawValue: EPERM)
      }
      let path = try newName(name, in: fid)
      try directory.withDirectory(path.parent) { parent throws(Errno) in
        try withCName(name) { name throws(Errno) in
          try check { mknodat(parent.rawValue, name, mode_t(type | (mode & 0o7777)), 0) }
        }
      }
      reply.qid(directory.qid(try directory.status(path)))
    case .mkdir(let fid, let name, let mode, _):
      try directory.checkWritable()
      let path = try newName(name, in: fid)
      try directory.withDirectory(path.parent) { parent throws(Errno) in
        try withCName(name) { name throws(Errno) in try check { mkdirat(parent.rawValue, name, mode_t(mode & 0o7777)) } }
      }
      reply.qid(directory.qid(try directory.status(path)))
    case .rename(let fid, let directoryFid, let name):
      let from = try self.fid(fid).path
      guard !from.isRoot else { throw Errno(rawValue: EBUSY) }
      try move(from, to: try newName(name, in: directoryFid))
    case .renameat(let oldDirectory, let oldName, let newDirectory, let newName):
      try move(try self.newName(oldName, in: oldDirectory), to: try self.newName(newName, in: newDirectory))
    case .link(let directoryFid, let fid, let name):
      try directory.checkWritable()
      let target = try self.fid(fid).path
      guard !target.isRoot else { throw Errno(rawValue: EPERM) }
      let path = try newName(name, in: directoryFid)
      try inParent(of: target) { oldParent, oldName throws(Errno) in
        try directory.withDirectory(path.parent) { newParent throws(Errno) in
          try withCName(name) { newName throws(Errno) in
            try check { linkat(oldParent.rawValue, oldName, newParent.rawValue, newName, 0) }
          }
        }
      }
    case .unlinkat(let fid, let name, let flags):
      try directory.checkWritable()
      let path = try newName(name, in: fid)
      try unlink(path, directory: flags & UInt32(AT_REMOVEDIR) != 0)
    case .remove(let fid):
      // The fid is clunked whether or not the removal succeeds.
      let removed = try self.fid(fid)
      removed.file?.close()
      fids[fid] = nil
      try directory.checkWritable()
      guard !removed.path.isRoot else { throw Errno(rawValue: EBUSY) }
      let status = try directory.status(removed.path)
      try unlink(removed.path, directory: status.st_mode & 0o170000 == 0o040000)
    case .readlink(let fid):
      let path = try self.fid(fid).path
      let target = try directory.withHandle(path) { handle throws(Errno) -> [UInt8] in
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = try buffer.withMutableBytes { bytes throws(Errno) in
          try check { readlinkat(handle.rawValue, "", bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count) }
        }
        return Array(buffer.prefix(count))
      }
      reply.string(target)
    case .getattr(let fid, _):
      let entry = try self.fid(fid)
      let status: stat
      if let file = entry.file { status = try file.status() } else { status = try directory.status(entry.path) }
      encodeAttributes(status, into: &reply)
    case .setattr(let fid, let attributes):
      try setAttributes(attributes, of: try self.fid(fid))
    case .xattrwalk, .xattrcreate:
      throw Errno(rawValue: EOPNOTSUPP)  // no extended attributes through the share
    case .readdir(let fid, let offset, let count):
      try readDirectory(fid: fid, offset: offset, count: count, into: &reply)
    case .read(let fid, let offset, let count):
      guard let file = try self.fid(fid).file, offset <= UInt64(Int64.max) else { throw Errno(rawValue: EBADF) }
      let room = min(Int(count), Int(messageSize) - NinePWire.readOverhead)
      let countOffset = reply.count
      reply.u32(0)
      try reply.append(upTo: room) { buffer throws(Errno) in
        try check { pread(file.rawValue, buffer.baseAddress!, buffer.count, off_t(offset)) }
      }
      reply.patch(u32: UInt32(reply.count - countOffset - 4), at: countOffset)
    case .write(let fid, let offset, let data):
      try directory.checkWritable()
      guard let file = try self.fid(fid).file, offset <= UInt64(Int64.max) else { throw Errno(rawValue: EBADF) }
      let written = try data.withBytes { bytes throws(Errno) in
        try check { pwrite(file.rawValue, bytes.baseAddress, bytes.count, off_t(offset)) }
      }
      reply.u32(UInt32(written))
    case .fsync(let fid, let dataOnly):
      guard let file = try self.fid(fid).file else { throw Errno(rawValue: EBADF) }
      if dataOnly { try file.syncData() } else { try file.sync() }
    case .lock:
      reply.u8(0)  // granted: locks are the guest's own business (as QEMU's server answers)
    case .getlock(_, _, let start, let length, let processID, let clientID):
      reply.u8(UInt8(F_UNLCK))
      reply.u64(start)
      reply.u64(length)
      reply.u32(processID)
      reply.string(clientID)
    case .statfs(let fid):
      let status = try directory.fileSystemStatus(try self.fid(fid).path)
      reply.u32(status.type)
      reply.u32(status.bsize)
      for value in [status.blocks, status.bfree, status.bavail, status.files, status.ffree, status.fsid] { reply.u64(value) }
      reply.u32(status.namelen)
    case .clunk(let fid):
      try self.fid(fid).file?.close()
      fids[fid] = nil
    }
  }

  // MARK: - Fids

  private func fid(_ number: UInt32) throws(Errno) -> Fid {
    guard let fid = fids[number] else { throw Errno(rawValue: EBADF) }
    return fid
  }

  private func addFid(_ number: UInt32, _ fid: Fid) throws(Errno) {
    guard number != NinePWire.noFid, fids[number] == nil else { throw Errno(rawValue: EBADF) }
    guard fids.count < Self.maxFids else { throw Errno(rawValue: EMFILE) }
    fids[number] = fid
  }

  /// The path of new name `name` in the directory fid `number` names (checked: one plain name).
  private func newName(_ name: [UInt8], in number: UInt32) throws(Errno) -> SharePath {
    guard SharePath.isValidName(name) else { throw Errno(rawValue: EINVAL) }
    return try fid(number).path.appending(name)
  }

  private func walk(fid number: UInt32, newFid: UInt32, names: [[UInt8]], into reply: inout NinePWriter) throws(Errno) {
    let start = try fid(number)
    if newFid != number, fids[newFid] != nil { throw Errno(rawValue: EBADF) }
    var path = start.path
    var qids: [NinePQid] = []
    for name in names {
      var next = path
      if name == [0x2E, 0x2E] {
        next = path.parent
      } else if name != [0x2E] {
        guard SharePath.isValidName(name) else {
          if qids.isEmpty { throw Errno(rawValue: EINVAL) }
          break
        }
        next = path.appending(name)
      }
      do {
        qids.append(directory.qid(try directory.status(next)))
      } catch {
        // The first name must resolve; after it, the walk stops where it failed (and makes no fid).
        if qids.isEmpty { throw error }
        break
      }
      path = next
    }
    if qids.count == names.count {
      if newFid == number {
        fids[number]?.path = path
      } else {
        try addFid(newFid, Fid(path: path))
      }
    }
    reply.u16(UInt16(qids.count))
    for qid in qids { reply.qid(qid) }
  }

  private func open(fid number: UInt32, flags: UInt32, into reply: inout NinePWriter) throws(Errno) {
    var entry = try fid(number)
    guard entry.file == nil else { throw Errno(rawValue: EBADF) }
    let hostFlags = try Self.hostOpenFlags(flags, readOnly: directory.readOnly)
    let file = try directory.open(entry.path, flags: hostFlags)
    do throws(Errno) {
      let status = try file.status()
      entry.file = file
      entry.isDirectory = status.st_mode & 0o170000 == 0o040000
      fids[number] = entry
      reply.qid(directory.qid(status))
      reply.u32(0)  // iounit: the client's msize bounds each transfer
    } catch {
      file.close()
      throw error
    }
  }

  private func create(fid number: UInt32, name: [UInt8], flags: UInt32, mode: UInt32, into reply: inout NinePWriter)
    throws(Errno)
  {
    try directory.checkWritable()
    var entry = try fid(number)
    guard entry.file == nil else { throw Errno(rawValue: EBADF) }
    let path = try newName(name, in: number)
    let hostFlags = try Self.hostOpenFlags(flags, readOnly: false) | O_CREAT
    let file = try directory.withDirectory(entry.path) { parent throws(Errno) in
      try withCName(name) { name throws(Errno) in
        try SharedDirectory.open(name, beneath: parent, flags: hostFlags & ~O_DIRECTORY, mode: mode & 0o7777)
      }
    }
    do throws(Errno) {
      let status = try file.status()
      entry = Fid(path: path, file: file, isDirectory: false)
      fids[number] = entry
      reply.qid(directory.qid(status))
      reply.u32(0)
    } catch {
      file.close()
      throw error
    }
  }

  /// Linux's open flags as 9P2000.L encodes them (the x86 numbering on every architecture) turned
  /// into this host's: access mode, O_TRUNC, O_APPEND, O_EXCL, O_DSYNC, O_SYNC and O_DIRECTORY kept;
  /// O_DIRECT and O_NOATIME dropped (as QEMU does); O_NOFOLLOW and O_NONBLOCK always added (the
  /// server never follows a last-name symlink, and never waits on a FIFO).
  static func hostOpenFlags(_ flags: UInt32, readOnly: Bool) throws(Errno) -> Int32 {
    let access = flags & 3
    guard access != 3 else { throw Errno(rawValue: EINVAL) }
    var host = Int32(access) | O_NOFOLLOW | O_NONBLOCK
    let mapped: [(UInt32, Int32)] = [
      (0o200, O_EXCL), (0o1000, O_TRUNC), (0o2000, O_APPEND), (0o10000, O_DSYNC), (0o4010000, O_SYNC),
      (0o200000, O_DIRECTORY),
    ]
    for (dotl, flag) in mapped where flags & dotl == dotl { host |= flag }
    if readOnly, access != 0 || flags & (0o1000 | 0o2000 | 0o100) != 0 { throw Errno(rawValue: EROFS) }
    return host
  }

  // MARK: - Changes

  /// Calls `body` with `path`'s parent directory and last name.
  @discardableResult
  private func inParent<R>(of path: SharePath, _ body: (FileDescriptor, UnsafePointer<CChar>) throws(Errno) -> R)
    throws(Errno) -> R
  {
    guard let name = path.names.last else { throw Errno(rawValue: EBUSY) }
    return try directory.withDirectory(path.parent) { parent throws(Errno) in
      try withCName(name) { name throws(Errno) in try body(parent, name) }
    }
  }

  private func move(_ from: SharePath, to destination: SharePath) throws(Errno) {
    try directory.checkWritable()
    try inParent(of: from) { oldParent, oldName throws(Errno) in
      try inParent(of: destination) { newParent, newName throws(Errno) in
        try check { renameat(oldParent.rawValue, oldName, newParent.rawValue, newName) }
      }
    }
    // Fids at or under the old name follow the file.
    for (number, entry) in fids where entry.path.hasPrefix(from) {
      fids[number]?.path = entry.path.replacingPrefix(from, with: destination)
    }
  }

  private func unlink(_ path: SharePath, directory isDirectory: Bool) throws(Errno) {
    try inParent(of: path) { parent, name throws(Errno) in
      try check { unlinkat(parent.rawValue, name, isDirectory ? AT_REMOVEDIR : 0) }
    }
  }

  private func setAttributes(_ attributes: NinePSetAttributes, of entry: Fid) throws(Errno) {
    let valid = attributes.valid
    let changes: NinePSetAttributes.Valid = [.mode, .uid, .gid, .size, .accessTime, .modificationTime]
    guard !valid.isDisjoint(with: changes) else { return }  // ctime alone: nothing to do
    try directory.checkWritable()
    try directory.withHandle(entry.path) { handle throws(Errno) in
      let isSymlink = try handle.status().st_mode & S_IFMT == S_IFLNK
      if valid.contains(.mode) {
        // chmod(2) follows symlinks, and a symlink has no mode of its own to set.
        guard !isSymlink else { throw Errno(rawValue: EOPNOTSUPP) }
        try check { fchmodat(AT_FDCWD, "/proc/self/fd/\(handle.rawValue)", mode_t(attributes.mode & 0o7777), 0) }
      }
      if valid.contains(.uid) || valid.contains(.gid) {
        let uid = valid.contains(.uid) ? uid_t(attributes.uid) : uid_t.max
        let gid = valid.contains(.gid) ? gid_t(attributes.gid) : gid_t.max
        try check { fchownat(handle.rawValue, "", uid, gid, Int32(cninep_at_empty_path) | AT_SYMLINK_NOFOLLOW) }
      }
      if valid.contains(.size) {
        guard !isSymlink, attributes.size <= UInt64(Int64.max) else { throw Errno(rawValue: EINVAL) }
        let file = try directory.open(entry.path, flags: O_WRONLY | O_NOFOLLOW | O_NONBLOCK)
        defer { file.close() }
        try check { ftruncate(file.rawValue, off_t(attributes.size)) }
      }
      if valid.contains(.accessTime) || valid.contains(.modificationTime) {
        func time(_ change: NinePSetAttributes.Valid, _ set: NinePSetAttributes.Valid, _ given: (UInt64, UInt64)) -> timespec {
          guard valid.contains(change) else { return timespec(tv_sec: 0, tv_nsec: Int(cninep_utime_omit)) }
          guard valid.contains(set) else { return timespec(tv_sec: 0, tv_nsec: Int(cninep_utime_now)) }
          return timespec(tv_sec: time_t(truncatingIfNeeded: given.0), tv_nsec: Int(min(given.1, 999_999_999)))
        }
        let times = [
          time(.accessTime, .accessTimeSet, attributes.accessTime),
          time(.modificationTime, .modificationTimeSet, attributes.modificationTime),
        ]
        try check { utimensat(handle.rawValue, "", times, Int32(cninep_at_empty_path)) }
      }
    }
  }

  // MARK: - Replies

  private func encodeAttributes(_ status: stat, into reply: inout NinePWriter) {
    reply.u64(0x7FF)  // valid: P9_GETATTR_BASIC (no btime, gen, data_version)
    reply.qid(directory.qid(status))
    reply.u32(UInt32(status.st_mode))
    reply.u32(UInt32(status.st_uid))
    reply.u32(UInt32(status.st_gid))
    reply.u64(UInt64(status.st_nlink))
    reply.u64(UInt64(status.st_rdev))
    reply.u64(UInt64(status.st_size))
    reply.u64(UInt64(status.st_blksize))
    reply.u64(UInt64(status.st_blocks))
    for time in [status.st_atim, status.st_mtim, status.st_ctim] {
      reply.u64(UInt64(bitPattern: Int64(time.tv_sec)))
      reply.u64(UInt64(time.tv_nsec))
    }
    for _ in 0..<4 { reply.u64(0) }  // btime (2), gen, data_version
  }

  /// Rreaddir: as many whole entries from `offset` (a cookie from an earlier entry, 0 to start) as
  /// fit in `count` and the msize: qid[13] offset[8] type[1] name[s] each.
  private func readDirectory(fid number: UInt32, offset: UInt64, count: UInt32, into reply: inout NinePWriter)
    throws(Errno)
  {
    let entry = try fid(number)
    guard let file = entry.file, entry.isDirectory, offset <= UInt64(Int64.max) else { throw Errno(rawValue: EBADF) }
    let room = min(Int(count), Int(messageSize) - NinePWire.readOverhead)
    try file.seek(to: Int64(offset), from: SEEK_SET)
    var buffer = [UInt8](repeating: 0, count: max(room, 512))
    let filled = try buffer.withMutableBytes { bytes throws(Errno) in
      try check { cninep_getdents64(file.rawValue, bytes.baseAddress, UInt(bytes.count)) }
    }
    var entries = NinePWriter(type: 0, tag: 0, capacity: room)
    let headerSize = entries.count
    // linux_dirent64: ino[8] off[8] reclen[2] type[1] name (NUL-terminated).
    var position = 0
    while position + 19 <= filled {
      let inode = buffer.littleEndianValue(UInt64.self, at: position)
      let cookie = buffer.littleEndianValue(UInt64.self, at: position + 8)
      let length = Int(buffer.littleEndianValue(UInt16.self, at: position + 16))
      guard length >= 19, position + length <= filled else { break }
      let type = buffer[position + 18]
      let nameBytes = buffer[(position + 19)..<(position + length)]
      let name = nameBytes.prefix { $0 != 0 }
      guard entries.count - headerSize + NinePQid.size + 8 + 1 + 2 + name.count <= room else { break }
      entries.qid(directory.qid(inode: inode, direntType: type))
      entries.u64(cookie)
      entries.u8(type)
      entries.string(name)
      position += length
    }
    reply.u32(UInt32(entries.count - headerSize))
    reply.append(entries.bytes.dropFirst(headerSize))
  }
}

extension Array where Element == UInt8 {
  /// The host-order integer at `offset` (getdents64's fields are in host order: little-endian on
  /// every host realm-run runs on).
  fileprivate func littleEndianValue<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    var value: T = 0
    for index in 0..<MemoryLayout<T>.size { value |= T(self[offset + index]) << (8 * index) }
    return value
  }
}
