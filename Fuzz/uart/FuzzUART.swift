// libFuzzer entry for the 8250 UART (`Scripts/fuzz-devices --target uart`): any sequence of guest
// register accesses (any offset, size and value, with and without DLAB and loopback), host input
// interleaved.
//
// Input: a sequence of operations, each an op byte then its arguments:
//   0 read      offset, size
//   1 write     offset, size, value (size bytes)
//   2 input     count n (0...127), n bytes of host input
//   3 drain     reads the data register until the line status says empty (unless DLAB is set)
// Invariants: reads return values of the access size; the receive FIFO never holds more than its
// capacity and input past it is refused; each write transmits at most one byte; the interrupt line
// is driven only on a change; LSR's data-ready bit says whether the FIFO has data.
@testable import Devices

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
  var input = FuzzInput(data, size)
  let output = CountingOutput(chunkLimit: 1)
  let line = CheckedLine()
  let uart = UART8250(output: output, interrupt: line)
  let capacity = UART8250.fifoCapacity

  while !input.isAtEnd {
    let op = input.u8()
    switch op % 4 {
    case 0:
      let offset = UInt64(input.u8() % 16)  // the bus gives 0...7; the rest must read as something sane
      let size = input.accessSize()
      checkRead(uart.read(offset: offset, size: size), size: size, "UART register \(offset)")
    case 1:
      let offset = UInt64(input.u8() % 16)
      let size = input.accessSize()
      let before = output.bytes
      uart.write(offset: offset, size: size, value: input.le(size))
      invariant(output.bytes - before <= 1, "one register write transmitted \(output.bytes - before) bytes")
    case 2:
      let bytes = input.take(Int(input.u8() % 128))
      let held = uart.receivedCount
      let accepted = uart.receive(bytes)
      invariant(accepted == min(bytes.count, capacity - held), "receive took \(accepted) of \(bytes.count) with \(held) held")
      invariant(uart.canReceive == (uart.receivedCount < capacity), "canReceive disagrees with the FIFO")
    default:
      guard uart.read(offset: 3, size: 1) & 0x80 == 0 else { break }  // DLAB: offset 0 is the divisor
      var reads = 0
      while uart.read(offset: 5, size: 1) & 1 != 0 {  // LSR data ready
        invariant(reads < capacity, "more than \(capacity) bytes read from the receive FIFO")
        _ = uart.read(offset: 0, size: 1)
        reads += 1
      }
      invariant(uart.receivedCount == 0, "LSR says empty but the FIFO holds \(uart.receivedCount) bytes")
    }
    invariant(uart.receivedCount <= capacity, "receive FIFO holds \(uart.receivedCount) bytes")
    let dataReady = uart.read(offset: 5, size: 1) & 1 != 0
    invariant(dataReady == (uart.receivedCount > 0), "LSR data ready \(dataReady) with \(uart.receivedCount) bytes held")
  }
  return 0
}
