import AsyncIO
import Devices
import KVM
import Platform
import Testing
import TestSupport

@testable import RealmVMM

/// INTx lines KVM raises from eventfds: KVM_IRQFD with a resample eventfd, raised by an eventfd
/// write, raised again after KVM's EOI resample while the source still holds the line.
@Suite struct KernelInterruptLineTests {
  static let irqfd: UInt = 0x4020_AE76  // _IOW(KVMIO, 0x76, struct kvm_irqfd), 32 bytes

  /// (fd, gsi, flags, resamplefd) of each KVM_IRQFD call so far.
  func calls(_ syscalls: RecordingKVMSyscalls) -> [(fd: Int32, gsi: UInt32, flags: UInt32, resample: Int32)] {
    syscalls.calls.filter { $0.request == Self.irqfd }.map { call in
      let bytes = call.bytes!
      #expect(bytes.count == 32)
      #expect(bytes[16...].allSatisfy { $0 == 0 })
      return (Int32(bitPattern: bytes.le(UInt32.self, at: 0)), bytes.le(UInt32.self, at: 4), bytes.le(UInt32.self, at: 8), Int32(bitPattern: bytes.le(UInt32.self, at: 12)))
    }
  }

  @Test func setIRQFDBytes() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    try vm.setIRQFD(spi: 3, eventfd: 40, resample: 41)
    try vm.setIRQFD(spi: 3, eventfd: 40, resample: 41, assign: false)
    let recorded = syscalls.calls.filter { $0.request == Self.irqfd }
    #expect(recorded.count == 2)
    #expect(recorded[0].bytes == le32(40) + le32(3) + le32(2) + le32(41) + [UInt8](repeating: 0, count: 16))
    #expect(recorded[1].bytes == le32(40) + le32(3) + le32(1) + le32(0) + [UInt8](repeating: 0, count: 16))
  }

  /// Whether `fd` (an eventfd) is signalled within `milliseconds`; clears it.
  func signalled(_ fd: Int32, within milliseconds: Int32 = 1000) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    guard poll(&entry, 1, milliseconds) == 1 else { return false }
    return readEventFD(fd) != nil
  }

  @Test func raisesAndRaisesAgainAfterTheResampleWhileHeld() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let loop = try IOLoop(name: "t")
    let line = try KernelInterruptLine(vm: vm, spi: 2, loop: loop)
    try loop.start()
    defer {
      loop.stop()
      line.close()
    }
    let assigned = try #require(calls(syscalls).first)
    #expect(assigned.gsi == 2 && assigned.flags == 2)
    let (trigger, resample) = (assigned.fd, assigned.resample)
    var one: UInt64 = 1

    line.set(level: true)
    #expect(signalled(trigger))
    // The guest's EOI while the device still holds the line (its ISR unread): raised again.
    #expect(write(resample, &one, 8) == 8)
    #expect(signalled(trigger))
    // The ISR read lowers the source; the EOI's resample then leaves the line down.
    line.set(level: false)
    #expect(write(resample, &one, 8) == 8)
    #expect(!signalled(trigger, within: 200))
  }

  @Test func closingHandsTheLineBack() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let loop = try IOLoop(name: "t")
    let line = try KernelInterruptLine(vm: vm, spi: 1, loop: loop)
    try loop.start()
    loop.stop()
    line.close()
    line.close()
    let seen = calls(syscalls)
    #expect(seen.count == 2 && seen[1].flags == 1 && seen[1].gsi == 1)
  }

  /// A kernel that refuses KVM_IRQFD: thrown, and the machine keeps KVM_IRQ_LINE.
  @Test func aRefusalIsThrown() throws {
    let syscalls = RecordingKVMSyscalls(pointer: { _, request, _ in request == Self.irqfd ? -22 : nil })
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let loop = try IOLoop(name: "t")
    #expect(throws: KVMError.self) { try KernelInterruptLine(vm: vm, spi: 1, loop: loop) }
  }
}
