import Synchronization

/// Where a console device sends what the guest writes.
public protocol ConsoleOutput: Sendable {
  func write(_ bytes: UnsafeRawBufferPointer)
}

/// A 16550A-compatible UART (the 8250 family), as kvmtool and QEMU emulate it: byte-wide registers,
/// a receive FIFO fed from the host, transmit straight to a ``ConsoleOutput``.
///
/// The transmitter is always empty, so "transmit holding register empty" is reported in IIR
/// whenever that interrupt is enabled: Linux's driver waits for it before sending more than a
/// FIFO's worth (without it output stops after 16 bytes).
public final class UART8250: MMIODevice {
  /// Register offsets (DLAB selects the divisor latch at 0 and 1).
  enum Register {
    static let data: UInt64 = 0  // RBR / THR / DLL
    static let interruptEnable: UInt64 = 1  // IER / DLM
    static let interruptIdentity: UInt64 = 2  // IIR (read) / FCR (write)
    static let lineControl: UInt64 = 3
    static let modemControl: UInt64 = 4
    static let lineStatus: UInt64 = 5
    static let modemStatus: UInt64 = 6
    static let scratch: UInt64 = 7
  }

  enum Bits {
    static let ierReceivedData: UInt8 = 0x01
    static let ierTransmitEmpty: UInt8 = 0x02
    static let iirNoInterrupt: UInt8 = 0x01
    static let iirTransmitEmpty: UInt8 = 0x02
    static let iirReceivedData: UInt8 = 0x04
    static let iirFIFOsEnabled: UInt8 = 0xC0
    static let lcrDivisorLatch: UInt8 = 0x80
    static let lsrDataReady: UInt8 = 0x01
    static let lsrTransmitEmpty: UInt8 = 0x60  // THRE | TEMT
    static let mcrLoopback: UInt8 = 0x10
    static let msrConnected: UInt8 = 0xB0  // DCD | DSR | CTS
  }

  /// Size of the register window on the bus.
  public static let size: UInt64 = 8
  static let fifoCapacity = 64

  struct State {
    var interruptEnable: UInt8 = 0
    var lineControl: UInt8 = 0x03
    var modemControl: UInt8 = 0x08
    var scratch: UInt8 = 0
    var fifoControl: UInt8 = 0
    var divisor: UInt16 = 12
    var receive = ByteRing(capacity: UART8250.fifoCapacity)
    var irqLevel = false

    var hasReceivedData: Bool { !receive.isEmpty }
  }

  private let state = Mutex(State())
  private let output: any ConsoleOutput
  private let interrupt: (any InterruptLine)?

  public init(output: any ConsoleOutput, interrupt: (any InterruptLine)?) {
    self.output = output
    self.interrupt = interrupt
  }

  /// Queues host input for the guest; returns how many bytes fit in the receive FIFO.
  @discardableResult
  public func receive(_ bytes: some Collection<UInt8>) -> Int {
    let (accepted, level) = state.withLock { state -> (Int, Bool?) in
      var accepted = 0
      for byte in bytes {
        guard state.receive.append(byte) else { break }
        accepted += 1
      }
      return (accepted, Self.updateInterrupt(&state))
    }
    drive(level)
    return accepted
  }

  /// Whether the receive FIFO can take more input.
  public var canReceive: Bool { state.withLock { !$0.receive.isFull } }

  /// Bytes waiting in the receive FIFO (never more than its capacity; checked by the fuzzer).
  var receivedCount: Int { state.withLock { $0.receive.count } }

  public func read(offset: UInt64, size: Int) -> UInt64 {
    let (value, level) = state.withLock { state -> (UInt8, Bool?) in
      let value = Self.readRegister(offset, &state)
      return (value, Self.updateInterrupt(&state))
    }
    drive(level)
    return UInt64(value)
  }

  public func write(offset: UInt64, size: Int, value: UInt64) {
    let byte = UInt8(truncatingIfNeeded: value)
    var transmitted: UInt8?
    let level = state.withLock { state -> Bool? in
      transmitted = Self.writeRegister(offset, byte, &state)
      return Self.updateInterrupt(&state)
    }
    if let transmitted {
      withUnsafeBytes(of: transmitted) { output.write($0) }
    }
    drive(level)
  }

