import Platform
import Synchronization

/// Sector-aligned bounce buffers for O_DIRECT transfers whose guest buffers are not aligned, with a
/// fixed budget of host memory per disk.
///
/// The guest decides how many such requests it sends at once, so without a budget it decides how
/// much host memory realm-run allocates (16 requests once cost 563 MiB). A transfer that does not
/// fit waits, in arrival order, until earlier ones give their buffers back.
final class BounceBuffers: Sendable {
  /// A transfer waiting for its buffer.
  typealias Start = @Sendable (UnsafeMutableRawPointer) -> Void

  private struct State {
    var inUse = 0
    var highWater = 0
    var waiting: [(length: Int, start: Start)] = []
    var waitingHead = 0

    mutating func take(_ length: Int) {
      inUse += length
      highWater = max(highWater, inUse)
    }
  }

  /// The most bytes of bounce buffers held at once.
  let capacity: Int
  private let state = Mutex(State())

  init(capacity: Int) {
    self.capacity = capacity
  }

  /// The most bytes held at once so far (for tests and diagnostics).
  var highWater: Int { state.withLock { $0.highWater } }

  /// Calls `start` with a 4 KiB-aligned buffer of `length` bytes now, or once enough earlier
  /// buffers are released. Returns false, without calling `start`, for a length the budget can
  /// never hold.
  func acquire(_ length: Int, start: @escaping Start) -> Bool {
    guard length > 0, length <= capacity else { return false }
    let fits = state.withLock { state -> Bool in
      guard state.waitingHead == state.waiting.count, state.inUse + length <= capacity else {
        state.waiting.append((length, start))
        return false
      }
      state.take(length)
      return true
    }
    if fits { start(Self.allocate(length)) }
    return true
  }

  /// Gives back a buffer from ``acquire(_:start:)`` and starts the waiting transfers that now fit.
  func release(_ buffer: UnsafeMutableRawPointer, length: Int) {
    free(buffer)
    let ready = state.withLock { state -> [(length: Int, start: Start)] in
      state.inUse -= length
      var ready: [(length: Int, start: Start)] = []
      while state.waitingHead < state.waiting.count, state.inUse + state.waiting[state.waitingHead].length <= capacity {
        let next = state.waiting[state.waitingHead]
        state.waitingHead += 1
        state.take(next.length)
        ready.append(next)
      }
      if state.waitingHead == state.waiting.count {
        state.waiting.removeAll(keepingCapacity: true)
        state.waitingHead = 0
      }
      return ready
    }
    for transfer in ready { transfer.start(Self.allocate(transfer.length)) }
  }

  private static func allocate(_ length: Int) -> UnsafeMutableRawPointer {
    var raw: UnsafeMutableRawPointer?
    // Within the budget, a failure here is the host running out of memory, not the guest's doing.
    precondition(posix_memalign(&raw, 4096, length) == 0 && raw != nil, "out of memory for a \(length)-byte bounce buffer")
    return raw!
  }
}
