/// A level-triggered interrupt line into the guest's interrupt controller.
public protocol InterruptLine: Sendable {
  /// Drives the line high (`true`) or low.
  func set(level: Bool)
}
