import AsyncIO
import CLibAIO
import FirmwareCore
import GuestMemory
import Platform
import Synchronization

/// virtio-blk (virtio 1.x, 5.2) over a ``BlockFile``: reads and writes go through libaio on the
/// ``IOLoop`` thread, so a vCPU's queue notification only schedules work and returns.
public final class VirtioBlock: VirtioDevice {
  public enum Feature {
    public static let sizeMax: UInt64 = 1 << 1
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
  /// Host memory for the bounce buffers of unaligned O_DIRECT requests, per disk: also the largest
  /// such request (Linux sends at most max_sectors, 1280 KiB by default).
  public static let bounceCapacity = 32 << 20

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
    var device = VirtioDeviceState()
    /// Per queue: requests of it completed since the last batch end, when the driver's wish for an
    /// interrupt is checked.
    var queueCompleted: [Bool] = []
  }

  private let state = Mutex(State())
  /// Requests submitted and not yet completed (across resets).
  private let inFlight = Atomic<Int>(0)
  private let bounceBuffers = BounceBuffers(capacity: VirtioBlock.bounceCapacity)

  /// - Parameters:
  ///   - queues: request queues (more than one offers VIRTIO_BLK_F_MQ).
  ///   - serial: the id GET_ID returns (at most 20 bytes are used).
  ///   - limits: the queue size and the segment limits advertised (a Realm's guest bounces every
  ///     request through a small pool: ``BlockRequestLimits/realm(memorySize:disks:queues:)``).
  public init(file: BlockFile, loop: IOLoop, queues: Int = 1, serial: String, limits: BlockRequestLimits = .unlimited) {
    let queueSize = limits.queueSize
    self.file = file
    self.loop = loop
    queueCount = max(1, queues)
    maxQueueSize = queueSize
    capacity = file.size / Self.sectorSize
    self.serial = Array(serial.utf8.prefix(Self.serialLength))
    var features = Feature.segMax | Feature.blockSize | Feature.flush
    if limits.maxSegmentSize != nil { features |= Feature.sizeMax }
    if queueCount > 1 { features |= Feature.multiQueue }
    if file.readOnly {
      features |= Feature.readOnly
    } else {
      features |= Feature.writeZeroes
      if file.canPunchHoles { features |= Feature.discard }
    }
    self.features = features

    var config = [UInt8](repeating: 0, count: Self.configSize)
    func put(_ offset: Int, _ value: UInt64, _ width: Int) { config.storeLE(value, at: offset, width: width) }
    put(0x00, capacity, 8)
    if let size = limits.maxSegmentSize { put(0x08, UInt64(size), 4) }  // size_max
    // seg_max: header and status take two descriptors
    put(0x0C, min(UInt64(max(queueSize, 3)) - 2, UInt64(limits.maxSegments ?? UInt32.max)), 4)
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
    loop.addBatchHandler { [self] in endBatch() }
  }

  /// Requests in flight (for tests and shutdown).
  public var requestsInFlight: Int { inFlight.load(ordering: .acquiring) }

  public var isQuiescent: Bool { requestsInFlight == 0 }

  /// The most bytes of bounce buffers held at once so far (at most ``bounceCapacity``).
  public var bounceHighWater: Int { bounceBuffers.highWater }

  public func readConfig(offset: Int, size: Int) -> UInt64 {
    config.unsignedInteger(at: offset, width: size) ?? 0
  }

  public func writeConfig(offset: Int, size: Int, value: UInt64) {}  // writeback toggling not offered

  public func activate(_ activation: VirtioActivation) {
    state.withLock { state in
      state.device.activate(activation)
      state.queueCompleted = Array(repeating: false, count: activation.queues.count)
    }
  }