  private func drive(_ level: Bool?) {
    if let level { interrupt?.set(level: level) }
  }

  private static func readRegister(_ offset: UInt64, _ state: inout State) -> UInt8 {
    let latch = state.lineControl & Bits.lcrDivisorLatch != 0
    switch offset {
    case Register.data:
      if latch { return UInt8(truncatingIfNeeded: state.divisor) }
      return state.receive.removeFirst() ?? 0
    case Register.interruptEnable:
      return latch ? UInt8(truncatingIfNeeded: state.divisor >> 8) : state.interruptEnable
    case Register.interruptIdentity:
      return identity(state) | (state.fifoControl & 0x01 != 0 ? Bits.iirFIFOsEnabled : 0)
    case Register.lineControl:
      return state.lineControl
    case Register.modemControl:
      return state.modemControl
    case Register.lineStatus:
      return Bits.lsrTransmitEmpty | (state.hasReceivedData ? Bits.lsrDataReady : 0)
    case Register.modemStatus:
      return state.modemControl & Bits.mcrLoopback != 0 ? 0 : Bits.msrConnected
    case Register.scratch:
      return state.scratch
    default:
      return 0
    }
  }

  /// Applies a register write; returns the byte to transmit, if the write was one.
  private static func writeRegister(_ offset: UInt64, _ byte: UInt8, _ state: inout State) -> UInt8? {
    let latch = state.lineControl & Bits.lcrDivisorLatch != 0
    switch offset {
    case Register.data:
      if latch {
        state.divisor = state.divisor & 0xFF00 | UInt16(byte)
        return nil
      }
      if state.modemControl & Bits.mcrLoopback != 0 {
        state.receive.append(byte)  // a full FIFO drops it, as an overrun does
        return nil
      }
      return byte
    case Register.interruptEnable:
      if latch {
        state.divisor = state.divisor & 0x00FF | UInt16(byte) << 8
      } else {
        state.interruptEnable = byte & 0x0F
      }
    case Register.interruptIdentity:
      state.fifoControl = byte
      if byte & 0x02 != 0 {  // clear the receive FIFO
        state.receive.removeAll()
      }
    case Register.lineControl:
      state.lineControl = byte
    case Register.modemControl:
      state.modemControl = byte & 0x1F
    case Register.scratch:
      state.scratch = byte
    default:
      break
    }
    return nil
  }

  private static func identity(_ state: State) -> UInt8 {
    if state.interruptEnable & Bits.ierReceivedData != 0 && state.hasReceivedData {
      return Bits.iirReceivedData
    }
    if state.interruptEnable & Bits.ierTransmitEmpty != 0 {
      return Bits.iirTransmitEmpty
    }
    return Bits.iirNoInterrupt
  }

  /// The new line level if it changed.
  private static func updateInterrupt(_ state: inout State) -> Bool? {
    let level = identity(state) != Bits.iirNoInterrupt
    guard level != state.irqLevel else { return nil }
    state.irqLevel = level
    return level
  }
}

/// A FIFO of at most `capacity` bytes in storage of that size, allocated once: what the guest or
/// the host pushes into a full one is refused, never stored.
struct ByteRing {
  private var storage: [UInt8]
  private var head = 0
  private(set) var count = 0

  init(capacity: Int) {
    storage = [UInt8](repeating: 0, count: capacity)
  }

  var capacity: Int { storage.count }
  var isEmpty: Bool { count == 0 }
  var isFull: Bool { count == storage.count }

  /// Adds `byte` at the end; false (and nothing stored) when the ring is full.
  @discardableResult
  mutating func append(_ byte: UInt8) -> Bool {
    guard !isFull else { return false }
    storage[(head + count) % storage.count] = byte
    count += 1
    return true
  }

  /// Takes the oldest byte, if any.
  mutating func removeFirst() -> UInt8? {
    guard !isEmpty else { return nil }
    defer {
      head = (head + 1) % storage.count
      count -= 1
    }
    return storage[head]
  }

  mutating func removeAll() {
    head = 0
    count = 0
  }
}
