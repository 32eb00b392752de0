import CKVM

/// The in-kernel GICv3: distributor and redistributors at guest addresses chosen by the VMM.
public final class VGICv3: @unchecked Sendable {
  public let fd: Int32
  let syscalls: any KVMSyscalls

  /// Creates the device and places the distributor and the redistributor region (one 128 KiB
  /// frame pair per vCPU). Do this before creating vCPUs; call ``initialize(interruptCount:)`` after.
  public init(vm: VirtualMachine, distributor: UInt64, redistributors: UInt64) throws(KVMError) {
    fd = try vm.createDevice(type: UInt32(CKVM_DEV_TYPE_ARM_VGIC_V3))
    syscalls = vm.syscalls
    try setAttribute(group: UInt32(CKVM_DEV_ARM_VGIC_GRP_ADDR), attribute: UInt64(CKVM_VGIC_V3_ADDR_TYPE_DIST), value: distributor)
    try setAttribute(group: UInt32(CKVM_DEV_ARM_VGIC_GRP_ADDR), attribute: UInt64(CKVM_VGIC_V3_ADDR_TYPE_REDIST), value: redistributors)
  }

  deinit { syscalls.close(fd) }

  /// Sets the number of interrupts (SGIs, PPIs and SPIs together; a multiple of 32) and
  /// initialises the GIC. Every vCPU must exist by now.
  public func initialize(interruptCount: UInt32) throws(KVMError) {
    var count = interruptCount
    try withUnsafeMutablePointer(to: &count) { (pointer) throws(KVMError) in
      var attribute = ckvm_device_attr(
        flags: 0, group: UInt32(CKVM_DEV_ARM_VGIC_GRP_NR_IRQS), attr: 0,
        addr: UInt64(UInt(bitPattern: pointer)))
      try syscalls.call(fd, CKVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR(NR_IRQS)", &attribute)
    }
    var initialize = ckvm_device_attr(
      flags: 0, group: UInt32(CKVM_DEV_ARM_VGIC_GRP_CTRL), attr: UInt64(CKVM_DEV_ARM_VGIC_CTRL_INIT), addr: 0)
    try syscalls.call(fd, CKVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR(CTRL_INIT)", &initialize)
  }

  private func setAttribute(group: UInt32, attribute: UInt64, value: UInt64) throws(KVMError) {
    var value = value
    try withUnsafeMutablePointer(to: &value) { (pointer) throws(KVMError) in
      var request = ckvm_device_attr(flags: 0, group: group, attr: attribute, addr: UInt64(UInt(bitPattern: pointer)))
      try syscalls.call(fd, CKVM_SET_DEVICE_ATTR, "KVM_SET_DEVICE_ATTR(ADDR)", &request)
    }
  }
}
