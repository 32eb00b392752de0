import CKVM
import FirmwareCore
import Platform


/// The realm-specific KVM calls, which differ with the CCA host series (kvm-cca-api.md §3-§5 and
/// §8): generation A configures, creates, populates and activates the realm with `KVM_ENABLE_CAP`
/// sub-commands; generation B populates with its own ioctl and the kernel does the rest on the
/// first `KVM_RUN`. What differs between series is read from the series' ``CCASeries`` row.
public struct RealmLifecycle: Sendable, Equatable {
  public let series: CCASeries

  public init(series: CCASeries) {
    self.series = series
  }

  /// Generation A sub-commands of `KVM_ENABLE_CAP(KVM_CAP_ARM_RME)` (args[0]).
  enum RMECommand: UInt64 {
    case configure = 0, createRealm = 1, initRIPAS = 2, populate = 3, activate = 4
  }

  /// Generation A `struct kvm_cap_arm_rme_config_item` `cfg` values.
  enum RMEConfig: UInt32 {
    case personalization = 0, hashAlgorithm = 1
  }

  /// `KVM_CREATE_VM`'s type for a realm with `ipaBits` bits of IPA space (both halves).
  public func vmType(ipaBits: Int) -> UInt { series.realmVMType | UInt(ipaBits) }

  /// The vCPU feature bit that makes a vCPU a REC (generation A only).
  public var recFeature: Int32? { series.recFeature }

  /// Whether RAM must be marked private with `KVM_SET_MEMORY_ATTRIBUTES` before it is populated,
  /// rather than after activation (generation A, as kvmtool does) or not at all.
  public var privateBeforePopulate: Bool { series.privateBeforePopulate }

  /// Whether the RAM attributes are set on the VM fd at all.
  public var usesVMMemoryAttributes: Bool { series.setsVMMemoryAttributes }

  /// The PSCI-complete ioctl, for series that have one.
  public var psciCompleteRequest: UInt? { series.psciCompleteRequest }

  /// Generation A: sets the hash algorithm and personalization value, then creates the realm
  /// descriptor. Generation B has no such calls: there only the defaults (SHA-256, no RPV) exist,
  /// and asking for anything else is an error rather than a silently different Realm.
  public func configure(_ vm: VirtualMachine, algorithm: RealmHashAlgorithm, personalization: [UInt8]?) throws(KVMError) {
    guard series.family == .rme else {
      if algorithm != .sha256 {
        throw .unsupported("this host's CCA UAPI (\(series)) cannot choose the measurement algorithm: only sha256")
      }
      if personalization != nil {
        throw .unsupported("this host's CCA UAPI (\(series)) cannot set a Realm personalization value")
      }
      return
    }
    let capability = series.capability
    var item = ckvm_rme_config()
    item.cfg = RMEConfig.hashAlgorithm.rawValue
    item.hash_algo = UInt32(algorithm.rmiValue)
    try rmeCall(vm, capability, .configure, &item)
    if let personalization {
      var item = ckvm_rme_config()
      item.cfg = RMEConfig.personalization.rawValue
      withUnsafeMutableBytes(of: &item.rpv) { rpv in
        for (index, byte) in personalization.prefix(rpv.count).enumerated() { rpv[index] = byte }
      }
      try rmeCall(vm, capability, .configure, &item)
    }
    try vm.enableCapability(capability, args: (RMECommand.createRealm.rawValue, 0, 0, 0))
  }

  /// Generation A: sets RIPAS RAM on `[base, base + size)` without contents (measured by RMM 1.0).
  public func initializeRIPAS(_ vm: VirtualMachine, base: UInt64, size: UInt64) throws(KVMError) {
    guard series.family == .rme else { return }
    var range = ckvm_rme_init_ripas(base: base, size: size, reserved: (0, 0))
    try rmeCall(vm, series.capability, .initRIPAS, &range)
  }

  /// Copies `[base, base + size)` into protected memory, measured when `measure` is set.
  /// Generation A reads the contents from the memslot's shared view; generation B from `source`.
  /// Everything must be 4 KiB aligned.
  public func populate(_ vm: VirtualMachine, base: UInt64, size: UInt64, source: UnsafeRawPointer, measure: Bool) throws(KVMError) {
    switch series.populate {
    case .enableCap:
      var range = ckvm_rme_populate_realm(base: base, size: size, flags: measure ? 1 : 0, reserved: (0, 0, 0))
      try rmeCall(vm, series.capability, .populate, &range)
    case .returnsBytes:
      // v12: _IOW, returns the bytes populated; continue from there.
      var request = Self.populateRequest(base: base, size: size, source: source, measure: measure)
      while request.size > 0 {
        let done = try vm.syscalls.call(vm.fd, CKVM_ARM_RMI_POPULATE_V12, "KVM_ARM_RMI_POPULATE", &request)
        guard done > 0, UInt64(done) <= request.size, UInt64(done) % 4096 == 0 else {
          throw .unsupported("KVM_ARM_RMI_POPULATE made no progress at 0x\(String(request.base, radix: 16))")
        }
        request.base += UInt64(done)
        request.source_uaddr += UInt64(done)
        request.size -= UInt64(done)
      }
    case .advancesRequest:
      // v13+: _IOWR, the kernel advances base/size/source; loop until size is 0.
      var request = Self.populateRequest(base: base, size: size, source: source, measure: measure)
      while request.size > 0 {
        let before = request.size
        try vm.syscalls.call(vm.fd, CKVM_ARM_RMI_POPULATE, "KVM_ARM_RMI_POPULATE", &request)
        guard request.size < before else {
          throw .unsupported("KVM_ARM_RMI_POPULATE made no progress at 0x\(String(request.base, radix: 16))")
        }
      }
    }
  }

  private static func populateRequest(base: UInt64, size: UInt64, source: UnsafeRawPointer, measure: Bool) -> ckvm_rmi_populate {
    ckvm_rmi_populate(base: base, size: size, source_uaddr: UInt64(UInt(bitPattern: source)), flags: measure ? 1 : 0, reserved: 0)
  }

  /// Generation A: makes a configured vCPU a REC (`KVM_ARM_VCPU_FINALIZE(REC)`), after its PC and
  /// X0-X7 are set and before activation.
  public func finalize(_ vcpu: VCPU) throws(KVMError) {
    guard let feature = recFeature else { return }
    try vcpu.finalize(feature: feature)
  }

  /// Generation A: seals the measurement (`ACTIVATE_REALM`). Generation B activates on first run.
  public func activate(_ vm: VirtualMachine) throws(KVMError) {
    guard series.family == .rme else { return }
    try vm.enableCapability(series.capability, args: (RMECommand.activate.rawValue, 0, 0, 0))
  }

  private func rmeCall<T>(_ vm: VirtualMachine, _ capability: UInt32, _ command: RMECommand, _ argument: inout T) throws(KVMError) {
    try withUnsafeMutableBytes(of: &argument) { (bytes) throws(KVMError) in
      try vm.enableCapability(capability, args: (command.rawValue, UInt64(UInt(bitPattern: bytes.baseAddress!)), 0, 0))
    }
  }
}
