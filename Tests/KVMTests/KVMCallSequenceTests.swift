import CKVM
import KVM
import Synchronization
import TestSupport
import Testing

/// The ioctls the KVM layer issues, checked call by call against the documented arm64 ABI
/// (numbers and layouts from include/uapi/linux/kvm.h as listed in kvm-cca-api.md §2, written
/// here as literals rather than taken from CKVM).
@Suite struct KVMCallSequenceTests {
  @Test func createsAVMWithTheRequestedIPASize() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [165: 44])
    let system = try KVMSystem(syscalls: syscalls)
    #expect(syscalls.openedPaths == ["/dev/kvm"])
    #expect(system.maxIPABits == 44)
    let vm = try system.createVM(type: 33)
    let calls = syscalls.calls
    #expect(calls[0] == .init(fd: system.fd, request: 0xAE00, bytes: nil, value: 0))  // KVM_GET_API_VERSION
    #expect(calls[1] == .init(fd: system.fd, request: 0xAE03, bytes: nil, value: 165))  // CHECK_EXTENSION(VM_IPA_SIZE)
    #expect(calls[2] == .init(fd: system.fd, request: 0xAE01, bytes: nil, value: 33))  // KVM_CREATE_VM(33)
    #expect(vm.fd > system.fd)
  }

  /// KVM_CREATE_VM fails with EINTR when a signal arrives while the kernel sets the VM up: it is
  /// tried again. Other ioctls are not (KVM_RUN's EINTR is how a kicked vCPU returns).
  @Test func createVMIsRetriedOnEINTR() throws {
    let interruptions = Atomic<Int>(0)
    let syscalls = RecordingKVMSyscalls(value: { _, request, _ in
      guard request == 0xAE01 || request == 0xAE04 else { return nil }  // KVM_CREATE_VM, GET_VCPU_MMAP_SIZE
      return interruptions.add(1, ordering: .relaxed).newValue <= 2 ? -4 : nil  // -EINTR twice
    })
    let system = try KVMSystem(syscalls: syscalls)
    let vm = try system.createVM(type: 0)
    #expect(syscalls.calls.filter { $0.request == 0xAE01 }.count == 3)
    #expect(vm.fd > system.fd)
    interruptions.store(0, ordering: .relaxed)
    #expect(throws: KVMError.ioctl("KVM_GET_VCPU_MMAP_SIZE", errno: 4)) { try system.vcpuMapSize() }
  }

  @Test func refusesAnUnknownAPIVersion() {
    let syscalls = RecordingKVMSyscalls(value: { _, request, _ in request == 0xAE00 ? 11 : nil })
    #expect(throws: KVMError.self) { try KVMSystem(syscalls: syscalls) }
  }

  @Test func openFailureNamesTheDevice() {
    struct Missing: KVMSyscalls {
      func open(_ path: String, flags: Int32) -> Int32 { -2 }  // ENOENT
      func close(_ fd: Int32) {}
      func ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer, argumentSize: Int) -> Int32 { 0 }
      func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Int32 { 0 }
      func mapRunStructure(vcpu fd: Int32, size: Int) -> UnsafeMutableRawPointer? { nil }
      func unmap(_ address: UnsafeMutableRawPointer, size: Int) {}
    }
    #expect(throws: KVMError.unavailable(path: "/dev/kvm", errno: 2)) { try KVMSystem(syscalls: Missing()) }
  }

  @Test func memorySlotUsesRegion2WithGuestMemfd() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [231: 1])
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    try vm.setMemorySlot(.init(
      slot: 3, guestAddress: 0x8000_0000, size: 0x1000_0000, hostAddress: 0x7F00_0000_0000,
      guestMemfd: (fd: 42, offset: 0x2000)))
    let call = try #require(syscalls.calls.last)
    #expect(call.request == 0x40A0_AE49)  // KVM_SET_USER_MEMORY_REGION2
    let bytes = try #require(call.bytes)
    #expect(bytes.count == 160)
    #expect(bytes.le(UInt32.self, at: 0) == 3)  // slot
    #expect(bytes.le(UInt32.self, at: 4) == 1 << 2)  // KVM_MEM_GUEST_MEMFD
    #expect(bytes.le(UInt64.self, at: 8) == 0x8000_0000)
    #expect(bytes.le(UInt64.self, at: 16) == 0x1000_0000)
    #expect(bytes.le(UInt64.self, at: 24) == 0x7F00_0000_0000)
    #expect(bytes.le(UInt64.self, at: 32) == 0x2000)  // guest_memfd_offset
    #expect(bytes.le(UInt32.self, at: 40) == 42)  // guest_memfd
    #expect(bytes[44...].allSatisfy { $0 == 0 })
  }

  @Test func memorySlotFallsBackToTheOriginalIoctl() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    try vm.setMemorySlot(.init(slot: 0, guestAddress: 0x8000_0000, size: 0x10_0000, hostAddress: 0x1000))
    let call = try #require(syscalls.calls.last)
    #expect(call.request == 0x4020_AE46)  // KVM_SET_USER_MEMORY_REGION
    #expect(call.bytes == [0, 0, 0, 0, 0, 0, 0, 0] + le64(0x8000_0000) + le64(0x10_0000) + le64(0x1000))
    #expect(throws: KVMError.self) {
      try vm.setMemorySlot(.init(slot: 1, guestAddress: 0, size: 4096, hostAddress: 0, guestMemfd: (3, 0)))
    }
  }

  @Test func vcpuInitAndEntryRegisters() throws {
    let syscalls = RecordingKVMSyscalls()
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let vcpu = try vm.createVCPU(id: 1)
    try vcpu.initialize(target: 5, features: [2, 0])  // PSCI 0.2, powered off
    let before = syscalls.calls.count
    try vcpu.setEntry(pc: 0x8000_0000, x0: 0x8FE0_0000)
    let calls = Array(syscalls.calls[(before - 1)...])
    // KVM_ARM_VCPU_INIT: target 5, features[0] = PSCI_0_2 | POWER_OFF
    #expect(calls[0].request == 0x4020_AEAE)
    #expect(calls[0].bytes == le32(5) + le32(0b101) + [UInt8](repeating: 0, count: 24))
    // KVM_SET_ONE_REG x0, x1, x2, x3, pc: ids from the arm64 core register encoding
    let ids = calls.dropFirst().map { $0.bytes!.le(UInt64.self, at: 0) }
    #expect(calls.dropFirst().allSatisfy { $0.request == 0x4010_AEAC })
    #expect(ids == [0x6030_0000_0010_0000, 0x6030_0000_0010_0002, 0x6030_0000_0010_0004, 0x6030_0000_0010_0006, 0x6030_0000_0010_0040])
  }

  @Test func pmuCountersInterruptAndInit() throws {
    // PMCR_EL0 with N = 6 (bits 15:11) and the E bit set
    let syscalls = RecordingKVMSyscalls(pointer: { _, request, argument in
      if request == 0x4010_AEAB {  // KVM_GET_ONE_REG: write the value where addr points
        let address = argument.load(fromByteOffset: 8, as: UInt64.self)
        UnsafeMutableRawPointer(bitPattern: UInt(address))!.storeBytes(of: UInt64(6 << 11 | 1), as: UInt64.self)
      }
      return nil
    })
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let vcpu = try vm.createVCPU(id: 0)
    let before = syscalls.calls.count
    try vcpu.configurePMU(interrupt: 23, counters: 4)
    let calls = Array(syscalls.calls[before...])
    #expect(calls.map(\.request) == [0x4010_AEAB, 0x4010_AEAC, 0x4018_AEE1, 0x4018_AEE1])
    #expect(calls[0].bytes!.le(UInt64.self, at: 0) == 0x6030_0000_0013_DCE0)  // PMCR_EL0
    #expect(calls[1].bytes!.le(UInt64.self, at: 0) == 0x6030_0000_0013_DCE0)
    // (group KVM_ARM_VCPU_PMU_V3_CTRL 0, attr IRQ 0), then (0, INIT 1)
    #expect(calls[2].bytes!.le(UInt32.self, at: 4) == 0 && calls[2].bytes!.le(UInt64.self, at: 8) == 0)
    #expect(calls[3].bytes!.le(UInt32.self, at: 4) == 0 && calls[3].bytes!.le(UInt64.self, at: 8) == 1)
    #expect(throws: KVMError.self) { try vcpu.configurePMU(interrupt: 23, counters: 7) }  // only 6 here
  }

  @Test func gicDeviceAndSPILines() throws {
    let syscalls = RecordingKVMSyscalls(pointer: { _, request, argument in
      if request == 0xC00C_AEE0 { argument.storeBytes(of: UInt32(77), toByteOffset: 4, as: UInt32.self) }  // device fd
      return nil
    })
    let vm = try KVMSystem(syscalls: syscalls).createVM(type: 0)
    let gic = try VGICv3(vm: vm, distributor: 0x3FFF_0000, redistributors: 0x3FFD_0000)
    try gic.initialize(interruptCount: 96)
    try vm.setSPI(0, level: true)
    #expect(syscalls.calls.suffix(6).map(\.request) == [0xC00C_AEE0, 0x4018_AEE1, 0x4018_AEE1, 0x4018_AEE1, 0x4018_AEE1, 0x4008_AE61])
    let create = Array(syscalls.calls.filter { $0.request == 0xC00C_AEE0 })
    #expect(create.count == 1 && create[0].bytes!.le(UInt32.self, at: 0) == 7)  // KVM_DEV_TYPE_ARM_VGIC_V3
    let attributes = syscalls.calls.filter { $0.request == 0x4018_AEE1 }
    #expect(attributes.allSatisfy { $0.fd == 77 })
    // (group, attr): ADDR/DIST, ADDR/REDIST, NR_IRQS, CTRL/INIT
    #expect(attributes.map { [$0.bytes!.le(UInt32.self, at: 4), UInt32($0.bytes!.le(UInt64.self, at: 8))] } == [[0, 2], [0, 3], [3, 0], [4, 0]])
    let irq = try #require(syscalls.calls.last)
    #expect(irq.request == 0x4008_AE61)  // KVM_IRQ_LINE
    #expect(irq.bytes == le32(1 << 24 | 32) + le32(1))  // SPI type, INTID 32
  }
}


