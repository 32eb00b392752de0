import FirmwareCore
import GuestMemory
import Platform
import Synchronization

/// virtio-net (virtio 1.x, 5.1) over a frame backend: a tap device, or any descriptor that carries
/// one Ethernet frame per read and write (a SOCK_SEQPACKET socket in the tests).
///
/// Queue 0 is receiveq, 1 transmitq (one pair). Frames the backend has are read on the I/O thread
/// (``VirtioNet/init(backend:mac:loop:queueSize:)``, a ``BackendWatch`` on the I/O loop) and written into the guest's receive buffers, across
/// several of them with mergeable receive buffers; when the guest has no room the frame waits and
/// the backend is not watched until the guest posts buffers. The guest's frames go to the backend
/// on the thread that rings the doorbell; one the backend cannot take at once is dropped, as a
/// full link drops it.
public final class VirtioNet: VirtioDevice {
  public let deviceType = VirtioDeviceType.network
  public let features: UInt64 = Feature.mac | Feature.mergeableReceiveBuffers | Feature.status
  public let queueCount = 2
  public let maxQueueSize: UInt16
  /// mac[6], status[2], max_virtqueue_pairs[2].
  public let configSize = 10

  /// Device feature bits (virtio 1.x, 5.1.3).
  public enum Feature {
    public static let mac: UInt64 = 1 << 5
    public static let mergeableReceiveBuffers: UInt64 = 1 << 15
    public static let status: UInt64 = 1 << 16
  }

  static let receiveQueue = 0
  static let transmitQueue = 1
  /// virtio_net_hdr as a VERSION_1 device has it: flags, gso_type, hdr_len, gso_size, csum_start,
  /// csum_offset, num_buffers.
  public static let headerSize = 12
  /// The largest frame carried either way (no segmentation offload is offered: a frame is at most
  /// the link's MTU and its Ethernet header; 64 KiB covers any MTU a tap takes). Longer ones from
  /// the guest are dropped.
  public static let maxFrameSize = 65_550

  /// Starts calling `handler` whenever the backend has a frame to read; returns what stops it.
  public typealias BackendWatch = @Sendable (_ handler: @escaping @Sendable () -> Void) -> (@Sendable () -> Void)

  public let mac: [UInt8]
  private let backend: FileDescriptor
  private let watchBackend: BackendWatch

  struct State {
    var device = VirtioDeviceState()
    /// Where frames are read from the backend; `pendingLength` bytes of it wait for room.
    var frame = [UInt8](repeating: 0, count: VirtioNet.maxFrameSize)
    var pendingLength: Int?
    /// Ends the backend's watch while there is one.
    var stopWatching: (@Sendable () -> Void)?
    /// Frames dropped: too long from the guest, or refused by the backend.
    var dropped = 0
  }

  private let state = Mutex(State())
  /// The guest's frames go out whole and in order; holds the buffer each is gathered into.
  private let transmitting = Mutex([UInt8](repeating: 0, count: VirtioNet.maxFrameSize))

  /// A device with `mac` (6 bytes) whose frames come from and go to `backend` (non-blocking),
  /// told of frames to read by `watch`.
  public init(backend: FileDescriptor, mac: [UInt8], watch: @escaping BackendWatch, queueSize: UInt16 = 256) {
    precondition(mac.count == 6)
    self.backend = backend
    self.mac = mac
    watchBackend = watch
    maxQueueSize = queueSize
  }

  /// Frames dropped so far.
  public var droppedFrames: Int { state.withLock { $0.dropped } }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    let bytes = mac + [1, 0] + [1, 0]  // status: VIRTIO_NET_S_LINK_UP; one queue pair
    return bytes.unsignedInteger(at: offset, width: size) ?? 0
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {}

  public func activate(_ activation: VirtioActivation) {
    state.withLock { $0.device.activate(activation) }
    receive()
  }

  public func reset() {
    state.withLock { state in
      state.device.reset()
      state.pendingLength = nil
      state.stopWatching?()
      state.stopWatching = nil
    }
  }

  public func process(queue: Int) {
    if queue == Self.transmitQueue { transmit() } else if queue == Self.receiveQueue { receive() }
  }

  // MARK: - Guest to backend

