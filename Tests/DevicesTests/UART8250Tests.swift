@testable import Devices
import Synchronization
import Testing

final class CapturedOutput: ConsoleOutput {
  let bytes = Mutex<[UInt8]>([])
  func write(_ data: UnsafeRawBufferPointer) { bytes.withLock { $0.append(contentsOf: data) } }
  var text: String { String(decoding: bytes.withLock { $0 }, as: UTF8.self) }
}

final class RecordedLine: InterruptLine {
  let levels = Mutex<[Bool]>([])
  func set(level: Bool) { levels.withLock { $0.append(level) } }
  var last: Bool? { levels.withLock { $0.last } }
}

/// The 16550A as Linux's 8250 driver drives it.
@Suite struct UART8250Tests {
  let output = CapturedOutput()
  let line = RecordedLine()
  var uart: UART8250 { UART8250(output: output, interrupt: line) }

  @Test func transmitsWrittenBytes() {
    let uart = self.uart
    for byte in "hi\n".utf8 { uart.write(offset: 0, size: 1, value: UInt64(byte)) }
    #expect(output.text == "hi\n")
    #expect(uart.read(offset: 5, size: 1) & 0x60 == 0x60)  // THRE | TEMT
  }

  @Test func transmitEmptyInterruptWhileEnabled() {
    let uart = self.uart
    #expect(uart.read(offset: 2, size: 1) & 0x0F == 0x01)  // no interrupt
    uart.write(offset: 1, size: 1, value: 0x02)  // IER: THRI
    #expect(line.last == true)
    #expect(uart.read(offset: 2, size: 1) & 0x0F == 0x02)  // THRE pending
    uart.write(offset: 1, size: 1, value: 0x00)
    #expect(line.last == false)
  }

  @Test func receivesInputWithAnInterrupt() {
    let uart = self.uart
    uart.write(offset: 1, size: 1, value: 0x01)  // IER: RDI
    #expect(uart.receive(Array("ab".utf8)) == 2)
    #expect(line.last == true)
    #expect(uart.read(offset: 2, size: 1) & 0x0F == 0x04)
    #expect(uart.read(offset: 5, size: 1) & 0x01 == 0x01)  // data ready
    #expect(uart.read(offset: 0, size: 1) == UInt64(UInt8(ascii: "a")))
    #expect(uart.read(offset: 0, size: 1) == UInt64(UInt8(ascii: "b")))
    #expect(uart.read(offset: 5, size: 1) & 0x01 == 0)
    #expect(line.last == false)
  }

  @Test func receiveFIFOIsBounded() {
    let uart = self.uart
    #expect(uart.receive([UInt8](repeating: 0x41, count: 100)) == 64)
    #expect(!uart.canReceive)
    _ = uart.read(offset: 0, size: 1)
    #expect(uart.canReceive)
  }

  @Test func divisorLatchAndScratch() {
    let uart = self.uart
    uart.write(offset: 3, size: 1, value: 0x83)  // DLAB
    uart.write(offset: 0, size: 1, value: 0x01)
    uart.write(offset: 1, size: 1, value: 0x02)
    #expect(uart.read(offset: 0, size: 1) == 0x01)
    #expect(uart.read(offset: 1, size: 1) == 0x02)
    uart.write(offset: 3, size: 1, value: 0x03)
    #expect(output.text.isEmpty)  // divisor writes are not output
    uart.write(offset: 7, size: 1, value: 0x5A)
    #expect(uart.read(offset: 7, size: 1) == 0x5A)
  }

  @Test func loopbackDoesNotReachTheConsole() {
    let uart = self.uart
    uart.write(offset: 4, size: 1, value: 0x10)
    uart.write(offset: 0, size: 1, value: 0x55)
    #expect(output.text.isEmpty)
    #expect(uart.read(offset: 0, size: 1) == 0x55)
  }

  /// A guest looping bytes back forever keeps the FIFO at its 64 bytes: each byte read comes back,
  /// and what is sent into a full FIFO is dropped (the bound is the ring's fixed storage).
  @Test func loopbackStaysWithinTheFIFO() {
    let uart = self.uart
    uart.write(offset: 4, size: 1, value: 0x10)
    for round in 0..<100_000 {
      uart.write(offset: 0, size: 1, value: UInt64(round & 0xFF))
      #expect(uart.read(offset: 0, size: 1) == UInt64(round & 0xFF))
    }
    for byte in 0..<100 { uart.write(offset: 0, size: 1, value: UInt64(byte)) }
    var received: [UInt64] = []
    while uart.read(offset: 5, size: 1) & 0x01 != 0 { received.append(uart.read(offset: 0, size: 1)) }
    #expect(received == (0..<64).map { UInt64($0) })
  }
}

@Suite struct ByteRingTests {
  @Test func holdsAtMostItsCapacityInOrder() {
    var ring = ByteRing(capacity: 4)
    for byte in UInt8(1)...6 { ring.append(byte) }
    #expect(ring.count == 4 && ring.isFull)
    #expect(ring.removeFirst() == 1)
    let roomForOne = ring.append(7)
    let roomForTwo = ring.append(8)
    #expect(roomForOne && !roomForTwo)
    var out: [UInt8] = []
    while let byte = ring.removeFirst() { out.append(byte) }
    #expect(out == [2, 3, 4, 7])
    #expect(ring.capacity == 4 && ring.isEmpty)
  }
}

final class FakeDevice: MMIODevice {
  let value: UInt64
  let writes = Mutex<[(UInt64, UInt64)]>([])
  init(_ value: UInt64) { self.value = value }
  func read(offset: UInt64, size: Int) -> UInt64 { value + offset }
  func write(offset: UInt64, size: Int, value: UInt64) { writes.withLock { $0.append((offset, value)) } }
}

@Suite struct MMIOBusTests {
  @Test func resolvesByRange() throws {
    var bus = MMIOBus()
    try bus.register(FakeDevice(0x100), at: 0x1000, size: 0x100)
    try bus.register(FakeDevice(0x200), at: 0x3000, size: 0x10)
    try bus.register(FakeDevice(0x300), at: 0x2000, size: 0x1000)
    #expect(bus.read(0x1000, size: 4) == 0x100)
    #expect(bus.read(0x10FF, size: 1) == 0x1FF)
    #expect(bus.read(0x1100, size: 4) == nil)
    #expect(bus.read(0x2FFF, size: 1) == 0x300 + 0xFFF)
    #expect(bus.read(0x3000, size: 1) == 0x200)
    #expect(bus.read(0x0FFF, size: 1) == nil)
    #expect(bus.read(0x3010, size: 1) == nil)
    #expect(!bus.write(0x5000, size: 4, value: 1))
  }

  @Test func refusesOverlapsAndEmptyRanges() throws {
    var bus = MMIOBus()
    try bus.register(FakeDevice(0), at: 0x1000, size: 0x100)
    #expect(throws: BusError.overlap(base: 0x10F0, size: 0x20)) { try bus.register(FakeDevice(0), at: 0x10F0, size: 0x20) }
    #expect(throws: BusError.overlap(base: 0xF00, size: 0x101)) { try bus.register(FakeDevice(0), at: 0xF00, size: 0x101) }
    #expect(throws: BusError.empty(base: 0x5000)) { try bus.register(FakeDevice(0), at: 0x5000, size: 0) }
    #expect(throws: BusError.self) { try bus.register(FakeDevice(0), at: UInt64.max - 1, size: 4) }
    try bus.register(FakeDevice(0), at: 0xF00, size: 0x100)  // adjacent is fine
  }
}
