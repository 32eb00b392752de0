import AsyncIO
import Dispatch
import Foundation
import Synchronization
import Testing

@Suite struct IOLoopTests {
  func roundTrip(synchronous: Bool) throws {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("aio-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: path, contents: Data(count: 8192))
    defer { try? FileManager.default.removeItem(atPath: path) }
    let fd = open(path, O_RDWR)
    defer { close(fd) }
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
      loop.submit(.fdatasync(fd: -1)) { value in
        result.withLock { $0 = value }
        done.signal()
      }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(result.withLock { $0 } == -Int(EBADF))
  }

  @Test func stopWaitsForWorkInFlight() throws {
    let loop = try IOLoop(name: "t")
    try loop.start()
    let ran = Atomic<Int>(0)
    for _ in 0..<100 { loop.schedule { ran.add(1, ordering: .relaxed) } }
    loop.stop()
    #expect(ran.load(ordering: .relaxed) == 100)
  }
}
