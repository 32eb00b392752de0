import NineP
import Platform

/// A 9P2000.L client that speaks raw messages to a ``NinePServer``: what Linux's `9p` sends, and
/// what a hostile guest could send instead.
struct NinePClient {
  let server: NinePServer
  var tag: UInt16 = 1

  /// A reply: its type, tag and body.
  struct Reply {
    var type: UInt8
    var tag: UInt16
    var body: [UInt8]
    var position = 0

    /// Rlerror's errno, nil for any other reply.
    var errno: Int32? { type == 7 ? Int32(bitPattern: UInt32(body[0]) | UInt32(body[1]) << 8 | UInt32(body[2]) << 16 | UInt32(body[3]) << 24) : nil }
    var isError: Bool { type == 7 }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) -> T {
      var value: T = 0
      for index in 0..<MemoryLayout<T>.size { value |= T(body[position + index]) << (8 * index) }
      position += MemoryLayout<T>.size
      return value
    }
    mutating func u8() -> UInt8 { integer(UInt8.self) }
    mutating func u16() -> UInt16 { integer(UInt16.self) }
    mutating func u32() -> UInt32 { integer(UInt32.self) }
    mutating func u64() -> UInt64 { integer(UInt64.self) }
    mutating func string() -> [UInt8] {
      let count = Int(u16())
      defer { position += count }
      return Array(body[position..<(position + count)])
    }
    mutating func qid() -> NinePQid {
      let type = u8()
      let version = u32()
      return NinePQid(type: type, version: version, path: u64())
    }
  }

  /// Message fields, little-endian.
  enum Field {
    case u8(UInt8), u16(UInt16), u32(UInt32), u64(UInt64), string(String), bytes([UInt8])
  }

  static func message(_ type: UInt8, tag: UInt16, _ fields: [Field]) -> [UInt8] {
    var body: [UInt8] = []
    func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { body += $0 } }
    for field in fields {
      switch field {
      case .u8(let v): put(v)
      case .u16(let v): put(v)
      case .u32(let v): put(v)
      case .u64(let v): put(v)
      case .string(let s):
        put(UInt16(s.utf8.count))
        body += Array(s.utf8)
      case .bytes(let b): body += b
      }
    }
    var message: [UInt8] = []
    withUnsafeBytes(of: UInt32(7 + body.count).littleEndian) { message += $0 }
    message.append(type)
    withUnsafeBytes(of: tag.littleEndian) { message += $0 }
    return message + body
  }

  static func parse(_ bytes: [UInt8]) -> Reply {
    precondition(bytes.count >= 7)
    let size = Int(UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24)
    precondition(size == bytes.count, "reply size field \(size) for \(bytes.count) bytes")
    return Reply(type: bytes[4], tag: UInt16(bytes[5]) | UInt16(bytes[6]) << 8, body: Array(bytes[7...]))
  }

  /// Sends T-message `type`; checks the reply's tag, and that it is the R-message or Rlerror.
  mutating func send(_ type: UInt8, _ fields: [Field]) -> Reply {
    tag &+= 1
    let reply = Self.parse(server.handle(Self.message(type, tag: tag, fields)[...]))
    precondition(reply.tag == tag && (reply.type == type + 1 || reply.type == 7), "reply \(reply.type) to \(type)")
    return reply
  }

  mutating func version(_ size: UInt32 = 65536, _ version: String = "9P2000.L") -> Reply {
    send(100, [.u32(size), .string(version)])
  }
  /// Tversion and Tattach of fid 0 (the share's root).
  mutating func start() {
    _ = version()
    precondition(!attach(0).isError)
  }
  mutating func attach(_ fid: UInt32) -> Reply {
    send(104, [.u32(fid), .u32(NinePWire.noFid), .string("root"), .string(""), .u32(0)])
  }
  mutating func walk(_ fid: UInt32, _ newFid: UInt32, _ names: [String]) -> Reply {
    send(110, [.u32(fid), .u32(newFid), .u16(UInt16(names.count))] + names.map { .string($0) })
  }
  mutating func lopen(_ fid: UInt32, _ flags: UInt32) -> Reply { send(12, [.u32(fid), .u32(flags)]) }
  mutating func lcreate(_ fid: UInt32, _ name: String, flags: UInt32 = 0o2, mode: UInt32 = 0o644) -> Reply {
    send(14, [.u32(fid), .string(name), .u32(flags), .u32(mode), .u32(0)])
  }
  mutating func read(_ fid: UInt32, offset: UInt64 = 0, count: UInt32 = 8192) -> Reply {
    send(116, [.u32(fid), .u64(offset), .u32(count)])
  }
  mutating func write(_ fid: UInt32, offset: UInt64 = 0, _ data: [UInt8]) -> Reply {
    send(118, [.u32(fid), .u64(offset), .u32(UInt32(data.count)), .bytes(data)])
  }
  mutating func clunk(_ fid: UInt32) -> Reply { send(120, [.u32(fid)]) }
  mutating func mkdir(_ fid: UInt32, _ name: String, mode: UInt32 = 0o755) -> Reply {
    send(72, [.u32(fid), .string(name), .u32(mode), .u32(0)])
  }
  mutating func symlink(_ fid: UInt32, _ name: String, _ target: String) -> Reply {
    send(16, [.u32(fid), .string(name), .string(target), .u32(0)])
  }
  mutating func renameat(_ oldFid: UInt32, _ oldName: String, _ newFid: UInt32, _ newName: String) -> Reply {
    send(74, [.u32(oldFid), .string(oldName), .u32(newFid), .string(newName)])
  }
  mutating func unlinkat(_ fid: UInt32, _ name: String, flags: UInt32 = 0) -> Reply {
    send(76, [.u32(fid), .string(name), .u32(flags)])
  }
  mutating func getattr(_ fid: UInt32) -> Reply { send(24, [.u32(fid), .u64(0x7FF)]) }
  mutating func readdir(_ fid: UInt32, offset: UInt64 = 0, count: UInt32 = 8192) -> Reply {
    send(40, [.u32(fid), .u64(offset), .u32(count)])
  }

  /// The names in a directory, through Tlopen and Treaddir (walked to a new fid, clunked after).
  mutating func list(_ names: [String], fid: UInt32 = 900) -> [String]? {
    guard !walk(0, fid, names).isError, !lopen(fid, 0o200000).isError else { return nil }
    defer { _ = clunk(fid) }
    var result: [String] = []
    var offset: UInt64 = 0
    while true {
      var reply = readdir(fid, offset: offset)
      guard !reply.isError else { return nil }
      let end = reply.position + 4 + Int(reply.u32())
      if end == 4 { return result.sorted() }
      while reply.position < end {
        _ = reply.qid()
        offset = reply.u64()
        _ = reply.u8()
        result.append(String(decoding: reply.string(), as: UTF8.self))
      }
    }
  }
}
