import CLibAIO
import Platform
import Synchronization

/// Why the I/O thread could not be set up.
public enum AsyncIOError: Error, Equatable, CustomStringConvertible {
  case eventfd(errno: Errno)
  case thread(status: Int32)

  public var description: String {
    switch self {
    case .eventfd(let errno): return "cannot create an eventfd for the I/O thread: \(errno)"
    case .thread(let status): return "cannot start a thread: \(Errno(rawValue: status))"
    }
  }
}

/// One file operation for the I/O thread. Buffers are host memory (guest RAM or bounce buffers)
/// that must stay valid until the completion runs.
public enum IOOperation {
  case read(fd: FileDescriptor, iovecs: [iovec], offset: Int64)
  case write(fd: FileDescriptor, iovecs: [iovec], offset: Int64)
  /// `fdatasync(2)`, run on the I/O thread.
  case fdatasync(fd: FileDescriptor)
  /// `fallocate(2)` with `mode` (punch hole / zero range), run on the I/O thread.
  case fallocate(fd: FileDescriptor, mode: Int32, offset: Int64, length: Int64)
}

/// The result of an ``IOOperation``: bytes transferred (0 for sync and fallocate) or `-errno`.
public typealias IOCompletion = (_ result: Int) -> Void

extension IOOperation {
  /// Runs the operation with plain system calls on the calling thread.
  func runSynchronously() -> Int {
    func check(_ result: Int) -> Int { result < 0 ? -Int(errno) : result }
    switch self {
    case .read(let fd, let iovecs, let offset):
      return check(retryingOnInterrupt { preadv(fd.rawValue, iovecs, Int32(iovecs.count), Int(offset)) })
    case .write(let fd, let iovecs, let offset):
      return check(retryingOnInterrupt { pwritev(fd.rawValue, iovecs, Int32(iovecs.count), Int(offset)) })
    case .fdatasync(let fd):
      do {
        try fd.syncData()
        return 0
      } catch {
        return -Int(error.rawValue)
      }
    case .fallocate(let fd, let mode, let offset, let length):
      return check(Int(retryingOnInterrupt { clibaio_fallocate(fd.rawValue, mode, offset, length) }))
    }
  }
}

/// The dedicated I/O thread: runs work handed over by vCPU threads (queue kicks), submits reads
/// and writes through libaio, and runs each completion on this thread, so that no vCPU ever waits
/// for the disk.
///
/// Each operation in the kernel holds one of `maxEvents - 1` reusable slots (the last is the
/// thread's own wake-up, an IOCB_CMD_POLL on an eventfd); more wait in order until slots free up.
/// Completions are read from the kernel's ring without a system call where the ring allows it, and
/// the thread sleeps in one `io_getevents` for both new work and finished I/O.
///
/// File descriptors (sockets, tap devices, eventfds) are watched on the same thread:
/// ``watch(_:events:handler:)`` arms an IOCB_CMD_POLL for each, so readiness completes like I/O
/// and the thread still sleeps in one `io_getevents`.
///
/// When `io_setup` fails (ENOSYS under qemu-user, or a host with AIO disabled) it falls back to
/// synchronous `preadv`/`pwritev` on this same thread, and to poll(2) for the watched descriptors,
/// and says so through ``fallbackReason``.
public final class IOLoop: @unchecked Sendable {
  /// A watched file descriptor (``watch(_:events:handler:)``), to end the watch with ``unwatch(_:)``.
  public struct Watch: Hashable, Sendable {
    let id: UInt
  }

  /// One watched descriptor, owned by the loop thread; its poll iocb lives as long as it does.
  private final class Watched {
    let fd: Int32
    let events: Int16
    let handler: @Sendable (Int16) -> Void
    let poll = UnsafeMutablePointer<iocb>.allocate(capacity: 1)
    /// Its IOCB_CMD_POLL is in the kernel.
    var armed = false
    /// Unwatched while armed: dropped when the cancelled poll's event arrives.
    var removed = false

    init(fd: Int32, events: Int16, handler: @escaping @Sendable (Int16) -> Void) {
      self.fd = fd
      self.events = events
      self.handler = handler
      poll.initialize(to: iocb())
    }

    deinit { poll.deallocate() }
  }

  private struct Shared {
    var work: [@Sendable () -> Void] = []
    var batchHandlers: [@Sendable () -> Void] = []
    var stopping = false
  }

  /// An operation that has no kernel slot yet.
  private struct Waiting {
    let operation: IOOperation
    let completion: IOCompletion
  }

