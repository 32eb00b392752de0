import Platform

private final class ThreadBody {
  let run: @Sendable () -> Void
  init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Starts a POSIX thread running `body`. realm-run's threads are POSIX threads, not Dispatch's: a vCPU's `pthread_t` is
/// what a signal kicks out of `KVM_RUN`, and the I/O thread sleeps in the kernel.
/// Throws the `pthread_create` status.
public func startThread(_ body: @escaping @Sendable () -> Void) throws(AsyncIOError) -> pthread_t {
  let context = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
  var thread = pthread_t()
  let status = pthread_create(&thread, nil, { context in
    let body = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
    body.run()
    return nil
  }, context)
  guard status == 0 else {
    Unmanaged<ThreadBody>.fromOpaque(context).release()
    throw .thread(status: status)
  }
  return thread
}
