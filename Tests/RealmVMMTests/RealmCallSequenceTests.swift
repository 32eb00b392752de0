import Foundation
import KVM
import Synchronization
import TestSupport
import Testing
@testable import RealmVMM

/// The whole Realm construction, call by call, for each CCA host UAPI generation on the same
/// machine config, through the recording syscall double. Expected numbers and layouts are written
/// from the documented ABI (kvm-cca-api.md §2-§5, §8; the v13 header in ../shared/cca-host), not
/// taken from CKVM.
@Suite(.serialized) struct RealmCallSequenceTests {
  static let ramBase: UInt64 = 0x8000_0000
  static let ramSize: UInt64 = 64 << 20

  /// What one machine build issued.
  struct Recording {
    var calls: [RecordingKVMSyscalls.Call]
    /// For `KVM_ENABLE_CAP`: (sub-command, the bytes its args[1] pointed to).
    var capabilityArguments: [(UInt64, [UInt8])]
    var machine: Machine

    /// The request numbers, in order, of the calls in `interesting`.
    func requests(_ interesting: Set<UInt>) -> [UInt] { calls.map(\.request).filter(interesting.contains) }
    func calls(_ request: UInt) -> [RecordingKVMSyscalls.Call] { calls.filter { $0.request == request } }
  }

  /// A kernel Image of `size` bytes (header only matters) in a temporary file.
  static func kernelFile(size: Int = 3 * 4096 + 100, imageSize: UInt64 = 0x4000) throws -> String {
    var image = [UInt8](repeating: 0, count: size)
    image[56] = 0x41; image[57] = 0x52; image[58] = 0x4D; image[59] = 0x64  // "ARM\x64"
    withUnsafeBytes(of: imageSize.littleEndian) { image.replaceSubrange(16..<24, with: $0) }  // image_size (BSS beyond the file)
    image[0x1000] = 0xAB
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("realm-seq-\(UUID().uuidString).Image").path
    try Data(image).write(to: URL(fileURLWithPath: path))
    return path
  }

