import Foundation
import NineP
import Platform
import Testing
import TestSupport

/// A share (`share/`) beside a directory it must never reach (`outside/`), with symlinks that lead
/// out: `up -> ../outside`, `root -> /`, `abs -> <scratch>/outside`.
final class ShareFixture {
  let scratch = ScratchDirectory()
  var share: String { scratch.path("share") }
  var outside: String { scratch.path("outside") }

  init() {
    let files = FileManager.default
    try! files.createDirectory(atPath: scratch.path("share/dir"), withIntermediateDirectories: true)
    try! files.createDirectory(atPath: outside, withIntermediateDirectories: true)
    scratch.file("share/hello.txt", Array("hello from the host\n".utf8))
    scratch.file("outside/secret", Array("secret".utf8))
    try! files.createSymbolicLink(atPath: scratch.path("share/up"), withDestinationPath: "../outside")
    try! files.createSymbolicLink(atPath: scratch.path("share/root"), withDestinationPath: "/")
    try! files.createSymbolicLink(atPath: scratch.path("share/abs"), withDestinationPath: outside)
  }

  func client(readOnly: Bool = false) throws -> NinePClient {
    var client = NinePClient(server: NinePServer(directory: try SharedDirectory(path: share, readOnly: readOnly)))
    client.start()
    return client
  }

  /// `outside/`'s names and `secret`'s bytes: what no request may change.
  var outsideState: [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: outside)) ?? []).sorted() + [String(decoding: scratch.read("outside/secret"), as: UTF8.self)]
  }
}

@Suite struct NinePServerTests {
  @Test func versionAgreesOnTheSmallerMessageSize() throws {
    let fixture = ShareFixture()
    var client = NinePClient(server: NinePServer(directory: try SharedDirectory(path: fixture.share, readOnly: false)))
    // Nothing is answered before Tversion.
    #expect(client.attach(0).errno == EPROTO)
    var reply = client.version(8 << 20)
    #expect(reply.u32() == NinePServer.maxMessageSize)
    #expect(reply.string() == Array("9P2000.L".utf8))
    reply = client.version(16384, "9P2000.u")
    #expect(reply.u32() == 16384)
    #expect(reply.string() == Array("unknown".utf8))
    #expect(client.version(512).errno == EINVAL)
  }

  @Test func readsAFileAndItsAttributes() throws {
    let fixture = ShareFixture()
    var client = try fixture.client()
    var walk = client.walk(0, 1, ["hello.txt"])
    #expect(walk.u16() == 1)
    #expect(walk.qid().type == NinePQid.file)
    #expect(!client.lopen(1, 0).isError)
    var read = client.read(1, offset: 6)
    #expect(String(decoding: read.string32(), as: UTF8.self) == "from the host\n")
    var attributes = client.getattr(1)
    _ = attributes.u64()
    _ = attributes.qid()
    #expect(attributes.u32() & 0o170777 == 0o100644 || attributes.u32() != 0)
    _ = (attributes.u32(), attributes.u32(), attributes.u64(), attributes.u64())
    #expect(attributes.u64() == 20)  // size
    #expect(!client.clunk(1).isError)
    #expect(client.read(1).errno == EBADF)
  }

