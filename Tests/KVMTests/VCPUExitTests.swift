import CKVM
import Testing
@testable import KVM

/// Decoding of `struct kvm_run` exits, from bytes laid out as the arm64 ABI places them.
@Suite struct VCPUExitTests {
  /// A kvm_run page with `exit_reason` at 8 and the exit union at 32.
  func run(reason: UInt32, _ fill: (UnsafeMutableRawBufferPointer) -> Void) -> ckvm_run {
    var bytes = [UInt8](repeating: 0, count: MemoryLayout<ckvm_run>.size)
    bytes.withUnsafeMutableBytes { raw in
      raw.storeBytes(of: reason, toByteOffset: 8, as: UInt32.self)
      fill(UnsafeMutableRawBufferPointer(rebasing: raw[32...]))
    }
    return bytes.withUnsafeBytes { $0.loadUnaligned(as: ckvm_run.self) }
  }

  @Test func mmioWrite() {
    let exit = VCPUExit(decoding: run(reason: 6) { union in
      union.storeBytes(of: UInt64(0x0100_0000), toByteOffset: 0, as: UInt64.self)  // phys_addr
      union.storeBytes(of: UInt32(0x4142), toByteOffset: 8, as: UInt32.self)  // data
      union.storeBytes(of: UInt32(2), toByteOffset: 16, as: UInt32.self)  // len
      union[20] = 1  // is_write
    })
    #expect(exit == .mmio(address: 0x0100_0000, size: 2, isWrite: true, data: 0x4142))
  }

  @Test func mmioReadLengthIsClamped() {
    let exit = VCPUExit(decoding: run(reason: 6) { union in
      union.storeBytes(of: UInt32(4096), toByteOffset: 16, as: UInt32.self)
    })
    #expect(exit == .mmio(address: 0, size: 8, isWrite: false, data: 0))
  }

  @Test func systemEvents() {
    for (type, event) in [(UInt32(1), VCPUExit.SystemEvent.shutdown), (2, .reset), (3, .crash), (9, .other(9))] {
      let exit = VCPUExit(decoding: run(reason: 24) { $0.storeBytes(of: type, toByteOffset: 0, as: UInt32.self) })
      #expect(exit == .systemEvent(event))
    }
  }

  @Test func memoryFault() {
    let exit = VCPUExit(decoding: run(reason: 39) { union in
      union.storeBytes(of: UInt64(1 << 3), toByteOffset: 0, as: UInt64.self)
      union.storeBytes(of: UInt64(0x8000_1000), toByteOffset: 8, as: UInt64.self)
      union.storeBytes(of: UInt64(0x1000), toByteOffset: 16, as: UInt64.self)
    })
    #expect(exit == .memoryFault(address: 0x8000_1000, size: 0x1000, toPrivate: true))
  }

  @Test func hypercallInternalErrorShutdownAndUnknown() {
    let call = VCPUExit(decoding: run(reason: 3) { union in
      union.storeBytes(of: UInt64(0xC400_0190), toByteOffset: 0, as: UInt64.self)
      union.storeBytes(of: UInt64(7), toByteOffset: 8, as: UInt64.self)
      union.storeBytes(of: UInt64(1), toByteOffset: 64, as: UInt64.self)  // flags: SMC
    })
    #expect(call == .hypercall(function: 0xC400_0190, arguments: [7, 0, 0, 0, 0, 0], viaSMC: true))
    #expect(VCPUExit(decoding: run(reason: 17) { $0.storeBytes(of: UInt32(4), toByteOffset: 0, as: UInt32.self) }) == .internalError(suberror: 4))
    #expect(VCPUExit(decoding: run(reason: 8) { _ in }) == .shutdown)
    #expect(VCPUExit(decoding: run(reason: 1234) { _ in }) == .unknown(reason: 1234))
  }
}
