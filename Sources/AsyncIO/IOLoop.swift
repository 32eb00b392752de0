import CLibAIO
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the I/O thread could not be set up.
public enum AsyncIOError: Error, Equatable, CustomStringConvertible {
  case eventfd(errno: Int32)
  case thread(status: Int32)

  public var description: String {
    switch self {
    case .eventfd(let errno): return "cannot create an eventfd for the I/O thread: \(String(cString: strerror(errno)))"
    case .thread(let status): return "cannot start the I/O thread: \(String(cString: strerror(status)))"
    }
  }
}

/// One file operation for the I/O thread. Buffers are host memory (guest RAM or bounce buffers)
/// that must stay valid until the completion runs.
public enum IOOperation {
  case read(fd: Int32, iovecs: [iovec], offset: Int64)
  case write(fd: Int32, iovecs: [iovec], offset: Int64)
  /// `fdatasync(2)`, run on the I/O thread.
  case fdatasync(fd: Int32)
  /// `fallocate(2)` with `mode` (punch hole / zero range), run on the I/O thread.
  case fallocate(fd: Int32, mode: Int32, offset: Int64, length: Int64)

  /// Bytes a read or write asks for.
  var byteCount: Int {
    switch self {
    case .read(_, let iovecs, _), .write(_, let iovecs, _): return iovecs.reduce(0) { $0 + $1.iov_len }
    case .fdatasync, .fallocate: return 0
    }
  }
}

/// The result of an ``IOOperation``: bytes transferred (0 for sync and fallocate) or `-errno`.
public typealias IOCompletion = (_ result: Int) -> Void

/// One submitted operation: its iocb and iovecs live here until the kernel is done with them.
final class PendingIO {
  let iocb = UnsafeMutablePointer<iocb>.allocate(capacity: 1)
  let iovecs: UnsafeMutablePointer<iovec>
  let iovecCount: Int
  let operation: IOOperation
  let completion: IOCompletion

  init(_ operation: IOOperation, completion: @escaping IOCompletion) {
    self.operation = operation
    self.completion = completion
    let list: [iovec]
    switch operation {
    case .read(_, let iovecs, _), .write(_, let iovecs, _): list = iovecs
    default: list = []
    }
    iovecCount = list.count
    iovecs = .allocate(capacity: max(1, list.count))
    if !list.isEmpty { iovecs.initialize(from: list, count: list.count) }
    iocb.initialize(to: CLibAIO.iocb())
  }

  deinit {
    iocb.deallocate()
    iovecs.deallocate()
  }

  /// Runs the operation with plain system calls on the calling thread.
  func runSynchronously() -> Int {
    func check(_ result: Int) -> Int { result < 0 ? -Int(errno) : result }
    switch operation {
    case .read(let fd, _, let offset):
      return check(preadv(fd, iovecs, Int32(iovecCount), Int(offset)))
    case .write(let fd, _, let offset):
      return check(pwritev(fd, iovecs, Int32(iovecCount), Int(offset)))
    case .fdatasync(let fd):
      return fdatasync(fd) == 0 ? 0 : -Int(errno)
    case .fallocate(let fd, let mode, let offset, let length):
      return clibaio_fallocate(fd, mode, offset, length) == 0 ? 0 : -Int(errno)
    }
  }
}

/// The dedicated I/O thread: runs work handed over by vCPU threads (queue kicks), submits reads
/// and writes through libaio with eventfd completion, and runs each completion on this thread, so
/// that no vCPU ever waits for the disk.
///
/// When `io_setup` fails (ENOSYS under qemu-user, or a host with AIO disabled) it falls back to
/// synchronous `preadv`/`pwritev` on this same thread and says so through ``fallbackReason``.
public final class IOLoop: @unchecked Sendable {
  private struct Shared {
    var work: [@Sendable () -> Void] = []
    var batchHandlers: [@Sendable () -> Void] = []
    var stopping = false
  }

  private let shared = Mutex(Shared())
  /// Set by ``schedule(_:)``, so the polling phase sees new work without taking the lock.
  private let workPending = Atomic<Bool>(false)
  /// How long the thread polls for new work and completions before it sleeps in `poll(2)` (QEMU's
  /// iothread `poll-max-ns` idea). Saves context switches when cores are free; off by default
  /// because on an oversubscribed host the spinning costs more than it saves.
  public let pollNanoseconds: UInt64
  private let wakeFD: Int32
  private let completionFD: Int32
  private var context: io_context_t?
  private let maxEvents: Int
  /// Why kernel AIO is not used (nil when it is).
  public let fallbackReason: String?