  /// What Linux's `9p` does to create, write, rename, link and remove: each change seen on the host.
  @Test func changesReachTheHost() throws {
    let fixture = ShareFixture()
    var client = try fixture.client()
    #expect(!client.walk(0, 1, []).isError)
    #expect(!client.lcreate(1, "new.bin").isError)
    let data = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    var written = client.write(1, data)
    #expect(written.u32() == 5000)
    #expect(fixture.scratch.read("share/new.bin") == data)
    #expect(!client.mkdir(0, "made").isError)
    #expect(!client.renameat(0, "new.bin", 0, "renamed.bin").isError)
    // The open fid followed the file.
    var attributes = client.getattr(1)
    _ = attributes.u64()
    #expect(attributes.qid().type == NinePQid.file)
    #expect(fixture.scratch.read("share/renamed.bin") == data)
    #expect(!client.walk(0, 2, ["made"]).isError)
    #expect(!client.renameat(0, "renamed.bin", 2, "moved.bin").isError)
    #expect(fixture.scratch.read("share/made/moved.bin") == data)
    #expect(!client.symlink(0, "link", "made/moved.bin").isError)
    #expect(try FileManager.default.destinationOfSymbolicLink(atPath: fixture.scratch.path("share/link")) == "made/moved.bin")
    #expect(!client.walk(0, 3, ["link"]).isError)
    var target = client.send(22, [.u32(3)])
    #expect(target.string() == Array("made/moved.bin".utf8))
    #expect(client.list([]) == [".", "..", "abs", "dir", "hello.txt", "link", "made", "root", "up"])
    #expect(!client.unlinkat(0, "link").isError)
    #expect(!client.unlinkat(2, "moved.bin").isError)
    #expect(!client.unlinkat(0, "made", flags: 0x200).isError)
    #expect(client.list([]) == [".", "..", "abs", "dir", "hello.txt", "root", "up"])
    // Truncate and mode through Tsetattr.
    #expect(!client.walk(0, 4, ["hello.txt"]).isError)
    #expect(!client.send(26, [.u32(4), .u32(0x1 | 0x8), .u32(0o600), .u32(0), .u32(0), .u64(5), .u64(0), .u64(0), .u64(0), .u64(0)]).isError)
    #expect(fixture.scratch.read("share/hello.txt") == Array("hello".utf8))
    let mode = try FileManager.default.attributesOfItem(atPath: fixture.scratch.path("share/hello.txt"))[.posixPermissions] as? Int
    #expect(mode == 0o600)
  }

  /// A hostile client's escapes, each refused, with nothing outside the share changed or read.
  @Test func escapesAreRefused() throws {
    let fixture = ShareFixture()
    let before = fixture.outsideState
    var client = try fixture.client()
    // "..": stops at the root, so "outside" is looked up in the share, where it is not.
    var walk = client.walk(0, 1, ["..", "..", "outside", "secret"])
    #expect(walk.u16() == 2)  // "..", "..", then "outside" not found: no fid made
    #expect(client.getattr(1).errno == EBADF)
    // Through each symlink that leads out: the walk stops at the link.
    for link in ["up", "root", "abs"] {
      walk = client.walk(0, 1, [link, link == "root" ? "etc" : "secret"])
      #expect(walk.u16() == 1, "walk through \(link)")
      #expect(client.getattr(1).errno == EBADF)
      // The link itself can be walked to, but not opened, created in, or listed.
      #expect(!client.walk(0, 2, [link]).isError)
      #expect(client.lopen(2, 0).errno == ELOOP)
      #expect(client.lcreate(2, "planted").isError)
      #expect(client.mkdir(2, "planted").isError)
      #expect(client.symlink(2, "planted", "x").isError)
      #expect(client.renameat(0, "hello.txt", 2, "moved").isError)
      #expect(client.send(8, [.u32(2)]).isError == false)  // statfs of the link itself is fine
      _ = client.clunk(2)
    }
    // Names that are paths.
    #expect(client.walk(0, 1, ["../outside"]).errno == EINVAL)
    #expect(client.walk(0, 1, ["up/secret"]).errno == EINVAL)
    #expect(client.lcreate(0, "../planted").errno == EINVAL)
    #expect(client.renameat(0, "hello.txt", 0, "../moved").errno == EINVAL)
    #expect(client.renameat(0, "hello.txt", 0, "up/moved").errno == EINVAL)
    #expect(client.mkdir(0, "..").errno == EINVAL)
    // A device node would reach the host's devices.
    #expect(client.send(18, [.u32(0), .string("null"), .u32(0o20666), .u32(1), .u32(3), .u32(0)]).errno == EPERM)
    #expect(fixture.outsideState == before)
    #expect(fixture.scratch.read("share/hello.txt") == Array("hello from the host\n".utf8))
  }

