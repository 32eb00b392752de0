import CKVM
import Platform

/// A KVM virtual machine: memory slots, vCPUs, devices and interrupt lines.
public final class VirtualMachine: @unchecked Sendable {
  public let fd: Int32
  public let system: KVMSystem
  var syscalls: any KVMSyscalls { system.syscalls }

  init(fd: Int32, system: KVMSystem) {
    self.fd = fd
    self.system = system
  }

  deinit { syscalls.close(fd) }

  /// `KVM_CHECK_EXTENSION` on the VM (some answers depend on the VM type).
  public func checkExtension(_ capability: UInt) -> Int32 {
    max(0, syscalls.ioctl(fd, CKVM_CHECK_EXTENSION, value: capability))
  }

  /// A memory slot: guest physical range, host mapping, and optionally the guest_memfd behind it.
  public struct MemorySlot: Sendable, Equatable {
    public var slot: UInt32
    public var guestAddress: UInt64
    public var size: UInt64
    public var hostAddress: UInt64
    /// `(fd, offset)` of a guest_memfd backing the private view, if any.
    public var guestMemfd: (fd: Int32, offset: UInt64)?

    public init(slot: UInt32, guestAddress: UInt64, size: UInt64, hostAddress: UInt64,
                guestMemfd: (fd: Int32, offset: UInt64)? = nil) {
      self.slot = slot
      self.guestAddress = guestAddress
      self.size = size
      self.hostAddress = hostAddress
      self.guestMemfd = guestMemfd
    }

    public static func == (a: MemorySlot, b: MemorySlot) -> Bool {
      a.slot == b.slot && a.guestAddress == b.guestAddress && a.size == b.size
        && a.hostAddress == b.hostAddress && a.guestMemfd?.fd == b.guestMemfd?.fd
        && a.guestMemfd?.offset == b.guestMemfd?.offset
    }
  }

  /// Installs a memory slot: `KVM_SET_USER_MEMORY_REGION2` when the kernel has it (required for
  /// guest_memfd), the original `KVM_SET_USER_MEMORY_REGION` otherwise.
  public func setMemorySlot(_ slot: MemorySlot) throws(KVMError) {
    if checkExtension(UInt(CKVM_CAP_USER_MEMORY2)) > 0 {
      var region = ckvm_userspace_memory_region2()
      region.slot = slot.slot
      region.guest_phys_addr = slot.guestAddress
      region.memory_size = slot.size
      region.userspace_addr = slot.hostAddress
      if let memfd = slot.guestMemfd {
        region.flags = CKVM_MEM_GUEST_MEMFD
        region.guest_memfd = UInt32(bitPattern: memfd.fd)
        region.guest_memfd_offset = memfd.offset
      }
      try syscalls.call(fd, CKVM_SET_USER_MEMORY_REGION2, "KVM_SET_USER_MEMORY_REGION2", &region)
    } else {
      guard slot.guestMemfd == nil else {
        throw .unsupported("this kernel has no KVM_SET_USER_MEMORY_REGION2, so no guest_memfd")
      }
      var region = ckvm_userspace_memory_region(
        slot: slot.slot, flags: 0, guest_phys_addr: slot.guestAddress,
        memory_size: slot.size, userspace_addr: slot.hostAddress)
      try syscalls.call(fd, CKVM_SET_USER_MEMORY_REGION, "KVM_SET_USER_MEMORY_REGION", &region)
    }
  }

  /// `KVM_CREATE_GUEST_MEMFD`: private memory the host cannot map (unless `flags` says so).
  public func createGuestMemfd(size: UInt64, flags: UInt64 = 0) throws(KVMError) -> Int32 {
    var request = ckvm_create_guest_memfd()
    request.size = size
    request.flags = flags
    return try syscalls.call(fd, CKVM_CREATE_GUEST_MEMFD, "KVM_CREATE_GUEST_MEMFD", &request)
  }

  /// `KVM_SET_MEMORY_ATTRIBUTES`: marks a range private (backed by guest_memfd) or shared.
  public func setMemoryAttributes(address: UInt64, size: UInt64, private isPrivate: Bool) throws(KVMError) {
    var request = ckvm_memory_attributes(
      address: address, size: size, attributes: isPrivate ? CKVM_MEMORY_ATTRIBUTE_PRIVATE : 0, flags: 0)
    try syscalls.call(fd, CKVM_SET_MEMORY_ATTRIBUTES, "KVM_SET_MEMORY_ATTRIBUTES", &request)
  }

