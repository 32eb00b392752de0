import AsyncIO
import Dispatch
import Foundation
import Platform
import Synchronization
import Testing

@Suite struct IOLoopTests {
  func roundTrip(synchronous: Bool) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("aio-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: path, contents: Data(count: 8192))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let fd = try FileDescriptor.open(path, O_RDWR)
    defer { fd.close() }
    let loop = try IOLoop(name: "t", forceSynchronous: synchronous)
    #expect(loop.usesKernelAIO == !synchronous)
    try loop.start()
    let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    let target = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    defer { source.deallocate(); target.deallocate() }
    for index in 0..<4096 { source[index] = UInt8(index % 251) }
    let results = Mutex<[Int]>([])
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) let src = source
    nonisolated(unsafe) let dst = target
    loop.schedule {
      loop.submit(.write(fd: fd, iovecs: [iovec(iov_base: src.baseAddress, iov_len: 4096)], offset: 4096)) { result in
        results.withLock { $0.append(result) }
        loop.submit(.fdatasync(fd: fd)) { result in
          results.withLock { $0.append(result) }
          loop.submit(.read(fd: fd, iovecs: [iovec(iov_base: dst.baseAddress, iov_len: 4096)], offset: 4096)) { result in
            results.withLock { $0.append(result) }
            done.signal()
          }
        }
      }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(results.withLock { $0 } == [4096, 0, 4096])
    #expect(Array(source) == Array(target))
    loop.stop()
  }

  @Test func kernelAIO() throws { try roundTrip(synchronous: false) }
  @Test func synchronousFallback() throws { try roundTrip(synchronous: true) }

  @Test func errorsAreNegativeErrno() throws {
    let loop = try IOLoop(name: "t")
    try loop.start()
    let result = Mutex<Int?>(nil)
    let done = DispatchSemaphore(value: 0)
    loop.schedule {
      loop.submit(.fdatasync(fd: FileDescriptor(rawValue: -1))) { value in
        result.withLock { $0 = value }
        done.signal()
      }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(result.withLock { $0 } == -Int(EBADF))
  }

  /// The kernel refuses a read on a closed descriptor at submission: that one fails with -EBADF
  /// and the reads queued behind it still run.
  @Test func refusedSubmissionFailsOnlyThatOperation() throws {
    let loop = try IOLoop(name: "t")
    try loop.start()
    let fd = try FileDescriptor.open("/dev/zero", O_RDONLY)
    defer { fd.close() }
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 512)
    defer { buffer.deallocate() }
    nonisolated(unsafe) let memory = buffer
    let results = Mutex<[Int]>([])
    let done = DispatchSemaphore(value: 0)
    loop.schedule {
      for descriptor in [fd, FileDescriptor(rawValue: -1), fd] {
        loop.submit(.read(fd: descriptor, iovecs: [iovec(iov_base: memory.baseAddress, iov_len: 512)], offset: 0)) { result in
          if results.withLock({ $0.append(result); return $0.count }) == 3 { done.signal() }
        }
      }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(results.withLock { $0 }.sorted() == [-Int(EBADF), 512, 512])
    loop.stop()
  }

  @Test func stopWaitsForWorkInFlight() throws {
    let loop = try IOLoop(name: "t")
    try loop.start()
    let ran = Atomic<Int>(0)
    for _ in 0..<100 { loop.schedule { ran.add(1, ordering: .relaxed) } }
    loop.stop()
    #expect(ran.load(ordering: .relaxed) == 100)
  }

  /// More operations than the aio context has slots: the rest wait in the loop and go in as
  /// earlier ones complete, and every completion runs exactly once.
  @Test(arguments: [false, true]) func moreOperationsThanContextSlots(scheduledOneByOne: Bool) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("aio-\(UUID().uuidString)").path
    let blocks = 64
    FileManager.default.createFile(atPath: path, contents: Data(count: blocks * 8 * 512))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let fd = try FileDescriptor.open(path, O_RDWR)
    defer { fd.close() }
    let loop = try IOLoop(name: "t", maxEvents: 8)
    try loop.start()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: blocks * 8 * 512, alignment: 4096)
    defer { buffer.deallocate() }
    for index in 0..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: index / 512 &+ index) }
    nonisolated(unsafe) let memory = buffer
    let completed = Mutex<[Int: Int]>([:])
    let done = DispatchSemaphore(value: 0)
    // Operation i moves (i % 8) + 1 sectors at its own offset, as that many 512-byte iovecs.
    func operation(_ index: Int) -> IOOperation {
      let sectors = index % 8 + 1
      let base = index * 8 * 512
      let iovecs = (0..<sectors).map { iovec(iov_base: memory.baseAddress! + base + $0 * 512, iov_len: 512) }
      return .write(fd: fd, iovecs: iovecs, offset: Int64(base))
    }
    @Sendable func record(_ index: Int, _ result: Int) {
      let count = completed.withLock { map -> Int in
        map[index, default: 0] += result
        return map.count
      }
      if count == blocks { done.signal() }
    }
    if scheduledOneByOne {
      for index in 0..<blocks {
        nonisolated(unsafe) let op = operation(index)
        loop.schedule { loop.submit(op) { record(index, $0) } }
      }
    } else {
      nonisolated(unsafe) let ops = (0..<blocks).map(operation)
      loop.schedule { for (index, op) in ops.enumerated() { loop.submit(op) { record(index, $0) } } }
    }
    let finished = done.wait(timeout: .now() + 10) == .success
    #expect(finished, "completions: \(completed.withLock { $0.count }) of \(blocks)")
    guard finished else {
      _ = Unmanaged.passRetained(loop)  // a hung I/O thread cannot be joined; leave it
      return
    }
    loop.stop()
    #expect(completed.withLock { $0 } == Dictionary(uniqueKeysWithValues: (0..<blocks).map { ($0, ($0 % 8 + 1) * 512) }))
    var check = [UInt8](repeating: 0, count: buffer.count)
    #expect(try check.withUnsafeMutableBytes { try fd.read(into: $0, at: 0) } == check.count)
    for index in 0..<blocks {
      let range = index * 8 * 512 ..< index * 8 * 512 + (index % 8 + 1) * 512
      #expect(Array(check[range]) == Array(buffer[range]), "operation \(index)")
    }
  }
}

