import Platform

/// How long each step of building a machine took, for `--log-level debug`: where a launch's time
/// goes before the guest runs its first instruction.
struct StartupSteps {
  private var last = StartupSteps.now()
  private var steps: [(name: String, nanoseconds: UInt64)] = []

  /// Ends the step called `name` (the time since the previous one ended, or since creation).
  mutating func finished(_ name: String) {
    let now = Self.now()
    steps.append((name, now - last))
    last = now
  }

  /// The steps in order, e.g. `kvm 2 ms, images 31 ms, …`.
  var summary: String {
    steps.map { "\($0.name) \(Self.milliseconds($0.nanoseconds)) ms" }.joined(separator: ", ")
  }

  /// Milliseconds since this process was started (its exec), from `/proc/self/stat`'s start time
  /// (in clock ticks, 10 ms here) against CLOCK_BOOTTIME; nil where /proc cannot tell.
  static func sinceProcessStart() -> Int? {
    guard let stat = try? FileDescriptor.open("/proc/self/stat", O_RDONLY | O_CLOEXEC) else { return nil }
    defer { stat.close() }
    var buffer = [UInt8](repeating: 0, count: 1024)
    guard let count = try? buffer.withUnsafeMutableBytes({ try stat.read(into: $0) }), count > 0 else { return nil }
    // Field 22 (starttime) counts from the one after the command name's closing parenthesis.
    guard let close = buffer[..<count].lastIndex(of: UInt8(ascii: ")")) else { return nil }
    let fields = buffer[(close + 1)..<count].split(separator: UInt8(ascii: " "))
    guard fields.count > 19, let ticks = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
    let hz = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
    var boot = timespec()
    guard clock_gettime(CLOCK_BOOTTIME, &boot) == 0 else { return nil }
    let nowMilliseconds = UInt64(boot.tv_sec) * 1000 + UInt64(boot.tv_nsec) / 1_000_000
    let startMilliseconds = ticks * 1000 / hz
    return nowMilliseconds >= startMilliseconds ? Int(nowMilliseconds - startMilliseconds) : nil
  }

  private static func now() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
  }

  private static func milliseconds(_ nanoseconds: UInt64) -> String {
    let tenths = (nanoseconds + 50_000) / 100_000
    return "\(tenths / 10).\(tenths % 10)"
  }
}