  static func build(
    capabilities: [UInt: Int32], options: RealmOptions = RealmOptions(), kernelSize: Int = 3 * 4096 + 100,
    refuse: (@Sendable (UInt, [UInt8]) -> Int32?)? = nil
  ) throws -> Recording {
    let enableCapArguments = Mutex<[(UInt64, [UInt8])]>([])
    let syscalls = RecordingKVMSyscalls(capabilities: capabilities, pointer: { fd, request, argument in
      if let refuse, let answer = refuse(request, Array(argument)) { return answer }
      switch request {
      case 0xC00C_AEE0:  // KVM_CREATE_DEVICE: hand out a device fd
        argument.storeBytes(of: UInt32(99), toByteOffset: 4, as: UInt32.self)
      case 0x8020_AEAF:  // KVM_ARM_PREFERRED_TARGET: target 5
        argument.storeBytes(of: UInt32(5), toByteOffset: 0, as: UInt32.self)
      case 0xC020_AED7:  // KVM_ARM_RMI_POPULATE (v13+): all done in one call
        let size = argument.load(fromByteOffset: 8, as: UInt64.self)
        argument.storeBytes(of: argument.load(fromByteOffset: 0, as: UInt64.self) + size, toByteOffset: 0, as: UInt64.self)
        argument.storeBytes(of: UInt64(0), toByteOffset: 8, as: UInt64.self)
      case 0x4020_AED7:  // v12: returns the bytes populated
        return Int32(argument.load(fromByteOffset: 8, as: UInt64.self))
      case 0x4068_AEA3:  // KVM_ENABLE_CAP: keep what args[1] points to
        let command = argument.load(fromByteOffset: 8, as: UInt64.self)
        let pointer = argument.load(fromByteOffset: 16, as: UInt64.self)
        let size = [0: 260, 2: 32, 3: 32][Int(command)] ?? 0
        let bytes = pointer == 0 || size == 0 ? [] : Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(pointer)), count: size))
        enableCapArguments.withLock { $0.append((command, bytes)) }
      default:
        break
      }
      return nil
    })
    let system = try KVMSystem(syscalls: syscalls)
    let config = MachineConfig(
      memorySize: ramSize, cpus: 2,
      boot: .kernel(path: try kernelFile(size: kernelSize, imageSize: max(0x4000, UInt64(kernelSize + 4095) / 4096 * 4096)), initrd: nil),
      kernelParameters: "quiet",
      realm: true, realmOptions: options)
    let console = try TerminalConsole(output: .open("/dev/null", O_WRONLY), input: .open("/dev/null", O_RDONLY))
    let machine = try Machine(config: config, console: console, kvm: system)
    return Recording(calls: syscalls.calls, capabilityArguments: enableCapArguments.withLock { $0 }, machine: machine)
  }

  // Request numbers (kvm-cca-api.md §2.1, §3.3, §5.1).
  static let createVM: UInt = 0xAE01
  static let createGuestMemfd: UInt = 0xC040_AED4
  static let setRegion2: UInt = 0x40A0_AE49
  static let setAttributes: UInt = 0x4020_AED2
  static let createDevice: UInt = 0xC00C_AEE0
  static let createVCPU: UInt = 0xAE41
  static let vcpuInit: UInt = 0x4020_AEAE
  static let setDeviceAttribute: UInt = 0x4018_AEE1
  static let populate13: UInt = 0xC020_AED7
  static let populate12: UInt = 0x4020_AED7
  static let enableCap: UInt = 0x4068_AEA3
  static let setOneReg: UInt = 0x4010_AEAC
  static let finalize: UInt = 0x4004_AEC2
  static let realmCalls: Set<UInt> = [
    createVM, createGuestMemfd, setRegion2, setAttributes, createDevice, createVCPU, vcpuInit,
    populate13, populate12, enableCap, finalize,
  ]

  /// The populated regions the machine should produce: the kernel (file padded to 4 KiB) and the
  /// 64 KiB DTB at 0x83E0_0000 (64 MiB RAM: ALIGN(0x8400_0000 - 0x21_0000, 2 MiB)).
  static let regions: [(base: UInt64, size: UInt64)] = [(0x8000_0000, 0x4000), (0x83E0_0000, 0x1_0000)]

  /// A kernel larger than one load piece is populated in ascending pieces that cover it exactly
  /// (the same DATA_CREATEs in the same order, so the same RIM), then the DTB.
  @Test func aLargeImageIsPopulatedInPieces() throws {
    let recording = try Self.build(capabilities: [248: 1, 231: 1, 165: 48], kernelSize: 0x90_0000 - 100)
    let populates = recording.calls(Self.populate13).map(\.bytes!)
    #expect(populates.map { $0.le(UInt64.self, at: 0) }.prefix(3) == [Self.ramBase, Self.ramBase + 0x40_0000, Self.ramBase + 0x80_0000])
    #expect(populates.map { $0.le(UInt64.self, at: 8) } == [0x40_0000, 0x40_0000, 0x10_0000, 0x1_0000])
  }

  @Test func generationBSeriesV13() throws {
    let recording = try Self.build(capabilities: [248: 1, 231: 1, 165: 48])
    #expect(recording.requests(Self.realmCalls) == [
      Self.createVM,  // probe: does the kernel take a realm VM? (closed again)
      Self.createVM, Self.createGuestMemfd, Self.setRegion2, Self.setAttributes,
      Self.createDevice, Self.createVCPU, Self.vcpuInit, Self.createVCPU, Self.vcpuInit,
      Self.populate13, Self.populate13,
    ])
    // 64 MiB at 2 GiB: 32 bits, plus the shared half: 33; realm type 0x100 up to v13.
    #expect(recording.calls(Self.createVM).map(\.value) == [0x121, 0x121])
    let memfd = try #require(recording.calls(Self.createGuestMemfd).first?.bytes)
    #expect(memfd.le(UInt64.self, at: 0) == Self.ramSize && memfd.le(UInt64.self, at: 8) == 0)
    let slot = try #require(recording.calls(Self.setRegion2).first?.bytes)
    #expect(slot.le(UInt32.self, at: 4) == 4)  // KVM_MEM_GUEST_MEMFD
    #expect(slot.le(UInt64.self, at: 8) == Self.ramBase && slot.le(UInt64.self, at: 16) == Self.ramSize)
    #expect(Int32(bitPattern: slot.le(UInt32.self, at: 40)) == recording.machine.guestMemfd)
    let attributes = try #require(recording.calls(Self.setAttributes).first?.bytes)
    #expect(attributes == le64(Self.ramBase) + le64(Self.ramSize) + le64(8) + le64(0))  // PRIVATE
    // vCPU 0: PSCI 0.2; vCPU 1: PSCI 0.2 + POWER_OFF; no REC bit in generation B
    #expect(recording.calls(Self.vcpuInit).map { $0.bytes!.le(UInt32.self, at: 4) } == [0b100, 0b101])
    // populate: base, size, source (page aligned), flags MEASURE, reserved 0; ascending IPA
    let populates = recording.calls(Self.populate13).map(\.bytes!)
    #expect(populates.map { $0.le(UInt64.self, at: 0) } == Self.regions.map(\.base))
    #expect(populates.map { $0.le(UInt64.self, at: 8) } == Self.regions.map(\.size))
    #expect(populates.allSatisfy { $0.le(UInt64.self, at: 16) % 4096 == 0 && $0.le(UInt32.self, at: 24) == 1 && $0.le(UInt32.self, at: 28) == 0 })
    // after populate: vCPU 0's entry (x0..x3, pc) and nothing that generation A would do
    let tail = recording.calls.drop { $0.request != Self.populate13 }.filter { $0.request == Self.setOneReg }
    #expect(tail.map { $0.bytes!.le(UInt64.self, at: 0) } == [0x6030_0000_0010_0000, 0x6030_0000_0010_0002, 0x6030_0000_0010_0004, 0x6030_0000_0010_0006, 0x6030_0000_0010_0040])
    #expect(recording.calls(Self.enableCap).isEmpty && recording.calls(Self.finalize).isEmpty)
  }

  @Test func generationBSeriesV12PopulatesWithTheOldIoctl() throws {
    let recording = try Self.build(capabilities: [247: 1, 231: 1, 165: 48])
    #expect(recording.calls(Self.createVM).map(\.value) == [0x121, 0x121])
    let populates = recording.calls(Self.populate12).map(\.bytes!)
    #expect(populates.map { $0.le(UInt64.self, at: 0) } == Self.regions.map(\.base))
    #expect(recording.calls(Self.populate13).isEmpty)
  }

  @Test func generationBSeriesV14UsesTheNewVMType() throws {
    let recording = try Self.build(capabilities: [249: 1, 231: 1, 165: 48])
    let type: UInt = 1 << 30 | 33
    #expect(recording.calls(Self.createVM).map(\.value) == [type, type])
    #expect(recording.calls(Self.populate13).count == 2)
  }

  @Test func generationBRefusesSHA512AndPersonalization() {
    #expect(throws: VMMError.self) {
      try Self.build(capabilities: [248: 1, 231: 1, 165: 48], options: RealmOptions(algorithm: .sha512))
    }
    #expect(throws: VMMError.self) {
      try Self.build(capabilities: [248: 1, 231: 1, 165: 48], options: RealmOptions(personalization: Array("pv".utf8)))
    }
  }

  @Test func generationASeriesV9() throws {
    let recording = try Self.build(
      capabilities: [243: 1, 231: 1, 165: 48],
      options: RealmOptions(algorithm: .sha512, personalization: Array("tenant-7".utf8)))
    #expect(recording.requests(Self.realmCalls) == [
      Self.createVM, Self.createVM, Self.createGuestMemfd, Self.setRegion2,
      Self.createDevice, Self.createVCPU, Self.vcpuInit, Self.createVCPU, Self.vcpuInit,
      Self.enableCap, Self.enableCap, Self.enableCap,  // CONFIG hash, CONFIG RPV, CREATE_REALM
      Self.enableCap,  // INIT_RIPAS over all RAM
      Self.enableCap, Self.enableCap,  // POPULATE kernel, DTB
      Self.finalize, Self.finalize,  // RECs in vCPU order
      Self.enableCap,  // ACTIVATE
      Self.setAttributes,  // then RAM private
    ])
    // vCPU features: PSCI 0.2 (2), POWER_OFF (0) for vCPU 1, REC = 9 from series v9
    let features: [UInt32] = [1 << 2 | 1 << 9, 1 << 2 | 1 | 1 << 9]
    #expect(recording.calls(Self.vcpuInit).map { $0.bytes!.le(UInt32.self, at: 4) } == features)
    #expect(recording.calls(Self.finalize).map { $0.bytes!.le(UInt32.self, at: 0) } == [9, 9])
    let enable = recording.calls(Self.enableCap).map(\.bytes!)
    #expect(enable.allSatisfy { $0.count == 104 && $0.le(UInt32.self, at: 0) == 243 && $0.le(UInt32.self, at: 4) == 0 })
    #expect(enable.map { $0.le(UInt64.self, at: 8) } == [0, 0, 1, 2, 3, 3, 4])
    let arguments = recording.capabilityArguments
    // CONFIG_REALM {cfg = HASH_ALGO (1), hash_algo = SHA512 (1)}
    #expect(Array(arguments[0].1.prefix(8)) == le32(1) + le32(1))
    // CONFIG_REALM {cfg = RPV (0), rpv = "tenant-7", zero padded to 64}
    #expect(Array(arguments[1].1.prefix(4 + 64)) == le32(0) + Array("tenant-7".utf8) + [UInt8](repeating: 0, count: 56))
    // INIT_RIPAS {base, size} of RAM; POPULATE {base, size, flags MEASURE}
    #expect(Array(arguments[3].1.prefix(16)) == le64(Self.ramBase) + le64(Self.ramSize))
    #expect(arguments[4].1 == le64(0x8000_0000) + le64(0x4000) + le32(1) + [UInt8](repeating: 0, count: 12))
    #expect(arguments[5].1 == le64(0x83E0_0000) + le64(0x1_0000) + le32(1) + [UInt8](repeating: 0, count: 12))
    let attributes = try #require(recording.calls(Self.setAttributes).first?.bytes)
    #expect(attributes == le64(Self.ramBase) + le64(Self.ramSize) + le64(8) + le64(0))
  }

  @Test func generationASeriesV5FallsBackToFinalizeOnlyRECs() throws {
    // v5 refuses the REC bit at KVM_ARM_VCPU_INIT (EINVAL) and takes it at FINALIZE.
    let recording = try Self.build(capabilities: [300: 1, 231: 1, 165: 48], refuse: { request, bytes in
      request == 0x4020_AEAE && bytes.le(UInt32.self, at: 4) & (1 << 8) != 0 ? -22 : nil
    })
    let psci: UInt32 = 1 << 2, off: UInt32 = 1, rec: UInt32 = 1 << 8
    let expected: [UInt32] = [psci | rec, psci, psci | off | rec, psci | off]
    #expect(recording.calls(Self.vcpuInit).map { $0.bytes!.le(UInt32.self, at: 4) } == expected)
    #expect(recording.calls(Self.finalize).map { $0.bytes!.le(UInt32.self, at: 0) } == [8, 8])
    #expect(recording.calls(Self.enableCap).allSatisfy { $0.bytes!.le(UInt32.self, at: 0) == 300 })
  }

  /// Every row of the table, probed from its own capability, builds the machine its row describes:
  /// its VM type, its populate calls, its RECs and when RAM is made private.
  @Test(arguments: CCASeries.all) func everySeriesBuildsAsItsRowSays(row: CCASeries) throws {
    let recording = try Self.build(capabilities: [UInt(row.capability): 1, 231: 1, 165: 48])
    #expect(recording.machine.realm?.series == row)
    let type = row.realmVMType | 33
    #expect(recording.calls(Self.createVM).map(\.value) == [type, type])
    let populates: [UInt64]
    switch row.populate {
    case .enableCap:
      populates = recording.capabilityArguments.filter { $0.0 == 3 }.map { $0.1.le(UInt64.self, at: 0) }
    case .returnsBytes:
      populates = recording.calls(Self.populate12).map { $0.bytes!.le(UInt64.self, at: 0) }
    case .advancesRequest:
      populates = recording.calls(Self.populate13).map { $0.bytes!.le(UInt64.self, at: 0) }
    }
    #expect(populates == Self.regions.map(\.base))
    #expect(recording.calls(Self.finalize).map { Int32($0.bytes!.le(UInt32.self, at: 0)) } == (row.recFeature.map { [$0, $0] } ?? []))
    let realmCalls = recording.requests(Self.realmCalls)
    let attributes = realmCalls.firstIndex(of: Self.setAttributes)
    // Generation B: the first populate; generation A: ACTIVATE, the last ENABLE_CAP (after POPULATE).
    let landmark = realmCalls.firstIndex { [Self.populate12, Self.populate13].contains($0) } ?? realmCalls.lastIndex(of: Self.enableCap)
    #expect(realmCalls.filter { $0 == Self.setAttributes }.count == (row.setsVMMemoryAttributes ? 1 : 0))
    if let attributes, let landmark {
      #expect((attributes < landmark) == row.privateBeforePopulate)
    }
  }

  @Test func aHostWithoutCCASaysSo() {
    do {
      _ = try Self.build(capabilities: [231: 1, 165: 48])
      Issue.record("built a Realm on a host without CCA")
    } catch {
      #expect("\(error)".contains("--no-realm"))
    }
  }
}