  private let shared = Mutex(Shared())
  /// Set by ``schedule(_:)`` before it signals, so the loop sees new work without taking the lock,
  /// and sees it even when a wake-up was consumed while it was busy.
  private let workPending = Atomic<Bool>(false)
  /// How long the thread polls for new work and completions before it sleeps (QEMU's iothread
  /// `poll-max-ns` idea). Saves context switches when cores are free; off by default because on an
  /// oversubscribed host the spinning costs more than it saves.
  public let pollNanoseconds: UInt64
  private let wakeFD: Int32
  private let completionFD: Int32
  private let context: io_context_t?
  private let maxEvents: Int
  /// Why kernel AIO is not used (nil when it is).
  public let fallbackReason: String?

  // Owned by the loop thread. Operations in the kernel occupy slots: an iocb, its iovecs and its
  // completion, allocated once and reused, so a request costs no allocation here.
  private let slotCount: Int
  private let iocbs: UnsafeMutablePointer<iocb>
  private let submitList: UnsafeMutablePointer<UnsafeMutablePointer<iocb>?>
  private var slotIovecs: [UnsafeMutablePointer<iovec>?]
  private var slotIovecCapacity: [Int]
  private var slotCompletions: [IOCompletion?]
  private var freeSlots: [Int]
  private var inFlight = 0
  /// Operations waiting for a slot, oldest first from `waitingStart`.
  private var waiting: [Waiting] = []
  private var waitingStart = 0
  /// io_submit said EAGAIN: wait for a completion before trying again.
  private var kernelFull = false
  /// Completions of operations that ran synchronously, to run in order with the others.
  private var finished: [(IOCompletion, Int)] = []
  private let events: UnsafeMutablePointer<io_event>
  /// The kernel's completion ring can be read directly (no io_getevents call per batch).
  private let ringUsable: Bool
  private var thread: pthread_t?
  private let name: String
  /// An IOCB_CMD_POLL on the wake eventfd: new work then completes like I/O, so the thread sleeps
  /// in one io_getevents instead of poll + read + io_getevents. Unused where the kernel lacks it.
  private let wakePoll = UnsafeMutablePointer<iocb>.allocate(capacity: 1)
  private var wakePollUsable = false
  private var wakePollArmed = false
  nonisolated(unsafe) private static let wakePollTag = UnsafeMutableRawPointer(bitPattern: UInt.max)!
  /// The watched descriptors by id (loop thread). A watch's poll event carries UInt.max - id, above
  /// every slot's tag (slot + 1) and below the wake poll's.
  private var watched: [UInt: Watched] = [:]
  private var armedWatches = 0
  private let nextWatchID = Atomic<UInt>(1)
  private static let watchTagFloor = UInt.max - UInt(UInt32.max)
  /// Room in the AIO context for watch polls beyond the operation slots; more watches wait for room.
  static let watchCapacity = 64

  /// Creates the loop (the thread starts with ``start()``). `maxEvents` bounds the operations in
  /// flight in the kernel (one slot is the loop's own wake-up); more wait in the loop until some
  /// complete.
  public init(
    name: String = "io", maxEvents: Int = 256, forceSynchronous: Bool = false, pollNanoseconds: UInt64 = 0
  ) throws(AsyncIOError) {
    self.name = name
    self.pollNanoseconds = pollNanoseconds
    self.maxEvents = max(2, maxEvents)
    do {
      wakeFD = try makeEventFD()
    } catch {
      throw .eventfd(errno: error)
    }
    do {
      completionFD = try makeEventFD()
    } catch {
      close(wakeFD)
      throw .eventfd(errno: error)
    }
    slotCount = self.maxEvents - 1
    iocbs = .allocate(capacity: slotCount)
    iocbs.initialize(repeating: iocb(), count: slotCount)
    submitList = .allocate(capacity: slotCount)
    slotIovecs = Array(repeating: nil, count: slotCount)
    slotIovecCapacity = Array(repeating: 0, count: slotCount)
    slotCompletions = Array(repeating: nil, count: slotCount)
    freeSlots = Array((0..<slotCount).reversed())
    events = .allocate(capacity: self.maxEvents)
    var ctx: io_context_t?
    if forceSynchronous {
      fallbackReason = "synchronous I/O requested"
    } else {
      let status = io_setup(Int32(self.maxEvents + Self.watchCapacity), &ctx)
      fallbackReason = status == 0
        ? nil : "io_setup failed (\(Errno(rawValue: -status))); using synchronous pread/pwrite on the I/O thread"
    }
    context = ctx
    ringUsable = ctx.map { clibaio_ring_usable($0) != 0 } ?? false
  }

