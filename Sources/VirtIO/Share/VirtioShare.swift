import FirmwareCore
import GuestMemory
import NineP
import Platform
import Synchronization

/// virtio-9p (the 9P transport of virtio 1.x, 5.x "9P"; device 9): a host directory the guest
/// mounts with `mount -t 9p -o trans=virtio,version=9p2000.L TAG DIR`. Each chain on its one queue
/// is a request (device-readable) and room for its reply (device-writable); a ``NinePServer``
/// answers it.
///
/// Requests are answered in order on the thread that rings the doorbell (the I/O thread when KVM
/// catches it, else the vCPU's): a 9P client waits for each reply, and the server's work is a few
/// system calls on a local directory.
public final class VirtioShare: VirtioDevice {
  public let deviceType = VirtioDeviceType.ninePTransport
  /// VIRTIO_9P_MOUNT_TAG: the configuration holds the tag.
  public let features: UInt64 = 1
  public let queueCount = 1
  public let maxQueueSize: UInt16
  public var configSize: Int { config.count }

  /// The longest tag: Linux's limit for a 9P device's tag is a page, QEMU's 255 bytes.
  public static let maxTagLength = 255
  static let requestQueue = 0

  public let tag: String
  private let config: [UInt8]
  private let state = Mutex(VirtioDeviceState())
  /// The server, held while one request is answered (requests are answered one at a time).
  private let server: Mutex<NinePServer>

  /// A share of `directory` under `tag` (1...255 bytes, no NUL).
  public init(directory: SharedDirectory, tag: String, queueSize: UInt16 = 128) {
    precondition(Self.isValidTag(tag))
    self.tag = tag
    let tagBytes = Array(tag.utf8)
    config = [UInt8(tagBytes.count & 0xFF), UInt8(tagBytes.count >> 8)] + tagBytes
    maxQueueSize = queueSize
    server = Mutex(NinePServer(directory: directory))
  }

  /// Whether `tag` can name a share: 1 to ``maxTagLength`` bytes, no NUL or comma (mount options).
  public static func isValidTag(_ tag: String) -> Bool {
    let bytes = Array(tag.utf8)
    return !bytes.isEmpty && bytes.count <= maxTagLength && !bytes.contains(0) && !bytes.contains(UInt8(ascii: ","))
  }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    config.unsignedInteger(at: offset, width: size) ?? 0
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {}

  public func activate(_ activation: VirtioActivation) {
    state.withLock { $0.activate(activation) }
  }

  public func reset() {
    state.withLock { $0.reset() }
  }

  public func process(queue: Int) {
    guard queue == Self.requestQueue else { return }
    server.withLock { server in
      answerChains(on: Self.requestQueue, ready: true, of: state, device: \.self) { chain, memory in
        answer(chain, memory: memory, server: server)
      }
    }
  }

  /// Reads one request from `chain` (at most the agreed msize: a longer one fails to decode and is
  /// answered with an error), answers it and writes the reply; returns the bytes written.
  private func answer(_ chain: DescriptorChain, memory: GuestMemory, server: NinePServer) -> UInt32 {
    var reader = DescriptorChainReader(chain, memory: memory)
    let limit = Int(server.messageSize == 0 ? NinePServer.minMessageSize : server.messageSize)
    var request = [UInt8](repeating: 0, count: Int(min(reader.remaining, UInt64(limit))))
    let count = request.withUnsafeMutableBytes { reader.read(into: $0) }
    var reply = server.handle(request[..<count])
    var writer = DescriptorChainWriter(chain, memory: memory)
    if UInt64(reply.count) > writer.remaining {
      reply = server.errorReply(to: request[..<count], errno: EMSGSIZE)
      guard UInt64(reply.count) <= writer.remaining else { return 0 }
    }
    writer.write(reply)
    return writer.written
  }
}