  // Owned by the loop thread.
  private var batch: [PendingIO] = []
  private var synchronousDone: [(PendingIO, Int)] = []
  private var inFlight = 0
  private var events: UnsafeMutablePointer<io_event>
  private var thread: pthread_t?
  private let name: String
  /// An IOCB_CMD_POLL on the wake eventfd: new work then completes like I/O, so the thread sleeps
  /// in one io_getevents instead of poll + read + io_getevents. Nil where the kernel lacks it.
  private let wakePoll = UnsafeMutablePointer<iocb>.allocate(capacity: 1)
  private var wakePollUsable = false
  private var wakePollArmed = false
  nonisolated(unsafe) private static let wakePollTag = UnsafeMutableRawPointer(bitPattern: 0x1)!

  /// Creates the loop (the thread starts with ``start()``). `maxEvents` bounds the operations in
  /// flight in the kernel; more wait in the loop until some complete.
  public init(
    name: String = "io", maxEvents: Int = 256, forceSynchronous: Bool = false, pollNanoseconds: UInt64 = 0
  ) throws(AsyncIOError) {
    self.name = name
    self.pollNanoseconds = pollNanoseconds
    self.maxEvents = maxEvents
    wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    guard wakeFD >= 0 else { throw .eventfd(errno: errno) }
    completionFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
    guard completionFD >= 0 else {
      let error = errno
      close(wakeFD)
      throw .eventfd(errno: error)
    }
    events = .allocate(capacity: maxEvents)
    if forceSynchronous {
      fallbackReason = "synchronous I/O requested"
    } else {
      var ctx: io_context_t?
      let status = io_setup(Int32(maxEvents), &ctx)
      if status == 0 {
        context = ctx
        fallbackReason = nil
      } else {
        fallbackReason = "io_setup failed (\(String(cString: strerror(-status)))); using synchronous pread/pwrite on the I/O thread"
      }
    }
  }

  deinit {
    stop()
    if let context { io_destroy(context) }  // also cancels the wake poll
    wakePoll.deallocate()
    close(wakeFD)
    close(completionFD)
    events.deallocate()
  }

  /// Whether reads and writes go through kernel AIO.
  public var usesKernelAIO: Bool { context != nil }

  /// Starts the thread.
  public func start() throws(AsyncIOError) {
    guard thread == nil else { return }
    let box = Unmanaged.passRetained(self).toOpaque()
    var handle = pthread_t()
    let status = pthread_create(&handle, nil, { context in
      let loop = Unmanaged<IOLoop>.fromOpaque(context!).takeRetainedValue()
      loop.run()
      return nil
    }, box)
    guard status == 0 else {
      Unmanaged<IOLoop>.fromOpaque(box).release()
      throw .thread(status: status)
    }
    thread = handle
  }

  /// Runs `work` on the I/O thread soon. Callable from any thread.
  public func schedule(_ work: @escaping @Sendable () -> Void) {
    let wake = shared.withLock { shared -> Bool in
      shared.work.append(work)
      return shared.work.count == 1
    }
    workPending.store(true, ordering: .releasing)
    if wake { signal(wakeFD) }
  }

  /// Adds `handler`, run on the I/O thread after each batch of work and completions (a device
  /// raises one interrupt per batch there instead of one per request). Dropped by ``stop()``.
  public func addBatchHandler(_ handler: @escaping @Sendable () -> Void) {
    shared.withLock { $0.batchHandlers.append(handler) }
  }

  /// Finishes the queued work and every operation in flight, then ends the thread. Idempotent.
  public func stop() {
    guard let thread else { return }
    shared.withLock { $0.stopping = true }
    signal(wakeFD)
    pthread_join(thread, nil)
    self.thread = nil
    shared.withLock { $0.batchHandlers.removeAll() }  // they may hold their devices
  }

  /// Queues `operation`; it is submitted when the current piece of work returns, and `completion`
  /// runs on the I/O thread. Call only on the I/O thread (from scheduled work or a completion).
  public func submit(_ operation: IOOperation, completion: @escaping IOCompletion) {
    let pending = PendingIO(operation, completion: completion)
    switch operation {
    case .read, .write:
      if context != nil {
        batch.append(pending)
      } else {
        synchronousDone.append((pending, pending.runSynchronously()))
      }
    case .fdatasync, .fallocate:
      synchronousDone.append((pending, pending.runSynchronously()))
    }
  }

  private func signal(_ fd: Int32) {
    var one: UInt64 = 1
    _ = write(fd, &one, 8)
  }