  deinit {
    stop()
    if let context { io_destroy(context) }  // also cancels the wake poll
    wakePoll.deallocate()
    close(wakeFD)
    close(completionFD)
    events.deallocate()
    iocbs.deallocate()
    submitList.deallocate()
    for iovecs in slotIovecs { iovecs?.deallocate() }
  }

  /// Whether reads and writes go through kernel AIO.
  public var usesKernelAIO: Bool { context != nil }

  /// Starts the thread.
  public func start() throws(AsyncIOError) {
    guard thread == nil else { return }
    let handle = try startThread { [self] in run() }
    thread = handle
  }

  /// Runs `work` on the I/O thread soon. Callable from any thread.
  public func schedule(_ work: @escaping @Sendable () -> Void) {
    let wake = shared.withLock { shared -> Bool in
      shared.work.append(work)
      return shared.work.count == 1
    }
    workPending.store(true, ordering: .releasing)
    if wake { signalEventFD(wakeFD) }
  }

  /// Adds `handler`, run on the I/O thread after each batch of work and completions (a device
  /// raises one interrupt per batch there instead of one per request). Dropped by ``stop()``.
  public func addBatchHandler(_ handler: @escaping @Sendable () -> Void) {
    shared.withLock { $0.batchHandlers.append(handler) }
  }

  /// Calls `handler` with the poll(2) events that occurred (`revents`) on the I/O thread whenever
  /// `fd` is ready for `events` (POLLIN, POLLOUT), until ``unwatch(_:)``. Level-triggered: while
  /// the descriptor stays ready the handler is called again, so it should read or write until it
  /// would block. Callable from any thread; the caller keeps `fd` open until the watch has ended.
  @discardableResult
  public func watch(_ fd: Int32, events: Int16 = Int16(POLLIN), handler: @escaping @Sendable (Int16) -> Void) -> Watch {
    let id = nextWatchID.wrappingAdd(1, ordering: .relaxed).oldValue
    schedule { [self] in watched[id] = Watched(fd: fd, events: events, handler: handler) }
    return Watch(id: id)
  }

  /// Ends a watch: its handler is not called after the loop has taken this in (on the I/O thread,
  /// from the next batch on). Callable from any thread.
  public func unwatch(_ watch: Watch) {
    schedule { [self] in
      guard let entry = watched[watch.id] else { return }
      guard entry.armed, let context else { return watched[watch.id] = nil }
      // The cancelled poll still completes through the ring: keep its iocb until then.
      entry.removed = true
      var result = io_event()
      _ = io_cancel(context, entry.poll, &result)
    }
  }

  /// Finishes the queued work and every operation in flight, then ends the thread. Idempotent.
  public func stop() {
    guard let thread else { return }
    shared.withLock { $0.stopping = true }
    // As schedule does: a wake-up the loop consumes while reaping must not be slept through.
    workPending.store(true, ordering: .releasing)
    signalEventFD(wakeFD)
    pthread_join(thread, nil)
    self.thread = nil
    shared.withLock { $0.batchHandlers.removeAll() }  // they may hold their devices
  }

  /// Queues `operation`; it is submitted when the current piece of work returns, and `completion`
  /// runs on the I/O thread. Call only on the I/O thread (from scheduled work or a completion).
  public func submit(_ operation: IOOperation, completion: @escaping IOCompletion) {
    switch operation {
    case .read, .write:
      if context != nil {
        waiting.append(Waiting(operation: operation, completion: completion))
        return
      }
    case .fdatasync, .fallocate:
      break
    }
    finished.append((completion, operation.runSynchronously()))
  }

  private func drain(_ fd: Int32) {
    _ = readEventFD(fd)
  }

  private var waitingCount: Int { waiting.count - waitingStart }