  public func reset() {
    state.withLock { state in
      state.device.reset()
      state.queueCompleted = []
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

  /// Takes every available chain of `queue` and starts its request, then re-arms the driver's
  /// notification and looks once more (a chain added in between would otherwise wait for the next
  /// doorbell).
  ///
  /// Notifications stay armed while requests are in flight: a doorbell per driver batch costs less
  /// than leaving new requests unseen until the next completion (virtio-bench, 4 KiB writes at
  /// QD32: 0.82 of raw libaio with them suppressed, 0.90 without).
  func drain(queue: Int) {
    while true {
      var chains: [DescriptorChain] = []
      var failure: VirtioInterrupt?
      let context = state.withLock { state -> Context? in
        guard let memory = state.device.memory(forQueue: queue, ready: true) else { return nil }
        do {
          while let chain = try state.device.queues[queue].pop(memory: memory) { chains.append(chain) }
        } catch {
          failure = state.device.markBroken()
        }
        return Context(memory: memory, generation: state.device.generation, queue: queue, features: state.device.features)
      }
      if let failure { return failure.needsReset() }
      guard let context else { return }
      for chain in chains { start(chain, context) }
      // Ask for the next notification, and look again in case chains came meanwhile.
      let again = state.withLock { state -> Bool in
        guard state.device.isCurrent(context.generation, queue: queue) else { return false }
        do {
          return try state.device.queues[queue].enableNotification(memory: context.memory)
        } catch {
          failure = state.device.markBroken()
          return false
        }
      }
      if let failure { return failure.needsReset() }
      if !again { return }
    }
  }

  /// Where a request's answer goes: its chain, its status byte, the activation it belongs to.
  private struct Reply {
    let head: UInt16
    let status: UInt64
    let context: Context
  }

  private func start(_ chain: DescriptorChain, _ context: Context) {
    let memory = context.memory
    let request: BlockRequest
    do {
      request = try BlockRequest.parse(chain.descriptors) { address, buffer in
        (try? memory.read(at: address, into: buffer)) != nil
      }
    } catch {
      switch error {
      case .noStatus:
        return complete(chain.head, status: nil, written: 0, context)
      case .badHeader(let status), .badOrder(let status):
        return complete(chain.head, status: (status, BlockStatus.ioError), written: 0, context)
      }
    }
    let reply = Reply(head: chain.head, status: request.status, context: context)
    switch request.type {
    case .read, .write:
      let isRead = request.type == .read
      if !isRead && file.readOnly { return finish(reply, BlockStatus.ioError) }
      let segments = isRead ? request.writable : request.readable
      let length = segments.reduce(UInt64(0)) { $0 + UInt64($1.length) }
      // The used length is 32 bits: longer requests (possible only by repeating buffers) fail.
      guard length % Self.sectorSize == 0, length < UInt64(UInt32.max), request.sector <= capacity,
        length / Self.sectorSize <= capacity - request.sector,
        let iovecs = hostBuffers(segments, memory)
      else { return finish(reply, BlockStatus.ioError) }
      let offset = Int64(request.sector * Self.sectorSize)
      if length == 0 { return finish(reply, BlockStatus.ok) }
      let aligned = iovecs.allSatisfy { UInt(bitPattern: $0.iov_base) % 512 == 0 && $0.iov_len % 512 == 0 }
      if file.direct && !aligned {
        return startBounced(read: isRead, iovecs: iovecs, offset: offset, length: Int(length), reply)
      }
      // The one closure this request costs.
      submit(transfer(read: isRead, iovecs, at: offset), context) { [self] result in
        finishTransfer(reply, read: isRead, length: Int(length), result: result)
      }
    case .flush:
      submit(.fdatasync(fd: file.fd), context) { [self] result in
        finish(reply, result == 0 ? BlockStatus.ok : BlockStatus.ioError, endsIO: true)
      }
    case .getID:
      // The id, NUL-padded to 20 bytes, into the buffers before the status byte.
      let id = serial + [UInt8](repeating: 0, count: Self.serialLength - serial.count)
      let buffers = request.writable.map { VirtqDescriptor(address: $0.address, length: $0.length, isWritable: true) }
      var writer = DescriptorChainWriter(DescriptorChain(head: chain.head, descriptors: buffers), memory: memory)
      let written = writer.write(id.prefix(Int(min(request.writableLength, UInt64(id.count)))))
      guard written == min(Int(request.writableLength), id.count) else { return finish(reply, BlockStatus.ioError) }
      finish(reply, BlockStatus.ok, written: UInt32(written))
    case .discard, .writeZeroes:
      let isDiscard = request.type == .discard
      let feature = isDiscard ? Feature.discard : Feature.writeZeroes
      guard features & feature != 0, context.features & feature != 0 else { return finish(reply, BlockStatus.unsupported) }
      guard let range = readRange(request, memory) else { return finish(reply, BlockStatus.ioError) }
      let byteOffset = Int64(range.sector * Self.sectorSize)
      let byteLength = Int64(range.sectors) * Int64(Self.sectorSize)
      let punch = isDiscard || (range.unmap && file.canPunchHoles)
      let mode = punch ? clibaio_falloc_punch_hole | clibaio_falloc_keep_size : clibaio_falloc_zero_range | clibaio_falloc_keep_size
      submit(.fallocate(fd: file.fd, mode: mode, offset: byteOffset, length: byteLength), context) { [self] result in
        // ZERO_RANGE not supported here: write zeros.
        let ok = result == 0 || (!isDiscard && writeZeros(offset: byteOffset, length: byteLength))
        finish(reply, ok ? BlockStatus.ok : BlockStatus.ioError, endsIO: true)
      }
    case nil:
      finish(reply, BlockStatus.unsupported)
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

  /// The host memory behind `segments`, as the iovecs of one transfer; nil if any lies outside RAM.
  private func hostBuffers(_ segments: [GuestSegment], _ memory: GuestMemory) -> [iovec]? {
    var iovecs: [iovec] = []
    iovecs.reserveCapacity(segments.count)
    for segment in segments {
      guard let buffer = try? memory.slice(at: segment.address, count: Int(segment.length)) else { return nil }
      iovecs.append(iovec(iov_base: buffer.baseAddress, iov_len: buffer.count))
    }
    return iovecs
  }

  /// An O_DIRECT transfer whose guest buffers are not sector-aligned: through an aligned bounce
  /// buffer from the disk's bounded pool (it may wait there for earlier transfers to finish).
  private func startBounced(read: Bool, iovecs: [iovec], offset: Int64, length: Int, _ reply: Reply) {
    inFlight.add(1, ordering: .relaxed)  // while it waits too: shutdown waits for it
    // Guest RAM outlives the device's requests; the pointers are used on one thread at a time.
    nonisolated(unsafe) let iovecs = iovecs
    let accepted = bounceBuffers.acquire(length) { [self] bounce in
      if !read {
        var position = 0
        for iovec in iovecs where iovec.iov_len > 0 {
          (bounce + position).copyMemory(from: iovec.iov_base!, byteCount: iovec.iov_len)
          position += iovec.iov_len
        }
      }
      loop.submit(transfer(read: read, [iovec(iov_base: bounce, iov_len: length)], at: offset)) { [self] result in
        if read && result == length {
          var position = 0
          for iovec in iovecs where iovec.iov_len > 0 {
            iovec.iov_base!.copyMemory(from: bounce + position, byteCount: iovec.iov_len)
            position += iovec.iov_len
          }
        }
        bounceBuffers.release(bounce, length: length)
        finishTransfer(reply, read: read, length: length, result: result)
      }
    }
    if !accepted { finish(reply, BlockStatus.ioError, endsIO: true) }
  }

  /// A read or write of `iovecs` at `offset` in the disk file.
  private func transfer(read: Bool, _ iovecs: [iovec], at offset: Int64) -> IOOperation {
    read ? .read(fd: file.fd, iovecs: iovecs, offset: offset) : .write(fd: file.fd, iovecs: iovecs, offset: offset)
  }

  /// Answers a read or write of `length` bytes whose I/O returned `result`.
  private func finishTransfer(_ reply: Reply, read: Bool, length: Int, result: Int) {
    let ok = result == length
    finish(reply, ok ? BlockStatus.ok : BlockStatus.ioError, written: read && ok ? UInt32(length) : 0, endsIO: true)
  }

  /// Hands `operation` to the I/O loop, counting it in flight until its completion calls
  /// ``finish(_:_:written:endsIO:)`` with `endsIO`.
  private func submit(_ operation: IOOperation, _ context: Context, completion: @escaping IOCompletion) {
    inFlight.add(1, ordering: .relaxed)
    loop.submit(operation, completion: completion)
  }

  private func writeZeros(offset: Int64, length: Int64) -> Bool {
    let chunk = 1 << 20
    let zeros = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 4096)
    defer { zeros.deallocate() }
    memset(zeros, 0, chunk)
    var done: Int64 = 0
    while done < length {
      let count = Int(min(Int64(chunk), length - done))
      guard (try? file.fd.write(UnsafeRawBufferPointer(start: zeros, count: count), at: offset + done)) != nil else { return false }
      done += Int64(count)
    }
    return true
  }

  /// Answers a request with `status`; `endsIO` when it had an operation in flight.
  private func finish(_ reply: Reply, _ status: UInt8, written: UInt32 = 0, endsIO: Bool = false) {
    complete(reply.head, status: (reply.status, status), written: written, reply.context, endsIO: endsIO)
  }

  /// Writes the status and returns the chain. The driver's wish for an interrupt is checked once
  /// per batch, in ``endBatch()``.
  private func complete(
    _ head: UInt16, status: (address: UInt64, value: UInt8)?, written: UInt32, _ context: Context, endsIO: Bool = false
  ) {
    var failure: VirtioInterrupt?
    state.withLock { state in
      guard state.device.generation == context.generation, context.queue < state.device.queues.count else {
        return  // reset since: the driver no longer owns this request
      }
      state.queueCompleted[context.queue] = true
      guard !state.device.isBroken else { return }
      var length = written
      if let status, let byte = try? context.memory.slice(at: status.address, count: 1) {
        byte[0] = status.value
        length += 1
      }
      do {
        try state.device.queues[context.queue].addUsed(memory: context.memory, head: head, length: length)
      } catch {
        failure = state.device.markBroken()
      }
    }
    if endsIO { inFlight.subtract(1, ordering: .releasing) }
    failure?.needsReset()
  }

  /// At the end of each I/O-thread batch: one interrupt for everything completed, if the driver
  /// asked for one (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with event index).
  private func endBatch() {
    var failure: VirtioInterrupt?
    let interrupt = state.withLock { state -> VirtioInterrupt? in
      guard let memory = state.device.memory, !state.device.isBroken else { return nil }
      var notify = false
      for queue in state.queueCompleted.indices where state.queueCompleted[queue] {
        state.queueCompleted[queue] = false
        do {
          if try state.device.queues[queue].needsNotification(memory: memory) { notify = true }
        } catch {
          failure = state.device.markBroken()
          return nil
        }
      }
      return notify ? state.device.interrupt : nil
    }
    if let failure { return failure.needsReset() }
    interrupt?.usedBuffers()
  }
}
