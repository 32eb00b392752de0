import CKVM
import Platform

/// The system calls the KVM layer makes, behind a protocol so tests can record them (every ioctl
/// with its request number and argument bytes) and play back results without a `/dev/kvm`.
///
/// Every call returns its result, or `-errno` on failure.
public protocol KVMSyscalls: Sendable {
  func open(_ path: String, flags: Int32) -> Int32
  func close(_ fd: Int32)
  /// `ioctl(fd, request, argument)` with a pointer argument (the struct is read and/or written).
  /// `argumentSize` is the number of bytes behind `argument`.
  func ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer, argumentSize: Int) -> Int32
  /// `ioctl(fd, request, value)` with an integer argument.
  func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Int32
  /// Maps a vCPU's shared `kvm_run` page(s).
  func mapRunStructure(vcpu fd: Int32, size: Int) -> UnsafeMutableRawPointer?
  func unmap(_ address: UnsafeMutableRawPointer, size: Int)
}

/// The real system calls.
public struct LinuxKVMSyscalls: KVMSyscalls {
  public init() {}

  public func open(_ path: String, flags: Int32) -> Int32 {
    do {
      return try FileDescriptor.open(path, flags).rawValue
    } catch {
      return -error.rawValue
    }
  }

  public func close(_ fd: Int32) {
    FileDescriptor(rawValue: fd).close()
  }

  public func ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer, argumentSize: Int) -> Int32 {
    let result = ckvm_ioctl_pointer(fd, request, argument)
    return result < 0 ? -errno : result
  }

  public func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Int32 {
    let result = ckvm_ioctl_value(fd, request, value)
    return result < 0 ? -errno : result
  }

  public func mapRunStructure(vcpu fd: Int32, size: Int) -> UnsafeMutableRawPointer? {
    let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    return address == MAP_FAILED ? nil : address
  }

  public func unmap(_ address: UnsafeMutableRawPointer, size: Int) {
    munmap(address, size)
  }
}

extension KVMSyscalls {
  /// `ioctl` with a typed struct argument. Any failure throws, EINTR included: nothing here is
  /// retried. (KVM_RUN, which a kicked vCPU leaves with EINTR, does not come through here:
  /// ``VCPU/runOnce()`` calls ``ioctl(_:_:value:)`` and treats EINTR as an exit.)
  @discardableResult
  func call<T>(_ fd: Int32, _ request: UInt, _ name: StaticString, _ argument: inout T) throws(KVMError) -> Int32 {
    let result = withUnsafeMutableBytes(of: &argument) { bytes in
      ioctl(fd, request, bytes.baseAddress!, argumentSize: bytes.count)
    }
    guard result >= 0 else { throw KVMError.ioctl(name, errno: -result) }
    return result
  }

  /// `ioctl` with an integer argument.
  @discardableResult
  func call(_ fd: Int32, _ request: UInt, _ name: StaticString, value: UInt = 0) throws(KVMError) -> Int32 {
    let result = ioctl(fd, request, value: value)
    guard result >= 0 else { throw KVMError.ioctl(name, errno: -result) }
    return result
  }
}