  private func drain(_ fd: Int32) {
    var value: UInt64 = 0
    _ = read(fd, &value, 8)
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

  private func run() {
    var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
               pollfd(fd: completionFD, events: Int16(POLLIN), revents: 0)]
    var backlog: [PendingIO] = []
    wakePollUsable = armWakePoll()
    while true {
      workPending.store(false, ordering: .relaxed)
      let (work, handlers, stopping) = shared.withLock { shared -> ([@Sendable () -> Void], [@Sendable () -> Void], Bool) in
        defer { shared.work.removeAll(keepingCapacity: true) }
        return (shared.work, shared.batchHandlers, shared.stopping)
      }
      for item in work { item() }
      backlog.append(contentsOf: batch)
      batch.removeAll(keepingCapacity: true)
      flush(&backlog)
      reap()
      for handler in handlers { handler() }
      if !batch.isEmpty || !synchronousDone.isEmpty { continue }
      if stopping && work.isEmpty && inFlight == 0 && backlog.isEmpty { return }
      if !work.isEmpty { continue }
      if !stopping && pollForActivity() { continue }
      if wakePollUsable, let context, armWakePoll() {
        let count = io_getevents(context, 1, maxEvents, events, nil)
        if count > 0 { handle(events: Int(count)) }
        continue
      }
      fds[0].revents = 0
      fds[1].revents = 0
      let ready = poll(&fds, 2, -1)
      if ready > 0 {
        if fds[0].revents != 0 { drain(wakeFD) }
        if fds[1].revents != 0 { drain(completionFD) }
      }
    }
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

  /// Whether the kernel's completion ring (mapped at the context address: id, nr, head, tail) has
  /// events, read without a system call.
  private func completionsReady() -> Bool {
    guard let context, inFlight > 0 else { return false }
    let ring = UnsafeRawPointer(context)
    let head = ring.load(fromByteOffset: 8, as: UInt32.self)
    let tail = ring.load(fromByteOffset: 12, as: UInt32.self)
    return head != tail
  }

  private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
  }

  /// Submits as much of `backlog` as the context takes; the rest waits for completions.
  private func flush(_ backlog: inout [PendingIO]) {
    guard let context, !backlog.isEmpty else { return }
    var submitted = 0
    let limit = maxEvents - 1  // one slot for the wake poll
    while submitted < backlog.count && inFlight < limit {
      let count = min(backlog.count - submitted, limit - inFlight)
      var pointers: [UnsafeMutablePointer<iocb>?] = []
      pointers.reserveCapacity(count)
      for pending in backlog[submitted..<submitted + count] {
        switch pending.operation {
        case .read(let fd, _, let offset):
          io_prep_preadv(pending.iocb, fd, pending.iovecs, Int32(pending.iovecCount), offset)
        case .write(let fd, _, let offset):
          io_prep_pwritev(pending.iocb, fd, pending.iovecs, Int32(pending.iovecCount), offset)
        default:
          break
        }
        if !wakePollUsable { io_set_eventfd(pending.iocb, completionFD) }
        pending.iocb.pointee.data = Unmanaged.passRetained(pending).toOpaque()
        pointers.append(pending.iocb)
      }
      let status = pointers.withUnsafeMutableBufferPointer { io_submit(context, count, $0.baseAddress) }
      let accepted = max(0, Int(status))
      for pending in backlog[(submitted + accepted)..<(submitted + count)] {
        // Not taken by the kernel: release the reference handed to it.
        Unmanaged<PendingIO>.fromOpaque(pending.iocb.pointee.data).release()
      }
      inFlight += accepted
      if status < 0 && status != -EAGAIN {
        // The first operation was refused outright: fail it, keep the rest.
        let failed = backlog[submitted]
        synchronousDone.append((failed, Int(status)))
        submitted += 1
        continue
      }
      submitted += accepted
      if accepted < count { break }
    }
    backlog.removeFirst(submitted)
  }

  /// Runs the completions of everything finished so far.
  private func reap() {
    while !synchronousDone.isEmpty {
      let done = synchronousDone
      synchronousDone.removeAll(keepingCapacity: true)
      for (pending, result) in done { pending.completion(result) }
    }
    guard let context, inFlight > 0 else { return }
    var zero = timespec(tv_sec: 0, tv_nsec: 0)
    while inFlight > 0 {
      let count = io_getevents(context, 0, maxEvents, events, &zero)
      guard count > 0 else { return }
      handle(events: Int(count))
    }
  }

  /// Runs the completions of the first `count` events (the wake poll's just clears the eventfd).
  private func handle(events count: Int) {
    for index in 0..<count {
      let event = events[index]
      if event.data == Self.wakePollTag {
        wakePollArmed = false
        drain(wakeFD)
        continue
      }
      inFlight -= 1
      let pending = Unmanaged<PendingIO>.fromOpaque(event.data).takeRetainedValue()
      // res is the byte count or -errno, as an unsigned long.
      pending.completion(Int(bitPattern: event.res))
    }
  }
}
