// libFuzzer entry for the 9P2000.L server behind `--share` (`Scripts/fuzz-devices --target ninep`):
// any sequence of requests from a guest, decoded and answered over a real directory, beside one
// it must never reach.
//
// Input: [0] bit 0: a read-only share; then records, each type (u8), body length (u16) and the
// body: the harness adds size[4] and tag[2] (a record's length and tag are then always right; the
// unit tests cover wrong ones). Every input starts with Tversion (msize 8192) and Tattach of fid 0.
// The tree (made once per process, in the working directory): share/{hello, dir/, up -> ../outside,
// root -> (outside, by its absolute path)}, and outside/secret.
// Invariants: every reply is one whole message (its size field is its length) with the request's
// tag, no larger than the msize; the fids held never exceed NinePServer.maxFids; and outside/ keeps
// exactly its one file with its contents.
import NineP
import Platform

let fuzzTree: String = {
  let root = "ninep-tree"
  _ = system("rm -rf \(root) && mkdir -p \(root)/share/dir \(root)/outside && printf hello > \(root)/share/hello"
    + " && printf secret > \(root)/outside/secret && ln -s ../outside \(root)/share/up && ln -s \"$PWD/\(root)/outside\" \(root)/share/root")
  return root
}()

private func outsideIsUntouched() -> Bool {
  guard let directory = opendir("\(fuzzTree)/outside") else { return false }
  defer { closedir(directory) }
  var names: [String] = []
  while let entry = readdir(directory) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    if name != "." && name != ".." { names.append(name) }
  }
  let fd = open("\(fuzzTree)/outside/secret", O_RDONLY)
  guard fd >= 0 else { return false }
  defer { close(fd) }
  var buffer = [UInt8](repeating: 0, count: 16)
  let count = read(fd, &buffer, 16)
  return names == ["secret"] && count == 6 && Array(buffer.prefix(6)) == Array("secret".utf8)
}

private func message(_ type: UInt8, tag: UInt16, _ body: some Collection<UInt8>) -> [UInt8] {
  let size = UInt32(7 + body.count)
  return [UInt8(size & 0xFF), UInt8(size >> 8 & 0xFF), UInt8(size >> 16 & 0xFF), UInt8(size >> 24), type,
    UInt8(tag & 0xFF), UInt8(tag >> 8)] + body
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  var input = FuzzInput(data, size)
  let readOnly = input.u8() & 1 == 1
  guard let directory = try? SharedDirectory(path: "\(fuzzTree)/share", readOnly: readOnly) else {
    invariant(false, "the share could not be opened")
    return 0
  }
  let server = NinePServer(directory: directory)
  var tag: UInt16 = 0
  func exchange(_ request: [UInt8]) {
    let reply = server.handle(request[...])
    invariant(reply.count >= 7, "a reply of \(reply.count) bytes")
    let stated = Int(reply[0]) | Int(reply[1]) << 8 | Int(reply[2]) << 16 | Int(reply[3]) << 24
    invariant(stated == reply.count, "reply size field \(stated) for \(reply.count) bytes")
    invariant(UInt16(reply[5]) | UInt16(reply[6]) << 8 == tag, "reply tag")
    invariant(server.messageSize == 0 || reply.count <= Int(server.messageSize), "reply of \(reply.count) over msize")
    invariant(server.fidCount <= NinePServer.maxFids, "\(server.fidCount) fids")
    tag &+= 1
  }
  exchange(message(100, tag: tag, [0, 0x20, 0, 0, 8, 0] + Array("9P2000.L".utf8)))
  exchange(message(104, tag: tag, [0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 0]))
  while !input.isAtEnd {
    let type = input.u8()
    let body = input.take(Int(input.u16()))
    exchange(message(type, tag: tag, body))
  }
  invariant(outsideIsUntouched(), "outside/ changed")
  return 0
}