  private func run() {
    wakePollUsable = armWakePoll()
    while true {
      workPending.store(false, ordering: .relaxed)
      let (work, handlers, stopping) = shared.withLock { shared -> ([@Sendable () -> Void], [@Sendable () -> Void], Bool) in
        defer { shared.work.removeAll(keepingCapacity: true) }
        return (shared.work, shared.batchHandlers, shared.stopping)
      }
      for item in work { item() }
      submitWaiting()
      armWatches()
      let completed = reap()
      for handler in handlers { handler() }
      // Completions free slots and may queue more I/O; work may have arrived meanwhile.
      if !work.isEmpty || completed || !finished.isEmpty { continue }
      if waitingCount > 0 && !freeSlots.isEmpty && !kernelFull { continue }
      if stopping && inFlight == 0 && waitingCount == 0 { return }
      if !stopping && pollForActivity() { continue }
      // A wake-up consumed while reaping (the wake poll completes like I/O) must not be slept through.
      if workPending.load(ordering: .acquiring) { continue }
      sleep()
    }
  }

  /// Blocks until new work or a completion arrives.
  private func sleep() {
    if wakePollUsable, let context {
      if armWakePoll() {
        let count = io_getevents(context, 1, maxEvents, events, nil)
        if count > 0 { handle(events: Int(count)) }
      } else {
        // The poll could not be queued (the context is full, which the slot count rules out):
        // look for new work again soon rather than sleep through it.
        var shortly = timespec(tv_sec: 0, tv_nsec: 1_000_000)
        let count = io_getevents(context, 1, maxEvents, events, &shortly)
        if count > 0 { handle(events: Int(count)) }
      }
      return
    }
    // poll(2) for the wake-up, completions and the watched descriptors.
    let watches = Array(watched.values)
    var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0), pollfd(fd: completionFD, events: Int16(POLLIN), revents: 0)]
    fds += watches.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
    let ready = poll(&fds, nfds_t(fds.count), -1)
    guard ready > 0 else { return }
    if fds[0].revents != 0 { drain(wakeFD) }
    if fds[1].revents != 0 { drain(completionFD) }
    for (index, watch) in watches.enumerated() where fds[index + 2].revents != 0 {
      watch.handler(fds[index + 2].revents)
    }
  }

  /// Submits an IOCB_CMD_POLL for each watched descriptor that has none in the kernel (only where
  /// the wake-up is one too; otherwise ``sleep()`` polls them).
  private func armWatches() {
    guard wakePollUsable, let context else { return }
    for (id, watch) in watched where !watch.armed && !watch.removed {
      io_prep_poll(watch.poll, watch.fd, Int32(watch.events))
      watch.poll.pointee.data = UnsafeMutableRawPointer(bitPattern: UInt.max - id)
      var pointer: UnsafeMutablePointer<iocb>? = watch.poll
      guard io_submit(context, 1, &pointer) == 1 else { continue }  // tried again next round
      watch.armed = true
      armedWatches += 1
    }
  }

  /// Submits the wake poll if it is not pending; false if the kernel refuses it.
  private func armWakePoll() -> Bool {
    guard let context else { return false }
    if wakePollArmed { return true }
    io_prep_poll(wakePoll, wakeFD, Int32(POLLIN))
    wakePoll.pointee.data = Self.wakePollTag
    var pointer: UnsafeMutablePointer<iocb>? = wakePoll
    guard io_submit(context, 1, &pointer) == 1 else { return false }
    wakePollArmed = true
    return true
  }

  /// Spins up to ``pollNanoseconds`` for new work or finished I/O; true if some arrived.
  private func pollForActivity() -> Bool {
    guard pollNanoseconds > 0 else { return false }
    let start = monotonicNanoseconds()
    repeat {
      if workPending.load(ordering: .acquiring) || completionsReady() { return true }
    } while monotonicNanoseconds() &- start < pollNanoseconds
    return false
  }

  /// Whether the kernel's completion ring has events, read without a system call.
  private func completionsReady() -> Bool {
    guard let context, ringUsable, inFlight > 0 else { return false }
    return clibaio_ring_has_events(context) != 0
  }

  private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
  }

  /// Gives waiting operations free slots and submits them in one io_submit.
  private func submitWaiting() {
    guard let context else { return }
    while waitingCount > 0, !freeSlots.isEmpty, !kernelFull {
      let count = min(waitingCount, freeSlots.count)
      for index in 0..<count {
        let slot = freeSlots[freeSlots.count - 1 - index]
        prepare(slot, waiting[waitingStart + index].operation)
        submitList[index] = iocbs + slot
      }
      let status = Int(io_submit(context, count, submitList))
      let accepted = max(0, status)
      for index in 0..<accepted {
        let slot = freeSlots.removeLast()
        slotCompletions[slot] = waiting[waitingStart + index].completion
      }
      inFlight += accepted
      waitingStart += accepted
      if status == -Int(EAGAIN) || (status >= 0 && accepted < count) {
        if inFlight > 0 {
          kernelFull = true  // try again after a completion
        } else {
          // Refused with nothing in flight: no completion will come to retry after.
          let first = waiting[waitingStart]
          waitingStart += 1
          finished.append((first.completion, first.operation.runSynchronously()))
        }
      } else if status < 0 {
        // The first operation was refused outright (a bad fd, say): fail it, go on with the rest.
        let first = waiting[waitingStart]
        waitingStart += 1
        finished.append((first.completion, status))
      }
    }
    if waitingStart == waiting.count {
      waiting.removeAll(keepingCapacity: true)
      waitingStart = 0
    } else if waitingStart > 1024 && waitingStart * 2 > waiting.count {
      waiting.removeFirst(waitingStart)
      waitingStart = 0
    }
  }

  /// Fills slot `slot`'s iocb (and its iovecs) for `operation`, a read or a write.
  private func prepare(_ slot: Int, _ operation: IOOperation) {
    let iocb = iocbs + slot
    let fd: FileDescriptor, list: [iovec], offset: Int64, isRead: Bool
    switch operation {
    case .read(let f, let v, let o): (fd, list, offset, isRead) = (f, v, o, true)
    case .write(let f, let v, let o): (fd, list, offset, isRead) = (f, v, o, false)
    default: preconditionFailure("only reads and writes go to the kernel")
    }
    if slotIovecCapacity[slot] < list.count {
      slotIovecs[slot]?.deallocate()
      let capacity = max(list.count, 8)
      slotIovecs[slot] = .allocate(capacity: capacity)
      slotIovecCapacity[slot] = capacity
    }
    let iovecs = slotIovecs[slot]!
    list.withUnsafeBufferPointer { iovecs.update(from: $0.baseAddress!, count: $0.count) }
    if isRead {
      io_prep_preadv(iocb, fd.rawValue, iovecs, Int32(list.count), offset)
    } else {
      io_prep_pwritev(iocb, fd.rawValue, iovecs, Int32(list.count), offset)
    }
    if !wakePollUsable { io_set_eventfd(iocb, completionFD) }
    iocb.pointee.data = UnsafeMutableRawPointer(bitPattern: UInt(slot + 1))
  }

  /// Runs the completions of everything finished so far; true if there were any.
  private func reap() -> Bool {
    var any = false
    while !finished.isEmpty {
      any = true
      let done = finished
      finished.removeAll(keepingCapacity: true)
      for (completion, result) in done { completion(result) }
    }
    guard let context else { return any }
    var zero = timespec(tv_sec: 0, tv_nsec: 0)
    while inFlight > 0 || wakePollArmed || armedWatches > 0 {
      let count = ringUsable
        ? Int(clibaio_ring_reap(context, events, Int32(maxEvents)))
        : (inFlight > 0 || armedWatches > 0 ? Int(io_getevents(context, 0, maxEvents, events, &zero)) : 0)
      guard count > 0 else { break }
      any = handle(events: count) || any
    }
    return any
  }

  /// Runs the completions of the first `count` events (the wake poll's just clears the eventfd);
  /// true if any was an operation's.
  @discardableResult
  private func handle(events count: Int) -> Bool {
    var any = false
    for index in 0..<count {
      let event = events[index]
      if event.data == Self.wakePollTag {
        wakePollArmed = false
        drain(wakeFD)
        continue
      }
      let tag = UInt(bitPattern: event.data)
      if tag >= Self.watchTagFloor {
        let id = UInt.max - tag
        guard let watch = watched[id], watch.armed else { continue }
        watch.armed = false
        armedWatches -= 1
        if watch.removed {
          watched[id] = nil
        } else {
          // res is the poll's revents (or -errno, e.g. when the descriptor was closed).
          let result = Int(bitPattern: event.res)
          watch.handler(result < 0 ? Int16(POLLERR) : Int16(truncatingIfNeeded: result))
          any = true
        }
        continue
      }
      let slot = Int(bitPattern: UInt(bitPattern: event.data)) - 1
      guard slot >= 0, slot < slotCount, let completion = slotCompletions[slot] else { continue }
      slotCompletions[slot] = nil
      freeSlots.append(slot)
      inFlight -= 1
      kernelFull = false
      any = true
      // res is the byte count or -errno, as an unsigned long.
      completion(Int(bitPattern: event.res))
    }
    return any
  }
}