  @Test func readOnlyRefusesEveryChange() throws {
    let fixture = ShareFixture()
    var client = try fixture.client(readOnly: true)
    #expect(!client.walk(0, 1, ["hello.txt"]).isError)
    #expect(client.lopen(1, 1).errno == EROFS)  // O_WRONLY
    #expect(client.lopen(1, 0o1000).errno == EROFS)  // O_TRUNC
    #expect(!client.lopen(1, 0).isError)
    #expect(client.write(1, [1, 2, 3]).errno == EROFS)
    #expect(client.lcreate(0, "new").errno == EROFS)
    #expect(client.mkdir(0, "new").errno == EROFS)
    #expect(client.symlink(0, "new", "hello.txt").errno == EROFS)
    #expect(client.renameat(0, "hello.txt", 0, "moved").errno == EROFS)
    #expect(client.unlinkat(0, "hello.txt").errno == EROFS)
    #expect(!client.walk(0, 2, ["hello.txt"]).isError)
    #expect(client.send(26, [.u32(2), .u32(0x8), .u32(0), .u32(0), .u32(0), .u64(0), .u64(0), .u64(0), .u64(0), .u64(0)]).errno == EROFS)
    #expect(client.send(122, [.u32(2)]).errno == EROFS)  // Tremove
    #expect(fixture.scratch.read("share/hello.txt") == Array("hello from the host\n".utf8))
    #expect(client.list([]) == [".", "..", "abs", "dir", "hello.txt", "root", "up"])
  }

  @Test func boundsAreKept() throws {
    let fixture = ShareFixture()
    var client = try fixture.client()
    // Fids: at most maxFids, then EMFILE.
    for fid in 1..<UInt32(NinePServer.maxFids) { precondition(!client.walk(0, fid, []).isError) }
    #expect(client.walk(0, UInt32(NinePServer.maxFids), []).errno == EMFILE)
    #expect(client.server.fidCount == NinePServer.maxFids)
    #expect(!client.clunk(1).isError)
    // Walks of more than 16 names do not decode.
    #expect(client.walk(0, 1, Array(repeating: "dir", count: 17)).errno == EPROTO)
    // A read returns at most the msize's room.
    fixture.scratch.file("share/big", Array(repeating: 0x5A, count: 200_000))
    _ = client.version(8192)
    _ = client.attach(0)
    _ = client.walk(0, 1, ["big"])
    _ = client.lopen(1, 0)
    var read = client.read(1, count: 100_000)
    #expect(read.u32() == 8192 - 11)
    // Malformed messages: Rlerror(EPROTO) with their tag, never a crash.
    var message = NinePClient.message(116, tag: 77, [.u32(1), .u64(0)])  // count missing
    var reply = NinePClient.parse(client.server.handle(message[...]))
    #expect(reply.tag == 77 && reply.errno == EPROTO)
    message[0] &+= 1  // size field one past the bytes
    reply = NinePClient.parse(client.server.handle(message[...]))
    #expect(reply.errno == EPROTO)
    reply = NinePClient.parse(client.server.handle([1, 2][...]))
    #expect(reply.tag == NinePWire.noTag && reply.errno == EPROTO)
    reply = NinePClient.parse(client.server.handle(NinePClient.message(201, tag: 5, [])[...]))
    #expect(reply.errno == EPROTO)
    // A string longer than the message.
    message = NinePClient.message(110, tag: 9, [.u32(0), .u32(2), .u16(1), .u16(500)])
    #expect(NinePClient.parse(client.server.handle(message[...])).errno == EPROTO)
  }

  @Test func decodesEveryRequestItWrites() throws {
    let write = NinePClient.message(118, tag: 3, [.u32(4), .u64(9), .u32(3), .bytes([7, 8, 9])])
    #expect(try NinePMessage.decode(write[...]) == NinePMessage(tag: 3, request: .write(fid: 4, offset: 9, data: [7, 8, 9][...])))
    let walk = NinePClient.message(110, tag: 1, [.u32(0), .u32(1), .u16(2), .string("a"), .string("b")])
    #expect(try NinePMessage.decode(walk[...]).request == .walk(fid: 0, newFid: 1, names: [[0x61], [0x62]]))
    #expect(throws: NinePDecodeError.trailingBytes(1)) { try NinePMessage.decode((NinePClient.message(120, tag: 1, [.u32(0), .u8(0)]))[...]) }
  }
}

extension NinePClient.Reply {
  /// Rread's data: count[4] then the bytes.
  mutating func string32() -> [UInt8] {
    let count = Int(u32())
    defer { position += count }
    return Array(body[position..<(position + count)])
  }
}
