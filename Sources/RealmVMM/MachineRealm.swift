import CKVM
import GuestMemory
import KVM
import Platform

/// The Realm-specific steps of building a machine.
extension Machine {
  /// The lifecycle for this host: the `--cca-abi` series if given, else what the probe finds.
  static func realmLifecycle(_ options: RealmOptions, _ system: KVMSystem, probeAsArm64: Bool) throws(VMMError) -> RealmLifecycle {
    if let series = options.series {
      return RealmLifecycle(series: series)
    }
    guard probeAsArm64 else {
      throw .noRealmSupport("this host is not arm64, so it has no Arm CCA")
    }
    guard let series = CCASeries.probe(system, isArm64: true) else {
      throw .noRealmSupport(
        "this host's KVM has no Arm CCA support (no KVM_CAP_ARM_RMI or KVM_CAP_ARM_RME that takes a realm VM; see 'realm-run host-info')")
    }
    return RealmLifecycle(series: series)
  }

  /// Initialises a vCPU; on generation A it also becomes a REC. Some series (v5) take the REC bit
  /// only at finalize time, so there a refused REC bit is retried without it (and finalize adds it).
  static func initialize(_ vcpu: VCPU, target: UInt32, features: [Int32], realm: RealmLifecycle?) throws(KVMError) {
    guard let rec = realm?.recFeature else {
      try vcpu.initialize(target: target, features: features)
      return
    }
    do {
      try vcpu.initialize(target: target, features: features + [rec])
    } catch let error where error.errno == EINVAL && realm?.series.recOnlyAtFinalize == true {
      try vcpu.initialize(target: target, features: features)
    }
  }

  /// Keeps a Realm's RAM resident (the RMM needs its granules to stay put), raising the memlock
  /// limit first where that is allowed.
  static func lockRealmMemory(_ region: GuestRegion) throws(VMMError) {
    let limit = ckvm_raise_memlock_limit(region.size)
    guard ckvm_mlock_on_fault(region.host, UInt(region.size)) == 0 else {
      let error = Errno.current
      let current = limit == UInt64.max ? "unlimited" : "\(limit >> 10) KiB"
      throw .unsupportedHost(
        "cannot lock \(region.size >> 20) MiB of Realm RAM in memory (\(error); RLIMIT_MEMLOCK is \(current)): raise it with 'ulimit -l' or run as root")
    }
  }

  /// A guest request to change RIPAS (RSI_IPA_STATE_SET), or an access whose private/shared state
  /// does not match: convert the range so the next `KVM_RUN` can commit it to the RMM.
  func convertMemory(address: UInt64, size: UInt64, toPrivate: Bool) throws(VMMError) {
    guard realm != nil, let region = memory.region(containing: address, count: size) else {
      throw .guest("memory fault at 0x\(String(address, radix: 16))+0x\(String(size, radix: 16)) outside guest RAM")
    }
    do {
      try vm.setMemoryAttributes(address: address, size: size, private: toPrivate)
    } catch {
      throw .kvm(error)
    }
    if toPrivate {
      // The shared copies of now-private pages are dead: give the memory back.
      madvise(region.host + Int(address - region.base), Int(size), MADV_DONTNEED)
    }
  }
}