/// Bad input is refused before any KVM object exists.
@Suite struct EarlyRefusalTests {
  @Test func aMissingDiskIsRefusedBeforeTheVMExists() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [248: 1, 231: 1, 165: 48])
    let system = try KVMSystem(syscalls: syscalls)
    let config = MachineConfig(
      memorySize: 64 << 20, cpus: 1, boot: .kernel(path: try RealmCallSequenceTests.kernelFile(), initrd: nil),
      disks: [DiskConfig(path: "/nonexistent/disk.img")], realm: true)
    let console = try TerminalConsole(output: .open("/dev/null", O_WRONLY), input: .open("/dev/null", O_RDONLY))
    do {
      _ = try Machine(config: config, console: console, kvm: system)
      Issue.record("a machine was built with a missing disk")
    } catch {
      #expect("\(error)".contains("/nonexistent/disk.img"))
    }
    Self.expectNoVMBuilt(syscalls)
  }

  /// Only the host probe ran: the API version, capability checks and the CCA probe's realm VM,
  /// which is closed again; no memory, no vCPU, no second VM.
  static func expectNoVMBuilt(_ syscalls: RecordingKVMSyscalls) {
    let requests = syscalls.calls.map(\.request)
    #expect(requests.filter { $0 == 0xAE01 }.count == 1)  // KVM_CREATE_VM: the probe only
    #expect(!requests.contains(0xC040_AED4) && !requests.contains(0xAE41))  // no guest_memfd, no vCPU
  }

  @Test func anImageLargerThanRAMIsRefusedBeforeTheVMExists() throws {
    let syscalls = RecordingKVMSyscalls(capabilities: [248: 1, 231: 1, 165: 48])
    let system = try KVMSystem(syscalls: syscalls)
    let big = FileManager.default.temporaryDirectory.appendingPathComponent("big-\(UUID().uuidString)").path
    FileManager.default.createFile(atPath: big, contents: Data(count: 17 << 20))
    let config = MachineConfig(memorySize: 16 << 20, cpus: 1, boot: .firmware(path: big), realm: true)
    let console = try TerminalConsole(output: .open("/dev/null", O_WRONLY), input: .open("/dev/null", O_RDONLY))
    #expect(throws: VMMError.self) { try Machine(config: config, console: console, kvm: system) }
    Self.expectNoVMBuilt(syscalls)
  }
}
