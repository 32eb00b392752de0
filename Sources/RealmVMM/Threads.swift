import AsyncIO
import Platform

/// ``AsyncIO/startThread(_:)`` where a thread that cannot start is the host running out of
/// resources, not something realm-run can report and go on from.
func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
  do {
    return try AsyncIO.startThread(body)
  } catch {
    preconditionFailure("\(error)")
  }
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
