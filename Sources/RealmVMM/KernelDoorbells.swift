import AsyncIO
import KVM
import Platform
import Synchronization
import VirtIO

/// One virtio-pci function's queue doorbells caught by KVM (KVM_IOEVENTFD) instead of exiting to
/// realm-run: an eventfd per queue, which KVM signals on the guest's write to the queue's
/// notification address, watched on the I/O thread, which rings the transport's doorbell there.
/// The vCPU goes straight back into the guest. The addresses follow BAR0 wherever the guest moves
/// it; while BAR0 does not decode, none is registered.
///
/// Both CCA host series here hand a Realm's faults on unprotected addresses to the same in-kernel
/// MMIO bus (`io_mem_abort` with the shared bit cleared), so Realms get this as well.
final class KernelDoorbells: @unchecked Sendable {
  private let vm: VirtualMachine
  private let loop: IOLoop
  private let transport: VirtioPCITransport
  private let eventfds: [Int32]
  private var watches: [IOLoop.Watch] = []
  /// The notification region's base the eventfds are registered at (nil: not registered).
  private let registered = Mutex<UInt64?>(nil)

  /// Creates an eventfd per queue of `transport`'s device and registers them at its notification
  /// region. Throws (having released everything) when the kernel refuses an eventfd or the first
  /// registration: the doorbells then stay ordinary MMIO exits.
  init(vm: VirtualMachine, transport: VirtioPCITransport, loop: IOLoop) throws(KVMError) {
    self.vm = vm
    self.loop = loop
    self.transport = transport
    do {
      eventfds = try makeEventFDs(transport.device.queueCount)
    } catch {
      throw .ioctl("eventfd", errno: error.rawValue)
    }
    // The observer registers them at once: a kernel that refuses KVM_IOEVENTFD is found out here.
    // A later refusal (after a BAR move) leaves those doorbells as MMIO exits, which still work.
    let failure = Mutex<KVMError?>(nil)
    transport.observeNotifyRegion { [self] base in
      do throws(KVMError) {
        try move(to: base)
      } catch {
        failure.withLock { $0 = $0 ?? error }
      }
    }
    if let error = failure.withLock({ $0 }) {
      transport.observeNotifyRegion { _ in }
      throw error  // deinit closes the eventfds: self is whole by now
    }
    for (queue, fd) in eventfds.enumerated() {
      watches.append(loop.watch(fd) { [transport] _ in
        if readEventFD(fd) != nil { transport.doorbell(queue: queue) }
      })
    }
  }

  /// Registers the eventfds at `base` (queue n at base + n * the notify multiplier), after removing
  /// them from where they were. Called by the transport under its lock, in the order BAR0 moved.
  private func move(to base: UInt64?) throws(KVMError) {
    try registered.withLock { (current: inout UInt64?) throws(KVMError) in
      guard base != current else { return }
      if let old = current {
        for (queue, fd) in eventfds.enumerated() {
          try? vm.setIOEventFD(address: address(old, queue), eventfd: fd, assign: false)
        }
        current = nil
      }
      guard let base else { return }
      for (queue, fd) in eventfds.enumerated() {
        do throws(KVMError) {
          try vm.setIOEventFD(address: address(base, queue), eventfd: fd)
        } catch {
          for (done, doneFD) in eventfds.enumerated().prefix(queue) {
            try? vm.setIOEventFD(address: address(base, done), eventfd: doneFD, assign: false)
          }
          throw error
        }
      }
      current = base
    }
  }

  private func address(_ base: UInt64, _ queue: Int) -> UInt64 {
    base + UInt64(queue) * UInt64(VirtioPCITransport.Layout.notifyMultiplier)
  }

  /// Unregisters and closes the eventfds (the machine calls this once the vCPUs have stopped).
  func close() {
    transport.observeNotifyRegion { _ in }
    try? move(to: nil)
    for watch in watches { loop.unwatch(watch) }
    watches = []
  }

  deinit {
    eventfds.forEach { Platform.close($0) }
  }
}
