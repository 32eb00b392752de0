import CKVM

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One virtual CPU: its registers and its `KVM_RUN` loop step.
public final class VCPU: @unchecked Sendable {
  public let id: Int
  public let fd: Int32
  let run: UnsafeMutablePointer<ckvm_run>
  let runSize: Int
  let syscalls: any KVMSyscalls

  init(id: Int, fd: Int32, run: UnsafeMutableRawPointer, runSize: Int, syscalls: any KVMSyscalls) {
    self.id = id
    self.fd = fd
    self.run = run.bindMemory(to: ckvm_run.self, capacity: 1)
    self.runSize = runSize
    self.syscalls = syscalls
  }

  deinit {
    syscalls.unmap(UnsafeMutableRawPointer(run), size: runSize)
    syscalls.close(fd)
  }

  /// `KVM_ARM_VCPU_INIT` with `target` and the feature bits in `features` (bit numbers).
  public func initialize(target: UInt32, features: [Int32]) throws(KVMError) {
    var request = ckvm_vcpu_init()
    request.target = target
    withUnsafeMutableBytes(of: &request.features) { words in
      let words = words.bindMemory(to: UInt32.self)
      for feature in features where feature >= 0 && Int(feature) < words.count * 32 {
        words[Int(feature) / 32] |= 1 << UInt32(feature % 32)
      }
    }
    try syscalls.call(fd, CKVM_ARM_VCPU_INIT, "KVM_ARM_VCPU_INIT", &request)
  }

  /// `KVM_ARM_VCPU_FINALIZE` of a feature (SVE, or a REC on generation A CCA hosts).
  public func finalize(feature: Int32) throws(KVMError) {
    var value = feature
    try syscalls.call(fd, CKVM_ARM_VCPU_FINALIZE, "KVM_ARM_VCPU_FINALIZE", &value)
  }

  /// `KVM_SET_ONE_REG` of a 64-bit register.
  public func setRegister(_ id: UInt64, _ value: UInt64) throws(KVMError) {
    var value = value
    try withUnsafeMutablePointer(to: &value) { (pointer) throws(KVMError) in
      var request = ckvm_one_reg(id: id, addr: UInt64(UInt(bitPattern: pointer)))
      try syscalls.call(fd, CKVM_SET_ONE_REG, "KVM_SET_ONE_REG", &request)
    }
  }

  /// `KVM_GET_ONE_REG` of a 64-bit register.
  public func register(_ id: UInt64) throws(KVMError) -> UInt64 {
    var value: UInt64 = 0
    try withUnsafeMutablePointer(to: &value) { (pointer) throws(KVMError) in
      var request = ckvm_one_reg(id: id, addr: UInt64(UInt(bitPattern: pointer)))
      try syscalls.call(fd, CKVM_GET_ONE_REG, "KVM_GET_ONE_REG", &request)
    }
    return value
  }

  /// Sets the PC and X0-X3 for entry (the arm64 boot protocol: x0 = DTB, x1-x3 = 0).
  public func setEntry(pc: UInt64, x0: UInt64) throws(KVMError) {
    try setRegister(ckvm_core_reg_x(0), x0)
    for n in 1...3 { try setRegister(ckvm_core_reg_x(UInt32(n)), 0) }
    try setRegister(CKVM_CORE_REG_PC, pc)
  }

  /// Runs the vCPU until the next exit that needs the VMM, and decodes it.
  public func runOnce() throws(KVMError) -> VCPUExit {
    let result = syscalls.ioctl(fd, CKVM_RUN, value: 0)
    if result < 0 {
      switch -result {
      case EINTR, EAGAIN:
        run.pointee.immediate_exit = 0
        return .interrupted
      case EFAULT where run.pointee.exit_reason == UInt32(CKVM_EXIT_MEMORY_FAULT):
        break  // KVM_EXIT_MEMORY_FAULT is reported with -EFAULT
      default:
        throw .ioctl("KVM_RUN", errno: -result)
      }
    }
    return VCPUExit(decoding: run.pointee)
  }

  /// Supplies the value of the MMIO read the vCPU last exited for; KVM hands it to the guest on the
  /// next `KVM_RUN`.
  public func completeMMIORead(_ value: UInt64) {
    withUnsafeMutableBytes(of: &run.pointee.mmio.data) { data in
      data.storeBytes(of: value.littleEndian, as: UInt64.self)
    }
  }

  /// Makes the next (or current) `KVM_RUN` return at once; pair it with a signal to the vCPU thread.
  public func requestExit() {
    // A plain store: the kernel reads the flag on entry; the signal covers a vCPU already inside.
    UnsafeMutableRawPointer(run).storeBytes(of: 1, toByteOffset: 1, as: UInt8.self)
  }

  /// Injects a synchronous external abort for the data access the vCPU exited on (what a bus
  /// error looks like to the guest), with `KVM_SET_VCPU_EVENTS`.
  public func injectDataAbort() throws(KVMError) {
    var events = ckvm_vcpu_events()
    events.ext_dabt_pending = 1
    try syscalls.call(fd, CKVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &events)
  }
}