/// Watched descriptors: the loop calls a watch's handler on its thread while the descriptor is
/// ready, through IOCB_CMD_POLL with kernel AIO and through poll(2) without.
@Suite struct IOLoopWatchTests {
  /// A connected pair of Unix stream sockets, non-blocking.
  func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) == 0)
    return (fds[0], fds[1])
  }

  /// Bytes written to one end reach the watch of the other, each time; after unwatch nothing does.
  @Test(arguments: [false, true]) func readinessCallsTheHandler(synchronous: Bool) throws {
    let loop = try IOLoop(name: "t", forceSynchronous: synchronous)
    try loop.start()
    defer { loop.stop() }
    let (reader, writer) = socketPair()
    defer { close(reader); close(writer) }
    let received = Mutex<[UInt8]>([])
    let calls = Mutex(0)
    let arrived = DispatchSemaphore(value: 0)
    let watch = loop.watch(reader) { revents in
      calls.withLock { $0 += 1 }
      #expect(revents & Int16(POLLIN) != 0)
      var buffer = [UInt8](repeating: 0, count: 64)
      while true {  // read until it would block, as a level-triggered handler should
        let count = read(reader, &buffer, buffer.count)
        guard count > 0 else { break }
        received.withLock { $0 += buffer.prefix(count) }
      }
      arrived.signal()
    }
    for round in 0..<3 {
      var byte = UInt8(round + 1)
      #expect(write(writer, &byte, 1) == 1)
      #expect(arrived.wait(timeout: .now() + 5) == .success)
    }
    #expect(received.withLock { $0 } == [1, 2, 3])
    #expect(calls.withLock { $0 } == 3)  // not called again while nothing is readable

    loop.unwatch(watch)
    let unwatched = DispatchSemaphore(value: 0)
    loop.schedule { unwatched.signal() }  // the unwatch has been taken in
    #expect(unwatched.wait(timeout: .now() + 5) == .success)
    var byte: UInt8 = 9
    #expect(write(writer, &byte, 1) == 1)
    #expect(arrived.wait(timeout: .now() + 0.3) == .timedOut)
    #expect(calls.withLock { $0 } == 3)
  }

  /// Watches and disk I/O share the thread: a read completes while a socket is watched, and the
  /// socket's readiness still arrives.
  @Test func watchesAndIOTogether() throws {
    let loop = try IOLoop(name: "t")
    try loop.start()
    defer { loop.stop() }
    let (reader, writer) = socketPair()
    defer { close(reader); close(writer) }
    let ready = DispatchSemaphore(value: 0)
    loop.watch(reader) { _ in
      var buffer = [UInt8](repeating: 0, count: 16)
      while Platform.read(reader, &buffer, buffer.count) > 0 {}
      ready.signal()
    }
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("aio-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 4096))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let fd = try FileDescriptor.open(path, O_RDONLY)
    defer { fd.close() }
    let target = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
    defer { target.deallocate() }
    nonisolated(unsafe) let dst = target
    let done = DispatchSemaphore(value: 0)
    let result = Mutex(0)
    loop.schedule {
      loop.submit(.read(fd: fd, iovecs: [iovec(iov_base: dst.baseAddress, iov_len: 4096)], offset: 0)) { value in
        result.withLock { $0 = value }
        done.signal()
      }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(result.withLock { $0 } == 4096)
    var byte: UInt8 = 1
    #expect(write(writer, &byte, 1) == 1)
    #expect(ready.wait(timeout: .now() + 5) == .success)
  }
}
