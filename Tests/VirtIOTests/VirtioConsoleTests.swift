import Devices
import GuestMemory
import Synchronization
import Testing
import TestSupport
import VirtIO

final class CapturedOutput: ConsoleOutput {
  let bytes = Mutex<[UInt8]>([])
  func write(_ buffer: UnsafeRawBufferPointer) { bytes.withLock { $0.append(contentsOf: buffer) } }
}

@Suite struct VirtioConsoleTests {
  let memory = try! GuestMemory(ranges: [(0x8000_0000, 1 << 20)])

  func make() -> (VirtioConsole, CapturedOutput, VirtioPCIDriverHarness) {
    let output = CapturedOutput()
    let (console, driver) = make(output: output, memory: memory)
    return (console, output, driver)
  }

  /// A console writing to `output`, behind the PCI transport, and a driver for it.
  func make(output: any ConsoleOutput, memory: GuestMemory) -> (VirtioConsole, VirtioPCIDriverHarness) {
    let console = VirtioConsole(output: output)
    let line = RecordingInterruptLine()
    let transport = VirtioPCITransport(device: console, memory: memory, interrupt: line, barAddress: 0x5000_4000)
    let driver = VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: 0x8000_0000, size: 1 << 20))
    return (console, driver)
  }

  @Test func identity() {
    let (_, _, driver) = make()
    #expect(driver.transport.readConfig(offset: 2, size: 2) == 0x1043)
    #expect(driver.transport.readConfig(offset: 8, size: 4) >> 8 == 0x07_8000)
    #expect(driver.readDeviceConfig(4, size: 4) == 1)  // max_nr_ports
    #expect(driver.readCommon(0x12, size: 2) == 2)
  }

  @Test func transmitGoesToTheOutput() throws {
    let (_, output, driver) = make()
    driver.start(queueCount: 2, size: 16)
    let text = Array("hello, hvc0\n".utf8)
    let buffer = driver.allocate(text.count)
    try memory.write(text, at: buffer)
    driver.post(1, [.init(address: buffer, length: UInt32(text.count), isWritable: false)])
    driver.notify(1)
    #expect(output.bytes.withLock { $0 } == text)
    #expect(driver.popUsed(1)?.length == 0)
    #expect(driver.interrupt.raised == 1)
  }

  @Test func inputIsDeliveredIntoReceiveBuffers() throws {
    let (console, _, driver) = make()
    #expect(console.receive(Array("early".utf8)) == 5)  // held until the driver is ready
    driver.start(queueCount: 2, size: 16)
    let buffer = driver.allocate(64)
    driver.post(0, [.init(address: buffer, length: 64, isWritable: true)])
    driver.notify(0)
    let entry = driver.popUsed(0)
    let used = try #require(entry)
    #expect(used.length == 5)
    #expect(try memory.read(at: buffer, count: 5) == Array("early".utf8))
    let second = driver.allocate(2)
    driver.post(0, [.init(address: second, length: 2, isWritable: true)])
    driver.notify(0)
    console.receive(Array("xyz".utf8))
    #expect(driver.popUsed(0)?.length == 2)
    #expect(try memory.read(at: second, count: 2) == Array("xy".utf8))
  }

  /// Host input waits for the guest's receive buffers in at most 4 KiB: more is refused, not held.
  @Test func heldInputIsBounded() throws {
    let (console, _, driver) = make()
    #expect(console.receive([UInt8](repeating: 0x41, count: 10_000)) == 4096)
    #expect(console.receive([0x42]) == 0)
    driver.start(queueCount: 2, size: 16)
    let buffer = driver.allocate(8192)
    driver.post(0, [.init(address: buffer, length: 8192, isWritable: true)])
    driver.notify(0)
    #expect(driver.popUsed(0)?.length == 4096)
    #expect(console.receive([0x43]) == 1)  // room again once the guest took it
  }

  /// A guest that queues chains as long as its RAM (descriptors may repeat buffers) has them
  /// streamed to the output in bounded pieces: realm-run copies none of it into host memory.
  @Test func transmitStreamsLongChainsInBoundedPieces() throws {
    let memory = try GuestMemory(ranges: [(0x8000_0000, 16 << 20)])
    let output = MeasuringOutput()
    let (_, driver) = make(output: output, memory: memory)
    driver.start(queueCount: 2, size: 16)
    let whole = MockVirtQueueDriver.Buffer(address: 0x8000_0000, length: 16 << 20, isWritable: false)
    for _ in 0..<4 { driver.post(1, [whole, whole, whole, whole]) }  // the 16-entry ring holds four
    driver.notify(1)
    #expect(output.total.withLock { $0 } == 4 * 4 * (16 << 20))
    #expect(output.largest.withLock { $0 } <= VirtioConsole.outputChunk)
    var used = 0
    while driver.popUsed(1) != nil { used += 1 }
    #expect(used == 4)
  }
}

/// Counts what is written, keeping none of it.
final class MeasuringOutput: ConsoleOutput {
  let total = Mutex(0)
  let largest = Mutex(0)
  func write(_ buffer: UnsafeRawBufferPointer) {
    total.withLock { $0 += buffer.count }
    largest.withLock { $0 = max($0, buffer.count) }
  }
}
