import AsyncIO
import CLibAIO
import GuestMemory
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// virtio-blk (virtio 1.x, 5.2) over a ``BlockFile``: reads and writes go through libaio on the
/// ``IOLoop`` thread, so a vCPU's queue notification only schedules work and returns.
public final class VirtioBlock: VirtioDevice {
  public enum Feature {
    public static let segMax: UInt64 = 1 << 2
    public static let readOnly: UInt64 = 1 << 5
    public static let blockSize: UInt64 = 1 << 6
    public static let flush: UInt64 = 1 << 9
    public static let multiQueue: UInt64 = 1 << 12
    public static let discard: UInt64 = 1 << 13
    public static let writeZeroes: UInt64 = 1 << 14
  }

  public static let sectorSize: UInt64 = 512
  static let serialLength = 20
  static let maxRangeSectors: UInt32 = 1 << 22  // 2 GiB per discard / write-zeroes range
  static let configSize = 60
  /// The largest unaligned O_DIRECT request (Linux sends at most max_sectors, 1280 KiB by default).
  static let maxBounce = 32 << 20

  public let deviceType = VirtioDeviceType.block
  public let features: UInt64
  public let queueCount: Int
  public let maxQueueSize: UInt16
  public var configSize: Int { Self.configSize }

  public let file: BlockFile
  public let capacity: UInt64
  private let loop: IOLoop
  private let serial: [UInt8]
  private let config: [UInt8]

  struct State {
    var memory: GuestMemory?
    var interrupt: VirtioInterrupt?
    var features: UInt64 = 0
    var queues: [VirtQueue] = []
    /// Requests submitted to the host per queue, this activation.
    var queueInFlight: [Int] = []
    /// Queues with completions since the last batch end: looked at again then.
    var revisit: Set<Int> = []
    var generation: UInt64 = 0
    var signalPending = false
    var broken = false
  }

  private let state = Mutex(State())
  /// Requests submitted and not yet completed (across resets).
  private let inFlight = Atomic<Int>(0)

