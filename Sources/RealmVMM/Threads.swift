#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private final class ThreadBody {
  let run: @Sendable () -> Void
  init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a POSIX thread (vCPUs need their `pthread_t` to be kicked out of `KVM_RUN` by a signal).
func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> pthread_t {
  let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
  var thread = pthread_t()
  let status = pthread_create(&thread, nil, { context in
    let body = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
    body.run()
    return nil
  }, context)
  precondition(status == 0, "pthread_create failed: \(status)")  // only on resource exhaustion
  return thread
}

/// The signal that kicks a vCPU thread out of `KVM_RUN`. Its handler does nothing: the point is
/// that the ioctl returns EINTR.
enum KickSignal {
  static let number = SIGUSR1

  static func install() {
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    sigemptyset(&action.sa_mask)
    action.sa_flags = 0  // no SA_RESTART: KVM_RUN must return
    sigaction(number, &action, nil)
  }
}