/// CCA series probing: a capability number counts only when the kernel also takes a realm VM.
@Suite struct CCAProbeTests {
  @Test func aCapabilityWithoutRealmVMsIsNotCCA() throws {
    // A stock 7.3 kernel answers capability 251 (something else there) and refuses realm VM types.
    let syscalls = RecordingKVMSyscalls(capabilities: [251: 1], value: { _, request, value in
      request == 0xAE01 && value & ~0xFF != 0 ? -22 : nil
    })
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true) == nil)
    let creates = syscalls.calls.filter { $0.request == 0xAE01 }.map(\.value)
    #expect(creates == [1 << 30 | 33])  // 251 is a v15 number: realm type 1 << 30
  }

  @Test func seriesV13() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [248: 1])
    let series = CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true)
    #expect(series?.name == "v13" && series?.capability == 248 && series?.family == .rmi)
    #expect(syscalls.calls.filter { $0.request == 0xAE01 }.map(\.value) == [0x121])
  }

  @Test func seriesV14UsesTheNewVMType() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [249: 1])
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true)?.capability == 249)
    #expect(syscalls.calls.filter { $0.request == 0xAE01 }.map(\.value) == [1 << 30 | 33])
  }

  @Test func generationA() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [243: 1])
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: true) == CCASeries(name: "v9"))
  }

  @Test func notAskedOffArm64() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [248: 1])
    #expect(CCASeries.probe(try KVMSystem(syscalls: syscalls), isArm64: false) == nil)
    #expect(syscalls.calls.count == 1)  // only the API version
  }
}
