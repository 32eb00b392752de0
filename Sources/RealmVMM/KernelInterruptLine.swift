import AsyncIO
import Devices
import KVM
import Platform
import Synchronization

/// A level-triggered SPI that KVM drives from eventfds (`KVM_IRQFD` with a resample eventfd)
/// instead of a `KVM_IRQ_LINE` ioctl per change: raising it is an eventfd write, from whichever
/// thread completed the request, and lowering it costs nothing.
///
/// KVM lowers the line itself when the guest ends the interrupt (EOI) and signals the resample
/// eventfd; on the I/O thread the line is then raised again if its source still holds it high (a
/// device whose ISR the guest has not read yet), as a level-triggered wire would have stayed high.
/// Realms too: the vGIC is KVM's for them as for a normal VM.
final class KernelInterruptLine: InterruptLine, @unchecked Sendable {
  private let vm: VirtualMachine
  private let number: UInt32
  private let loop: IOLoop
  private let trigger: Int32
  private let resample: Int32
  /// The level the source last set.
  private let level = Atomic(false)
  private var watch: IOLoop.Watch?

  /// SPI `number` driven through eventfds, its resample eventfd watched on `loop`. Throws (having
  /// released everything) when KVM refuses: the line then stays with `KVM_IRQ_LINE`.
  init(vm: VirtualMachine, spi number: UInt32, loop: IOLoop) throws(KVMError) {
    self.vm = vm
    self.number = number
    self.loop = loop
    let fds: [Int32]
    do {
      fds = try makeEventFDs(2)
    } catch {
      throw .ioctl("eventfd", errno: error.rawValue)
    }
    (trigger, resample) = (fds[0], fds[1])
    do {
      try vm.setIRQFD(spi: number, eventfd: trigger, resample: resample)
    } catch {
      fds.forEach { Platform.close($0) }
      throw error
    }
    watch = loop.watch(resample) { [self] _ in
      if readEventFD(resample) != nil, level.load(ordering: .sequentiallyConsistent) { signalEventFD(trigger) }
    }
  }

  func set(level high: Bool) {
    level.store(high, ordering: .sequentiallyConsistent)
    if high { signalEventFD(trigger) }
  }

  /// Hands the SPI back to `KVM_IRQ_LINE` and closes the eventfds, once the I/O thread has stopped
  /// watching. Idempotent.
  func close() {
    guard let watch else { return }
    self.watch = nil
    loop.unwatch(watch)
    try? vm.setIRQFD(spi: number, eventfd: trigger, resample: resample, assign: false)
    Platform.close(trigger)
    Platform.close(resample)
  }
}