  private func transmit() {
    transmitting.withLock { frame in
      answerChains(on: Self.transmitQueue, ready: true, of: state, device: \.device) { chain, memory in
        var reader = DescriptorChainReader(chain, memory: memory)
        let length = reader.remaining
        guard length > UInt64(Self.headerSize), length - UInt64(Self.headerSize) <= UInt64(Self.maxFrameSize) else {
          state.withLock { $0.dropped += 1 }
          return 0
        }
        // No offloads are offered: the header says nothing the backend needs.
        var header = [UInt8](repeating: 0, count: Self.headerSize)
        _ = header.withUnsafeMutableBytes { reader.read(into: $0) }
        let frameLength = Int(length) - Self.headerSize
        let count = frame.withUnsafeMutableBytes { reader.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<frameLength])) }
        let sent = frame.withUnsafeBytes { bytes in retryingOnInterrupt { write(backend.rawValue, bytes.baseAddress, count) } }
        if sent != count { state.withLock { $0.dropped += 1 } }
        return 0
      }
    }
  }

  // MARK: - Backend to guest

  /// Moves frames from the backend into the guest's receive buffers until the backend has none
  /// (the watch stays) or the guest has no room (the frame waits; the watch ends until the guest
  /// posts buffers, which calls this again).
  func receive() {
    var failure: VirtioInterrupt?
    let interrupt = state.withLock { state -> VirtioInterrupt? in
      guard let memory = state.device.memory(forQueue: Self.receiveQueue, ready: true) else { return nil }
      var notify = false
      var stalled = false
      // After a frame found no room: notifications re-armed and one more look (the guest may have
      // posted buffers meanwhile); a second miss stalls.
      var lookedAgain = false
      do {
        while true {
          if state.pendingLength == nil {
            let count = state.frame.withUnsafeMutableBytes { bytes in
              retryingOnInterrupt { read(backend.rawValue, bytes.baseAddress, bytes.count) }
            }
            guard count > 0 else { break }  // EAGAIN: nothing more now (or the backend closed)
            state.pendingLength = count
          }
          guard try deliver(&state, memory: memory) else {
            // No room: have the guest tell us when it posts more, then look once more (it may
            // have posted some before that).
            if !lookedAgain {
              try state.device.queues[Self.receiveQueue].enableNotificationForMore(memory: memory)
              lookedAgain = true
              continue
            }
            stalled = true
            break
          }
          lookedAgain = false
          state.pendingLength = nil
          notify = try state.device.queues[Self.receiveQueue].needsNotification(memory: memory) || notify
        }
      } catch {
        failure = state.device.markBroken()
        return nil
      }
      if stalled, let stop = state.stopWatching {
        stop()
        state.stopWatching = nil
      } else if !stalled, state.stopWatching == nil {
        state.stopWatching = watchBackend { [weak self] in self?.receive() }
      }
      return notify ? state.device.interrupt : nil
    }
    if let failure { return failure.needsReset() }
    interrupt?.usedBuffers()
  }

  /// Writes the pending frame, after its header, into the guest's next receive buffers: one chain,
  /// or with mergeable buffers as many as it takes (num_buffers says how many). Returns false,
  /// taking nothing, when the guest has not posted room enough; a frame too long for a guest's
  /// single buffer (no mergeable buffers) is dropped, the buffer returned with length 0.
  private func deliver(_ state: inout State, memory: GuestMemory) throws(VirtQueueError) -> Bool {
    let length = state.pendingLength ?? 0
    let mergeable = state.device.features & Feature.mergeableReceiveBuffers != 0
    let needed = UInt64(Self.headerSize + length)
    var chains: [DescriptorChain] = []
    var room: UInt64 = 0
    while room < needed, mergeable || chains.isEmpty {
      guard let chain = try state.device.queues[Self.receiveQueue].pop(memory: memory) else {
        for _ in chains { state.device.queues[Self.receiveQueue].undoPop() }
        return false
      }
      chains.append(chain)
      room += DescriptorChainWriter(chain, memory: memory).remaining
    }
    if room < needed {
      // One buffer, too small for the frame: the frame is dropped and the buffer given back empty
      // (the driver counts a length error and posts it again).
      try state.device.queues[Self.receiveQueue].addUsed(memory: memory, head: chains[0].head, length: 0)
      state.dropped += 1
      return true
    }
    var header = [UInt8](repeating: 0, count: Self.headerSize)
    header[10] = UInt8(truncatingIfNeeded: mergeable ? chains.count : 1)
    header[11] = UInt8(truncatingIfNeeded: (mergeable ? chains.count : 1) >> 8)
    var sent = 0
    for (index, chain) in chains.enumerated() {
      var writer = DescriptorChainWriter(chain, memory: memory)
      if index == 0 { writer.write(header) }
      sent += state.frame.withUnsafeBytes { bytes in writer.write(UnsafeRawBufferPointer(rebasing: bytes[sent..<length])) }
      try state.device.queues[Self.receiveQueue].addUsed(memory: memory, head: chain.head, length: writer.written)
    }
    return true
  }
}
