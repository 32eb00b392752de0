/// The 9P2000.L requests the server answers (what Linux's `9p` filesystem sends with
/// `version=9p2000.L`), decoded from a guest's message. Names are bytes: a file name need not be
/// UTF-8.
public enum NinePRequest: Equatable, Sendable {
  case statfs(fid: UInt32)
  case lopen(fid: UInt32, flags: UInt32)
  case lcreate(fid: UInt32, name: [UInt8], flags: UInt32, mode: UInt32, gid: UInt32)
  case symlink(fid: UInt32, name: [UInt8], target: [UInt8], gid: UInt32)
  case mknod(directory: UInt32, name: [UInt8], mode: UInt32, major: UInt32, minor: UInt32, gid: UInt32)
  case rename(fid: UInt32, directory: UInt32, name: [UInt8])
  case readlink(fid: UInt32)
  case getattr(fid: UInt32, mask: UInt64)
  case setattr(fid: UInt32, NinePSetAttributes)
  case xattrwalk(fid: UInt32, newFid: UInt32, name: [UInt8])
  case xattrcreate(fid: UInt32, name: [UInt8], size: UInt64, flags: UInt32)
  case readdir(fid: UInt32, offset: UInt64, count: UInt32)
  case fsync(fid: UInt32, dataOnly: Bool)
  case lock(fid: UInt32)
  case getlock(fid: UInt32, type: UInt8, start: UInt64, length: UInt64, processID: UInt32, clientID: [UInt8])
  case link(directory: UInt32, fid: UInt32, name: [UInt8])
  case mkdir(directory: UInt32, name: [UInt8], mode: UInt32, gid: UInt32)
  case renameat(oldDirectory: UInt32, oldName: [UInt8], newDirectory: UInt32, newName: [UInt8])
  case unlinkat(directory: UInt32, name: [UInt8], flags: UInt32)
  case version(messageSize: UInt32, version: [UInt8])
  case attach(fid: UInt32, authFid: UInt32, user: [UInt8], tree: [UInt8], uid: UInt32)
  case flush(oldTag: UInt16)
  case walk(fid: UInt32, newFid: UInt32, names: [[UInt8]])
  case read(fid: UInt32, offset: UInt64, count: UInt32)
  case write(fid: UInt32, offset: UInt64, data: ArraySlice<UInt8>)
  case clunk(fid: UInt32)
  case remove(fid: UInt32)

  /// The T-message numbers (each reply is the number + 1; Rlerror is 7).
  public enum MessageType: UInt8, Sendable {
    case statfs = 8, lopen = 12, lcreate = 14, symlink = 16, mknod = 18, rename = 20, readlink = 22
    case getattr = 24, setattr = 26, xattrwalk = 30, xattrcreate = 32, readdir = 40, fsync = 50
    case lock = 52, getlock = 54, link = 70, mkdir = 72, renameat = 74, unlinkat = 76
    case version = 100, attach = 104, flush = 108, walk = 110, read = 116, write = 118, clunk = 120
    case remove = 122

    /// Rlerror: an errno for any request.
    public static let errorReply: UInt8 = 7
    public var reply: UInt8 { rawValue + 1 }
  }

  public var messageType: MessageType {
    switch self {
    case .statfs: .statfs
    case .lopen: .lopen
    case .lcreate: .lcreate
    case .symlink: .symlink
    case .mknod: .mknod
    case .rename: .rename
    case .readlink: .readlink
    case .getattr: .getattr
    case .setattr: .setattr
    case .xattrwalk: .xattrwalk
    case .xattrcreate: .xattrcreate
    case .readdir: .readdir
    case .fsync: .fsync
    case .lock: .lock
    case .getlock: .getlock
    case .link: .link
    case .mkdir: .mkdir
    case .renameat: .renameat
    case .unlinkat: .unlinkat
    case .version: .version
    case .attach: .attach
    case .flush: .flush
    case .walk: .walk
    case .read: .read
    case .write: .write
    case .clunk: .clunk
    case .remove: .remove
    }
  }
}

/// Tsetattr's fields; `valid` says which apply (``NinePSetAttributes/Valid``).
public struct NinePSetAttributes: Equatable, Sendable {
  public struct Valid: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let mode = Valid(rawValue: 0x1)
    public static let uid = Valid(rawValue: 0x2)
    public static let gid = Valid(rawValue: 0x4)
    public static let size = Valid(rawValue: 0x8)
    public static let accessTime = Valid(rawValue: 0x10)
    public static let modificationTime = Valid(rawValue: 0x20)
    public static let changeTime = Valid(rawValue: 0x40)
    /// With accessTime: the given time, else now.
    public static let accessTimeSet = Valid(rawValue: 0x80)
    public static let modificationTimeSet = Valid(rawValue: 0x100)
  }

  public var valid: Valid
  public var mode: UInt32
  public var uid: UInt32
  public var gid: UInt32
  public var size: UInt64
  public var accessTime: (seconds: UInt64, nanoseconds: UInt64)
  public var modificationTime: (seconds: UInt64, nanoseconds: UInt64)

  public static func == (a: Self, b: Self) -> Bool {
    a.valid == b.valid && a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.size == b.size
      && a.accessTime == b.accessTime && a.modificationTime == b.modificationTime
  }
}

