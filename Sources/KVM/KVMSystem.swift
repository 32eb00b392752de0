import CKVM
import Platform

/// An open `/dev/kvm`: capability probes and VM creation.
public final class KVMSystem: @unchecked Sendable {
  public let fd: Int32
  public let syscalls: any KVMSyscalls

  /// Opens `path` (normally `/dev/kvm`) and checks the API version.
  public init(path: String = "/dev/kvm", syscalls: any KVMSyscalls = LinuxKVMSyscalls()) throws(KVMError) {
    let fd = syscalls.open(path, flags: O_RDWR)
    guard fd >= 0 else { throw .unavailable(path: path, errno: -fd) }
    self.fd = fd
    self.syscalls = syscalls
    let version = syscalls.ioctl(fd, CKVM_GET_API_VERSION, value: 0)
    guard version == CKVM_API_VERSION else {
      syscalls.close(fd)
      throw .unsupported("\(path) speaks KVM API version \(version), realm-run needs \(CKVM_API_VERSION)")
    }
  }

  deinit { syscalls.close(fd) }

  /// `KVM_CHECK_EXTENSION`: 0 when the capability is absent, otherwise its value.
  public func checkExtension(_ capability: UInt) -> Int32 {
    max(0, syscalls.ioctl(fd, CKVM_CHECK_EXTENSION, value: capability))
  }

  /// The largest IPA width a VM may have (40 on kernels that predate the capability).
  public var maxIPABits: Int {
    let bits = checkExtension(UInt(CKVM_CAP_ARM_VM_IPA_SIZE))
    return bits > 0 ? Int(bits) : 40
  }

  /// Bytes to map for each vCPU's `kvm_run`.
  public func vcpuMapSize() throws(KVMError) -> Int {
    Int(try syscalls.call(fd, CKVM_GET_VCPU_MMAP_SIZE, "KVM_GET_VCPU_MMAP_SIZE"))
  }

  /// `KVM_CREATE_VM` with a machine type (IPA bits in [7:0], VM type above).
  public func createVM(type: UInt) throws(KVMError) -> VirtualMachine {
    let result = retryingOnMinusEINTR { syscalls.ioctl(fd, CKVM_CREATE_VM, value: type) }
    guard result >= 0 else { throw .ioctl("KVM_CREATE_VM", errno: -result) }
    return VirtualMachine(fd: result, system: self)
  }

  /// Whether `KVM_CREATE_VM` accepts `type` (the VM is closed again at once).
  public func canCreateVM(type: UInt) -> Bool {
    let result = retryingOnMinusEINTR { syscalls.ioctl(fd, CKVM_CREATE_VM, value: type) }
    guard result >= 0 else { return false }
    syscalls.close(result)
    return true
  }
}
