import CKVM
import Platform

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

  /// `KVM_GET_ONE_REG` of a register of any size (the size is encoded in the id: bits 52-55).
  public func register(_ id: UInt64, bytes count: Int) throws(KVMError) -> [UInt8] {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
    defer { buffer.deallocate() }
    buffer.initializeMemory(as: UInt8.self, repeating: 0)
    var request = ckvm_one_reg(id: id, addr: UInt64(UInt(bitPattern: buffer.baseAddress!)))
    try syscalls.call(fd, CKVM_GET_ONE_REG, "KVM_GET_ONE_REG", &request)
    return Array(buffer)
  }

  /// `KVM_SET_ONE_REG` of a register of any size.
  public func setRegister(_ id: UInt64, bytes: [UInt8]) throws(KVMError) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
    defer { buffer.deallocate() }
    buffer.copyBytes(from: bytes)
    var request = ckvm_one_reg(id: id, addr: UInt64(UInt(bitPattern: buffer.baseAddress!)))
    try syscalls.call(fd, CKVM_SET_ONE_REG, "KVM_SET_ONE_REG", &request)
  }

  /// Limits SVE to vectors of up to `vectorLength` bits (a multiple of 128) and finalizes SVE:
  /// the vector-length set keeps the host's lengths up to that one (KVM refuses gaps), which must
  /// include it. The vCPU must have been initialised with the SVE feature.
  public func configureSVE(vectorLength: Int) throws(KVMError) {
    let quadwords = vectorLength / 128
    var set = try register(CKVM_REG_ARM64_SVE_VLS, bytes: 64)
    guard quadwords >= 1, quadwords <= 512, set[(quadwords - 1) / 8] & (1 << UInt8((quadwords - 1) % 8)) != 0 else {
      throw .unsupported("this host's SVE does not offer a vector length of \(vectorLength) bits")
    }
    for bit in quadwords..<(set.count * 8) { set[bit / 8] &= ~(1 << UInt8(bit % 8)) }
    try setRegister(CKVM_REG_ARM64_SVE_VLS, bytes: set)
    try finalize(feature: Int32(CKVM_ARM_VCPU_SVE))
  }

  /// Gives the vCPU its PMUv3 (initialised with the PMU_V3 feature): `counters` event counters
  /// (PMCR_EL0.N; the host's number when `nil`) and its overflow interrupt, a PPI given as its GIC
  /// INTID. Done after the GIC is initialised, before the first run (kvmtool's arm/aarch64/pmu.c).
  public func configurePMU(interrupt: UInt32, counters: Int?) throws(KVMError) {
    if let counters {
      let pmcr = try register(CKVM_REG_PMCR_EL0)
      let available = Int((pmcr >> 11) & 0x1F)
      guard counters <= available else {
        throw .unsupported("this host's PMU has \(available) event counters; --pmu-counters \(counters) is more")
      }
      try setRegister(CKVM_REG_PMCR_EL0, pmcr & ~(0x1F << 11) | UInt64(counters) << 11)
    }
    var irq = Int32(interrupt)
    try withUnsafeMutablePointer(to: &irq) { (pointer) throws(KVMError) in
      var attribute = ckvm_device_attr(
        flags: 0, group: UInt32(CKVM_ARM_VCPU_PMU_V3_CTRL), attr: UInt64(CKVM_ARM_VCPU_PMU_V3_IRQ),
        addr: UInt64(UInt(bitPattern: pointer)))
      try syscalls.call(fd, CKVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR(PMU IRQ)", &attribute)
    }
    var initialize = ckvm_device_attr(
      flags: 0, group: UInt32(CKVM_ARM_VCPU_PMU_V3_CTRL), attr: UInt64(CKVM_ARM_VCPU_PMU_V3_INIT), addr: 0)
    try syscalls.call(fd, CKVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR(PMU INIT)", &initialize)
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

  /// Injects a synchronous external abort for the MMIO access the vCPU just exited on (what a bus
  /// error looks like to the guest), with `KVM_SET_VCPU_EVENTS`.
  ///
  /// A REC only takes the abort once KVM has completed the MMIO exit (which happens at the start of
  /// the next `KVM_RUN`), so for a Realm the exit is first completed with a `KVM_RUN` that returns
  /// at once (`immediate_exit`).
  public func injectDataAbort(realm: Bool) throws(KVMError) {
    if realm {
      run.pointee.immediate_exit = 1
      let result = syscalls.ioctl(fd, CKVM_RUN, value: 0)
      run.pointee.immediate_exit = 0
      guard result == -EINTR || result >= 0 else { throw .ioctl("KVM_RUN", errno: -result) }
    }
    var events = ckvm_vcpu_events()
    events.ext_dabt_pending = 1
    try syscalls.call(fd, CKVM_SET_VCPU_EVENTS, "KVM_SET_VCPU_EVENTS", &events)
  }
}