/// A decoded request and the tag its reply carries.
public struct NinePMessage: Equatable, Sendable {
  public var tag: UInt16
  public var request: NinePRequest

  public init(tag: UInt16, request: NinePRequest) {
    self.tag = tag
    self.request = request
  }

  /// The tag of `bytes` when its header is whole (to answer even a request that does not decode).
  public static func tag(of bytes: ArraySlice<UInt8>) -> UInt16? {
    var reader = NinePReader(bytes)
    guard (try? reader.u32()) != nil, (try? reader.u8()) != nil else { return nil }
    return try? reader.u16()
  }

  /// Decodes one request: `bytes` must be exactly the message its size field states.
  public static func decode(_ bytes: ArraySlice<UInt8>) throws(NinePDecodeError) -> NinePMessage {
    var r = NinePReader(bytes)
    let size = try r.u32()
    guard size == bytes.count else { throw .sizeMismatch(stated: size, actual: bytes.count) }
    let typeByte = try r.u8()
    let tag = try r.u16()
    guard let type = NinePRequest.MessageType(rawValue: typeByte) else { throw .unknownType(typeByte) }
    let request: NinePRequest
    switch type {
    case .statfs: request = .statfs(fid: try r.u32())
    case .lopen: request = .lopen(fid: try r.u32(), flags: try r.u32())
    case .lcreate:
      request = .lcreate(fid: try r.u32(), name: try r.string(), flags: try r.u32(), mode: try r.u32(), gid: try r.u32())
    case .symlink: request = .symlink(fid: try r.u32(), name: try r.string(), target: try r.string(), gid: try r.u32())
    case .mknod:
      request = .mknod(
        directory: try r.u32(), name: try r.string(), mode: try r.u32(), major: try r.u32(), minor: try r.u32(),
        gid: try r.u32())
    case .rename: request = .rename(fid: try r.u32(), directory: try r.u32(), name: try r.string())
    case .readlink: request = .readlink(fid: try r.u32())
    case .getattr: request = .getattr(fid: try r.u32(), mask: try r.u64())
    case .setattr:
      let fid = try r.u32()
      let attributes = NinePSetAttributes(
        valid: .init(rawValue: try r.u32()), mode: try r.u32(), uid: try r.u32(), gid: try r.u32(), size: try r.u64(),
        accessTime: (try r.u64(), try r.u64()), modificationTime: (try r.u64(), try r.u64()))
      request = .setattr(fid: fid, attributes)
    case .xattrwalk: request = .xattrwalk(fid: try r.u32(), newFid: try r.u32(), name: try r.string())
    case .xattrcreate: request = .xattrcreate(fid: try r.u32(), name: try r.string(), size: try r.u64(), flags: try r.u32())
    case .readdir: request = .readdir(fid: try r.u32(), offset: try r.u64(), count: try r.u32())
    case .fsync: request = .fsync(fid: try r.u32(), dataOnly: try r.u32() != 0)
    case .lock:
      let fid = try r.u32()
      // type[1] flags[4] start[8] length[8] proc_id[4] client_id[s]: read for their bounds only.
      _ = try r.bytes(1 + 4 + 8 + 8 + 4)
      _ = try r.string()
      request = .lock(fid: fid)
    case .getlock:
      request = .getlock(
        fid: try r.u32(), type: try r.u8(), start: try r.u64(), length: try r.u64(), processID: try r.u32(),
        clientID: try r.string())
    case .link: request = .link(directory: try r.u32(), fid: try r.u32(), name: try r.string())
    case .mkdir: request = .mkdir(directory: try r.u32(), name: try r.string(), mode: try r.u32(), gid: try r.u32())
    case .renameat:
      request = .renameat(
        oldDirectory: try r.u32(), oldName: try r.string(), newDirectory: try r.u32(), newName: try r.string())
    case .unlinkat: request = .unlinkat(directory: try r.u32(), name: try r.string(), flags: try r.u32())
    case .version: request = .version(messageSize: try r.u32(), version: try r.string())
    case .attach:
      request = .attach(fid: try r.u32(), authFid: try r.u32(), user: try r.string(), tree: try r.string(), uid: try r.u32())
    case .flush: request = .flush(oldTag: try r.u16())
    case .walk:
      let fid = try r.u32(), newFid = try r.u32()
      let count = Int(try r.u16())
      guard count <= NinePWire.maxWalkNames else { throw .tooManyNames(count) }
      var names: [[UInt8]] = []
      for _ in 0..<count { names.append(try r.string()) }
      request = .walk(fid: fid, newFid: newFid, names: names)
    case .read: request = .read(fid: try r.u32(), offset: try r.u64(), count: try r.u32())
    case .write:
      let fid = try r.u32(), offset = try r.u64()
      request = .write(fid: fid, offset: offset, data: try r.bytes(Int(try r.u32())))
    case .clunk: request = .clunk(fid: try r.u32())
    case .remove: request = .remove(fid: try r.u32())
    }
    try r.finish()
    return NinePMessage(tag: tag, request: request)
  }
}
