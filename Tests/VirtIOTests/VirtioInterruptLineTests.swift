import Dispatch
import Devices
import Glibc
import FirmwareCore
import GuestMemory
import Synchronization
import Testing
import TestSupport
import VirtIO

/// A device that only keeps its activation's interrupt, for the transport's INTx tests.
private final class SignallingDevice: VirtioDevice {
  let deviceType = VirtioDeviceType.entropy
  let features: UInt64 = 0
  let queueCount = 1
  let maxQueueSize: UInt16 = 16
  let configSize = 0
  let interrupt = Mutex<VirtioInterrupt?>(nil)
  func readConfig(offset: Int, size: Int) -> UInt64 { 0 }
  func writeConfig(offset: Int, size: Int, value: UInt64) {}
  func activate(_ activation: VirtioActivation) { interrupt.withLock { $0 = activation.interrupt } }
  func process(queue: Int) {}
  func reset() { interrupt.withLock { $0 = nil } }
}

/// An INTx line slow to change (as KVM_IRQ_LINE is a system call): it widens any window between
/// deciding a level and driving it.
private final class SlowLine: InterruptLine, @unchecked Sendable {
  private let state = Mutex(false)
  func set(level: Bool) {
    for _ in 0..<200 { sched_yield() }
    state.withLock { $0 = level }
  }
  var level: Bool { state.withLock { $0 } }
}

@Suite struct VirtioInterruptLineTests {
  /// Completions raising INTx on one thread while the driver reads the ISR on another: once both
  /// stop and the ISR is read, the line is low. (When the level was decided under the lock and
  /// driven after it, the two could reach the line out of order and leave it high with the ISR
  /// clear: an interrupt no ISR read ends, which Linux disables; virtio-net went silent.)
  @Test func theLineFollowsTheISRUnderRaces() {
    let memory = try! GuestMemory(ranges: [(0x8000_0000, 1 << 20)])
    let device = SignallingDevice()
    let line = SlowLine()
    let transport = VirtioPCITransport(device: device, memory: memory, interrupt: line, barAddress: 0x5000_4000)
    let driver = VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: RecordingInterruptLine(),
      allocator: GuestAllocator(base: 0x8000_0000, size: 1 << 20))
    driver.start(queueCount: 1, size: 16)
    let interrupt = device.interrupt.withLock { $0 }!
    let isrOffset = UInt64(driver.regions[VirtioPCICapability.isr] ?? 0)
    var stale = 0
    for _ in 0..<1_000 {
      DispatchQueue.concurrentPerform(iterations: 2) { worker in
        if worker == 0 { interrupt.usedBuffers() } else { _ = transport.readBAR(0, offset: isrOffset, size: 1) }
      }
      _ = transport.readBAR(0, offset: isrOffset, size: 1)
      if line.level { stale += 1 }
    }
    #expect(stale == 0, "INTx left high with the ISR clear \(stale) times")
  }
}