  /// `KVM_ARM_PREFERRED_TARGET`: the vCPU target to pass to `KVM_ARM_VCPU_INIT`.
  public func preferredTarget() throws(KVMError) -> ckvm_vcpu_init {
    var initialization = ckvm_vcpu_init()
    try syscalls.call(fd, CKVM_ARM_PREFERRED_TARGET, "KVM_ARM_PREFERRED_TARGET", &initialization)
    return initialization
  }

  /// `KVM_CREATE_VCPU` and the mapping of its `kvm_run`.
  public func createVCPU(id: Int) throws(KVMError) -> VCPU {
    let vcpuFD = try syscalls.call(fd, CKVM_CREATE_VCPU, "KVM_CREATE_VCPU", value: UInt(id))
    let size: Int
    do {
      size = try system.vcpuMapSize()
    } catch {
      syscalls.close(vcpuFD)
      throw error
    }
    guard let run = syscalls.mapRunStructure(vcpu: vcpuFD, size: size) else {
      let error = errno
      syscalls.close(vcpuFD)
      throw .ioctl("mmap(kvm_run)", errno: error)
    }
    return VCPU(id: id, fd: vcpuFD, run: run, runSize: size, syscalls: syscalls)
  }

  /// `KVM_CREATE_DEVICE`: returns the device fd.
  public func createDevice(type: UInt32) throws(KVMError) -> Int32 {
    var request = ckvm_create_device(type: type, fd: 0, flags: 0)
    try syscalls.call(fd, CKVM_CREATE_DEVICE, "KVM_CREATE_DEVICE", &request)
    return Int32(bitPattern: request.fd)
  }

  /// `KVM_IRQ_LINE` for a shared peripheral interrupt (SPI `number`, GIC INTID 32 + number).
  public func setSPI(_ number: UInt32, level: Bool) throws(KVMError) {
    var request = ckvm_irq_level(
      irq: UInt32(CKVM_ARM_IRQ_TYPE_SPI) << UInt32(CKVM_ARM_IRQ_TYPE_SHIFT) | (32 + number),
      level: level ? 1 : 0)
    try syscalls.call(fd, CKVM_IRQ_LINE, "KVM_IRQ_LINE", &request)
  }

  /// `KVM_IOEVENTFD`: from now on KVM signals `eventfd` itself when the guest writes (at any width)
  /// to guest physical `address`, and the vCPU goes on without an exit to userspace; `assign: false`
  /// removes that again. In a Realm the address is the one KVM reports MMIO at (the shared bit
  /// cleared), as the host series hands the Realm's faults to the same in-kernel bus.
  public func setIOEventFD(address: UInt64, eventfd: Int32, assign: Bool = true) throws(KVMError) {
    var request = ckvm_ioeventfd()
    request.addr = address
    request.len = 0
    request.fd = eventfd
    request.flags = assign ? 0 : UInt32(CKVM_IOEVENTFD_FLAG_DEASSIGN)
    try syscalls.call(fd, CKVM_IOEVENTFD, "KVM_IOEVENTFD", &request)
  }

  /// `KVM_IRQFD` with a resample eventfd: from now on a write to `eventfd` raises SPI `number` (level),
  /// with no ioctl; KVM lowers it when the guest ends the interrupt (EOI) and then signals
  /// `resample`. `assign: false` removes that again (the SPI's lines through ``setSPI(_:level:)``
  /// are unaffected either way).
  public func setIRQFD(spi number: UInt32, eventfd: Int32, resample: Int32, assign: Bool = true) throws(KVMError) {
    var request = ckvm_irqfd()
    request.fd = UInt32(bitPattern: eventfd)
    request.gsi = number
    request.flags = assign ? UInt32(CKVM_IRQFD_FLAG_RESAMPLE) : UInt32(CKVM_IRQFD_FLAG_DEASSIGN)
    request.resamplefd = assign ? UInt32(bitPattern: resample) : 0
    try syscalls.call(fd, CKVM_IRQFD, "KVM_IRQFD", &request)
  }

  /// `KVM_ENABLE_CAP` on the VM.
  public func enableCapability(_ capability: UInt32, args: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)) throws(KVMError) {
    var request = ckvm_enable_cap()
    request.cap = capability
    request.args = args
    try syscalls.call(fd, CKVM_ENABLE_CAP, "KVM_ENABLE_CAP", &request)
  }
}
