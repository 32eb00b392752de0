import AsyncIO
import Dispatch
import GuestMemory
import KVM
import Platform
import Testing
import TestSupport
import VirtIO

@testable import RealmVMM

/// Queue doorbells caught by KVM: KVM_IOEVENTFD at each queue's notification address, following
/// BAR0, and the eventfd's signal ringing the device on the I/O thread.
@Suite struct KernelDoorbellsTests {
  static let ioeventfd: UInt = 0x4040_AE79  // _IOW(KVMIO, 0x79, struct kvm_ioeventfd), 64 bytes

  /// (address, fd, deassign) of each KVM_IOEVENTFD call so far.
  func registrations(_ syscalls: RecordingKVMSyscalls) -> [(address: UInt64, fd: Int32, deassign: Bool)] {
    syscalls.calls.filter { $0.request == Self.ioeventfd }.map { call in
      let bytes = call.bytes!
      #expect(bytes.count == 64)
      #expect(bytes.le(UInt32.self, at: 16) == 0)  // len 0: any width
      return (bytes.le(UInt64.self, at: 8), Int32(bitPattern: bytes.le(UInt32.self, at: 20)), bytes.le(UInt32.self, at: 24) == 4)
    }
  }

  @Test func setIOEventFDBytes() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    try vm.setIOEventFD(address: 0x5000_3004, eventfd: 42)
    try vm.setIOEventFD(address: 0x5000_3004, eventfd: 42, assign: false)
    let calls = syscalls.calls.filter { $0.request == Self.ioeventfd }
    #expect(calls.count == 2)
    #expect(calls[0].bytes == le64(0) + le64(0x5000_3004) + le32(0) + le32(42) + le32(0) + [UInt8](repeating: 0, count: 36))
    #expect(calls[1].bytes == le64(0) + le64(0x5000_3004) + le32(0) + le32(42) + le32(4) + [UInt8](repeating: 0, count: 36))
  }

  /// Registered where BAR0 decodes (nowhere until the driver turns decoding on), moved with it, and
  /// a signal on queue 0's eventfd is a doorbell: the entropy device answers the posted buffer.
  @Test func doorbellsFollowBAR0AndRingTheDevice() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let memory = try GuestMemory(ranges: [(0x8000_0000, 1 << 20)])
    let loop = try IOLoop(name: "t")
    try loop.start()
    defer { loop.stop() }
    let line = RecordingInterruptLine()
    let transport = VirtioPCITransport(device: VirtioEntropy(), memory: memory, interrupt: line, barAddress: 0x5000_4000)
    let doorbells = try KernelDoorbells(vm: vm, transport: transport, loop: loop)
    defer { doorbells.close() }
    #expect(registrations(syscalls).isEmpty)  // BAR0 does not decode yet

    let driver = VirtioPCIDriverHarness(
      transport: transport, memory: memory, interrupt: line, allocator: GuestAllocator(base: 0x8000_0000, size: 1 << 20))
    let notify = driver.bar + VirtioPCITransport.Layout.notify
    var seen = registrations(syscalls)
    #expect(seen.count == 1 && seen[0].address == notify && !seen[0].deassign)
    let fd = seen[0].fd

    // The driver moves BAR0: the doorbell leaves the old address for the new one.
    transport.writeConfig(offset: 0x10, size: 4, value: 0x5001_0000)
    seen = registrations(syscalls)
    #expect(seen.count == 3)
    #expect(seen[1].address == notify && seen[1].deassign)
    #expect(seen[2].address == 0x5001_0000 + VirtioPCITransport.Layout.notify && !seen[2].deassign)
    transport.writeConfig(offset: 0x10, size: 4, value: UInt32(driver.bar))  // back

    driver.start(queueCount: 1, size: 16)
    let buffer = driver.allocate(32)
    driver.post(0, [.init(address: buffer, length: 32, isWritable: true)])
    var one: UInt64 = 1
    #expect(write(fd, &one, 8) == 8)  // what KVM does on the guest's write
    #expect(driver.waitUsed(0, count: 1).first?.length == 32)

    // Decoding off: no doorbell is registered anywhere.
    transport.writeConfig(offset: 4, size: 2, value: 0)
    seen = registrations(syscalls)
    #expect(seen.last?.deassign == true && seen.last?.address == notify)
  }

  /// A kernel that refuses KVM_IOEVENTFD: the machine keeps the doorbells as MMIO exits.
  @Test func aRefusalIsThrown() throws {
    let syscalls = RecordingKVMSyscalls(pointer: { _, request, _ in request == Self.ioeventfd ? -38 : nil })
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let memory = try GuestMemory(ranges: [(0x8000_0000, 1 << 20)])
    let loop = try IOLoop(name: "t")
    let transport = VirtioPCITransport(device: VirtioEntropy(), memory: memory, interrupt: nil, barAddress: 0x5000_4000)
    transport.writeConfig(offset: 4, size: 2, value: 0x6)
    #expect(throws: KVMError.self) { try KernelDoorbells(vm: vm, transport: transport, loop: loop) }
  }
}