  /// - Parameters:
  ///   - queues: request queues (more than one offers VIRTIO_BLK_F_MQ).
  ///   - serial: the id GET_ID returns (at most 20 bytes are used).
  public init(file: BlockFile, loop: IOLoop, queues: Int = 1, queueSize: UInt16 = 256, serial: String) {
    self.file = file
    self.loop = loop
    queueCount = max(1, queues)
    maxQueueSize = queueSize
    capacity = file.size / Self.sectorSize
    self.serial = Array(serial.utf8.prefix(Self.serialLength))
    var features = Feature.segMax | Feature.blockSize | Feature.flush
    if queueCount > 1 { features |= Feature.multiQueue }
    if file.readOnly {
      features |= Feature.readOnly
    } else {
      features |= Feature.writeZeroes
      if file.canPunchHoles { features |= Feature.discard }
    }
    self.features = features

    var config = [UInt8](repeating: 0, count: Self.configSize)
    func put(_ offset: Int, _ value: UInt64, _ width: Int) {
      for index in 0..<width { config[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
    }
    put(0x00, capacity, 8)
    put(0x0C, UInt64(max(queueSize, 3)) - 2, 4)  // seg_max: header and status take two descriptors
    put(0x14, Self.sectorSize, 4)  // blk_size
    put(0x22, UInt64(queueCount), 2)  // num_queues
    put(0x24, UInt64(Self.maxRangeSectors), 4)  // max_discard_sectors
    put(0x28, 1, 4)  // max_discard_seg
    put(0x2C, 1, 4)  // discard_sector_alignment
    put(0x30, UInt64(Self.maxRangeSectors), 4)  // max_write_zeroes_sectors
    put(0x34, 1, 4)  // max_write_zeroes_seg
    put(0x38, file.canPunchHoles ? 1 : 0, 1)  // write_zeroes_may_unmap
    self.config = config

    // Strong on purpose (a weak reference would put every retain of the device on Swift's slow
    // side-table path); the loop drops its handlers when it stops.
    loop.addBatchHandler { [self] in signalIfPending() }
  }

  /// Requests in flight (for tests and shutdown).
  public var requestsInFlight: Int { inFlight.load(ordering: .acquiring) }

  public var isQuiescent: Bool { requestsInFlight == 0 }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    guard offset >= 0, size > 0, offset + size <= config.count else { return 0 }
    var value: UInt64 = 0
    for index in 0..<size { value |= UInt64(config[offset + index]) << (8 * UInt64(index)) }
    return value
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {}  // writeback toggling not offered

  public func activate(_ activation: VirtioActivation) {
    state.withLock { state in
      state.memory = activation.memory
      state.interrupt = activation.interrupt
      state.features = activation.features
      state.queues = activation.queues
      state.queueInFlight = Array(repeating: 0, count: activation.queues.count)
      state.revisit = []
      state.broken = false
      state.signalPending = false
    }
  }

  public func reset() {
    state.withLock { state in
      state.generation &+= 1
      state.memory = nil
      state.interrupt = nil
      state.queues = []
      state.queueInFlight = []
      state.revisit = []
      state.broken = false
      state.signalPending = false
    }
  }

  public func process(queue: Int) {
    loop.schedule { [self] in drain(queue: queue) }
  }

  // MARK: on the I/O thread

  private struct Context {
    let memory: GuestMemory
    let generation: UInt64
    let queue: Int
    let features: UInt64
  }

  /// Takes every available chain of `queue` and starts its request.
  ///
  /// While requests of a queue are in flight the driver is told not to notify: the I/O thread
  /// looks at the ring again when they complete (it wakes for that anyway), which saves the
  /// driver's doorbell exits and a wake-up per batch. Notifications are re-armed, and the ring
  /// checked once more, whenever the queue has nothing in flight.
  func drain(queue: Int) {
    while true {
      var chains: [DescriptorChain] = []
      var failure: VirtioInterrupt?
      let context = state.withLock { state -> Context? in
        guard let memory = state.memory, !state.broken, queue < state.queues.count, state.queues[queue].isReady else {
          return nil
        }
        do {
          while let chain = try state.queues[queue].pop(memory: memory) { chains.append(chain) }
        } catch {
          state.broken = true
          failure = state.interrupt
        }
        return Context(memory: memory, generation: state.generation, queue: queue, features: state.features)
      }
      if let failure { return failure.needsReset() }
      guard let context else { return }
      for chain in chains { start(chain, context) }
      // Suppress notifications while requests are in flight; otherwise re-arm them and look again.
      let again = state.withLock { state -> Bool in
        guard state.generation == context.generation, !state.broken, queue < state.queues.count else { return false }
        do {
          if state.queueInFlight[queue] > 0 {
            try state.queues[queue].disableNotification(memory: context.memory)
            return false
          }
          return try state.queues[queue].enableNotification(memory: context.memory)
        } catch {
          state.broken = true
          failure = state.interrupt
          return false
        }
      }
      if let failure { return failure.needsReset() }
      if !again { return }
    }
  }

  private func start(_ chain: DescriptorChain, _ context: Context) {
    let memory = context.memory
    let request: BlockRequest
    do {
      request = try BlockRequest.parse(chain.descriptors) { address, count in
        try? memory.read(at: address, count: count)
      }
    } catch {
      switch error {
      case .noStatus:
        return complete(chain.head, status: nil, written: 0, context)
      case .badHeader(let status), .badOrder(let status):
        return complete(chain.head, status: (status, BlockStatus.ioError), written: 0, context)
      }
    }
    func finish(_ status: UInt8, written: UInt32 = 0) {
      complete(chain.head, status: (request.status, status), written: written, context)
    }
    switch request.type {
    case .read, .write:
      let isRead = request.type == .read
      if !isRead && file.readOnly { return finish(BlockStatus.ioError) }
      let segments = isRead ? request.writable : request.readable
      let length = segments.reduce(UInt64(0)) { $0 + UInt64($1.length) }
      // The used length is 32 bits: longer requests (possible only by repeating buffers) fail.
      guard length % Self.sectorSize == 0, length < UInt64(UInt32.max), request.sector <= capacity,
        length / Self.sectorSize <= capacity - request.sector,
        let buffers = hostBuffers(segments, memory)
      else { return finish(BlockStatus.ioError) }
      let offset = Int64(request.sector * Self.sectorSize)
      startTransfer(read: isRead, buffers: buffers, offset: offset, length: Int(length), context) { ok in
        finish(ok ? BlockStatus.ok : BlockStatus.ioError, written: isRead && ok ? UInt32(length) : 0)
      }
    case .flush:
      submit(.fdatasync(fd: file.fd), context) { result in finish(result == 0 ? BlockStatus.ok : BlockStatus.ioError) }
    case .getID:
      var written: UInt32 = 0
      var remaining = serial + [UInt8](repeating: 0, count: Self.serialLength - serial.count)
      for segment in request.writable where !remaining.isEmpty {
        let chunk = Array(remaining.prefix(Int(segment.length)))
        guard (try? memory.write(chunk, at: segment.address)) != nil else { return finish(BlockStatus.ioError) }
        written += UInt32(chunk.count)
        remaining.removeFirst(chunk.count)
      }
      finish(BlockStatus.ok, written: written)
    case .discard, .writeZeroes:
      let isDiscard = request.type == .discard
      let feature = isDiscard ? Feature.discard : Feature.writeZeroes
      guard features & feature != 0, context.features & feature != 0 else { return finish(BlockStatus.unsupported) }
      guard let range = readRange(request, memory) else { return finish(BlockStatus.ioError) }
      let byteOffset = Int64(range.sector * Self.sectorSize)
      let byteLength = Int64(range.sectors) * Int64(Self.sectorSize)
      let punch = isDiscard || (range.unmap && file.canPunchHoles)
      let mode = punch ? clibaio_falloc_punch_hole | clibaio_falloc_keep_size : clibaio_falloc_zero_range | clibaio_falloc_keep_size
      submit(.fallocate(fd: file.fd, mode: mode, offset: byteOffset, length: byteLength), context) { [self] result in
        if result == 0 { return finish(BlockStatus.ok) }
        if isDiscard { return finish(BlockStatus.ioError) }
        // ZERO_RANGE not supported here: write zeros.
        finish(writeZeros(offset: byteOffset, length: byteLength) ? BlockStatus.ok : BlockStatus.ioError)
      }
    case nil:
      finish(BlockStatus.unsupported)
    }
  }

  /// The one range of a discard or write-zeroes request, checked against the disk.
  private func readRange(_ request: BlockRequest, _ memory: GuestMemory) -> BlockRange? {
    guard request.readable.count == 1, request.readable[0].length == UInt32(BlockRange.size),
      let bytes = try? memory.read(at: request.readable[0].address, count: BlockRange.size)
    else { return nil }
    let range = BlockRange(bytes: bytes[...])
    guard range.sectors > 0, range.sectors <= Self.maxRangeSectors, range.sector <= capacity,
      UInt64(range.sectors) <= capacity - range.sector
    else { return nil }
    return range
  }

  private func hostBuffers(_ segments: [GuestSegment], _ memory: GuestMemory) -> [UnsafeMutableRawBufferPointer]? {
    var buffers: [UnsafeMutableRawBufferPointer] = []
    buffers.reserveCapacity(segments.count)
    for segment in segments {
      guard let buffer = try? memory.slice(at: segment.address, count: Int(segment.length)) else { return nil }
      buffers.append(buffer)
    }
    return buffers
  }

  /// Reads or writes `buffers` at `offset`; with O_DIRECT and unaligned guest buffers, through an
  /// aligned bounce buffer.
  private func startTransfer(
    read: Bool, buffers: [UnsafeMutableRawBufferPointer], offset: Int64, length: Int, _ context: Context,
    done: @escaping (Bool) -> Void
  ) {
    if length == 0 { return done(true) }
    let aligned = buffers.allSatisfy { UInt(bitPattern: $0.baseAddress) % 512 == 0 && $0.count % 512 == 0 }
    if !file.direct || aligned {
      let iovecs = buffers.map { iovec(iov_base: $0.baseAddress, iov_len: $0.count) }
      let operation: IOOperation = read
        ? .read(fd: file.fd, iovecs: iovecs, offset: offset) : .write(fd: file.fd, iovecs: iovecs, offset: offset)
      return submit(operation, context) { result in done(result == length) }
    }
    // Bounce buffers are host memory the guest makes us allocate: bounded.
    var raw: UnsafeMutableRawPointer?
    guard length <= Self.maxBounce, posix_memalign(&raw, 4096, length) == 0, let bounce = raw else { return done(false) }
    if !read {
      var position = 0
      for buffer in buffers where buffer.count > 0 {
        (bounce + position).copyMemory(from: buffer.baseAddress!, byteCount: buffer.count)
        position += buffer.count
      }
    }
    let iovecs = [iovec(iov_base: bounce, iov_len: length)]
    let operation: IOOperation = read
      ? .read(fd: file.fd, iovecs: iovecs, offset: offset) : .write(fd: file.fd, iovecs: iovecs, offset: offset)
    submit(operation, context) { result in
      if read && result == length {
        var position = 0
        for buffer in buffers where buffer.count > 0 {
          buffer.baseAddress!.copyMemory(from: bounce + position, byteCount: buffer.count)
          position += buffer.count
        }
      }
      free(bounce)
      done(result == length)
    }
  }

  private func submit(_ operation: IOOperation, _ context: Context, completion: @escaping (Int) -> Void) {
    inFlight.add(1, ordering: .relaxed)
    state.withLock { state in
      if state.generation == context.generation, context.queue < state.queueInFlight.count {
        state.queueInFlight[context.queue] += 1
      }
    }
    loop.submit(operation) { [self] result in
      inFlight.subtract(1, ordering: .releasing)
      state.withLock { state in
        if state.generation == context.generation, context.queue < state.queueInFlight.count {
          state.queueInFlight[context.queue] -= 1
          state.revisit.insert(context.queue)
        }
      }
      completion(result)
    }
  }

  private func writeZeros(offset: Int64, length: Int64) -> Bool {
    let chunk = 1 << 20
    let zeros = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { zeros.deallocate() }
    memset(zeros, 0, chunk)
    var done: Int64 = 0
    while done < length {
      let count = Int(min(Int64(chunk), length - done))
      let written = pwrite(file.fd, zeros, count, Int(offset + done))
      guard written > 0 else { return false }
      done += Int64(written)
    }
    return true
  }

  /// Writes the status, returns the chain, and notes whether the driver wants an interrupt.
  private func complete(_ head: UInt16, status: (address: UInt64, value: UInt8)?, written: UInt32, _ context: Context) {
    var failure: VirtioInterrupt?
    state.withLock { state in
      guard state.generation == context.generation, !state.broken, context.queue < state.queues.count else {
        return  // reset since: the driver no longer owns this request
      }
      var length = written
      if let status, let byte = try? context.memory.slice(at: status.address, count: 1) {
        byte[0] = status.value
        length += 1
      }
      do {
        try state.queues[context.queue].addUsed(memory: context.memory, head: head, length: length)
        if try state.queues[context.queue].needsNotification(memory: context.memory) {
          state.signalPending = true
        }
      } catch {
        state.broken = true
        failure = state.interrupt
      }
    }
    failure?.needsReset()
  }

  /// At the end of each I/O-thread batch: one interrupt for all the completions, then a look at
  /// the rings of the queues whose requests completed.
  private func signalIfPending() {
    let (interrupt, revisit) = state.withLock { state -> (VirtioInterrupt?, Set<Int>) in
      defer {
        state.signalPending = false
        state.revisit = []
      }
      return (state.signalPending ? state.interrupt : nil, state.revisit)
    }
    interrupt?.usedBuffers()
    for queue in revisit.sorted() { drain(queue: queue) }
  }
}
