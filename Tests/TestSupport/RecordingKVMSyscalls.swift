import KVM
import Synchronization
import FirmwareCore

/// A test double of the KVM system calls: records every call with its request number and the
/// bytes of its argument (as they were when the call was made), and answers from a script.
///
/// File descriptors are handed out from 10 upwards; `/dev/kvm` answers API version 12.
public final class RecordingKVMSyscalls: KVMSyscalls, @unchecked Sendable {
  /// One recorded call.
  public struct Call: Equatable, CustomStringConvertible {
    public var fd: Int32
    public var request: UInt
    /// The argument struct's bytes for pointer ioctls, `nil` for integer ones.
    public var bytes: [UInt8]?
    /// The integer argument for integer ioctls.
    public var value: UInt?

    public init(fd: Int32, request: UInt, bytes: [UInt8]?, value: UInt?) {
      self.fd = fd
      self.request = request
      self.bytes = bytes
      self.value = value
    }

    public var description: String {
      "fd \(fd) request 0x\(String(request, radix: 16))" + (bytes.map { " \($0.count) bytes" } ?? " value \(value ?? 0)")
    }
  }

  /// Decides a pointer ioctl's result; it may write the argument (e.g. a preferred target).
  public typealias PointerResponder = @Sendable (_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawBufferPointer) -> Int32?
  /// Decides an integer ioctl's result.
  public typealias ValueResponder = @Sendable (_ fd: Int32, _ request: UInt, _ value: UInt) -> Int32?

  private struct State {
    var calls: [Call] = []
    var nextFD: Int32 = 10
    var opened: [String] = []
  }

  private let state = Mutex(State())
  private let pointerResponder: PointerResponder
  private let valueResponder: ValueResponder
  /// Capabilities `KVM_CHECK_EXTENSION` reports, with their values.
  public let capabilities: [UInt: Int32]

  public init(
    capabilities: [UInt: Int32] = [:],
    pointer: @escaping PointerResponder = { _, _, _ in nil },
    value: @escaping ValueResponder = { _, _, _ in nil }
  ) {
    self.capabilities = capabilities
    pointerResponder = pointer
    valueResponder = value
  }

  /// Every ioctl so far, in order.
  public var calls: [Call] { state.withLock { $0.calls } }
  /// Every path opened so far.
  public var openedPaths: [String] { state.withLock { $0.opened } }

  public func open(_ path: String, flags: Int32) -> Int32 {
    state.withLock { state in
      state.opened.append(path)
      defer { state.nextFD += 1 }
      return state.nextFD
    }
  }

  public func close(_ fd: Int32) {}

  public func ioctl(_ fd: Int32, _ request: UInt, _ argument: UnsafeMutableRawPointer, argumentSize: Int) -> Int32 {
    let buffer = UnsafeMutableRawBufferPointer(start: argument, count: argumentSize)
    state.withLock { $0.calls.append(Call(fd: fd, request: request, bytes: Array(buffer), value: nil)) }
    if let answer = pointerResponder(fd, request, buffer) { return answer }
    return 0
  }

  public func ioctl(_ fd: Int32, _ request: UInt, value: UInt) -> Int32 {
    state.withLock { $0.calls.append(Call(fd: fd, request: request, bytes: nil, value: value)) }
    if let answer = valueResponder(fd, request, value) { return answer }
    switch request {
    case 0xAE00: return 12  // KVM_GET_API_VERSION
    case 0xAE03: return capabilities[value] ?? 0  // KVM_CHECK_EXTENSION
    case 0xAE04: return 4096  // KVM_GET_VCPU_MMAP_SIZE
    case 0xAE01, 0xAE41:  // KVM_CREATE_VM, KVM_CREATE_VCPU: a new fd
      return state.withLock { state in
        defer { state.nextFD += 1 }
        return state.nextFD
      }
    default: return 0
    }
  }

  public func mapRunStructure(vcpu fd: Int32, size: Int) -> UnsafeMutableRawPointer? {
    let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    memory.initializeMemory(as: UInt8.self, repeating: 0, count: size)
    return memory
  }

  public func unmap(_ address: UnsafeMutableRawPointer, size: Int) {
    address.deallocate()
  }
}

extension Array where Element == UInt8 {
  /// Little-endian integer at `offset` (for checking recorded struct bytes; traps when outside).
  public func le<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
    T(truncatingIfNeeded: unsignedInteger(at: offset, width: MemoryLayout<T>.size)!)
  }
}

/// The 4 bytes of `value`, least significant first (expected struct bytes in call-sequence tests).
public func le32(_ value: UInt32) -> [UInt8] { value.littleEndianBytes }
/// The 8 bytes of `value`, least significant first.
public func le64(_ value: UInt64) -> [UInt8] { value.littleEndianBytes }
