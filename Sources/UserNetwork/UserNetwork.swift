import AsyncIO
import CSlirp
import Platform
import Synchronization

/// User-mode networking (`--net user`): a guest network behind NAT, run by libslirp on a thread of
/// its own, with no root and no host configuration. As QEMU's `-nic user` has it:
///
/// - the guest is on 10.0.2.0/24 and gets 10.0.2.15 by DHCP; 10.0.2.2 is the gateway and the
///   host's loopback, 10.0.2.3 a DNS forwarder to the host's resolvers; IPv6 on fec0::/64;
/// - the guest's connections leave as the host's own sockets;
/// - ``HostForward``s listen on the host and connect into the guest.
///
/// Frames cross a `SOCK_SEQPACKET` socket pair, one frame per record: the device end
/// (``deviceEnd``) goes to a virtio-net device as a tap would, the other end is the stack's. Only
/// the stack's thread touches the libslirp instance once ``start()`` has run.
public final class UserNetwork: @unchecked Sendable {
  /// A host port whose connections (or datagrams) go to a guest port, QEMU's
  /// `hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`.
  public struct HostForward: Sendable, Equatable {
    public var udp: Bool
    /// The host address to listen on (IPv4, network order bytes); nil: every address.
    public var hostAddress: [UInt8]?
    public var hostPort: UInt16
    /// The guest's address; nil: the first DHCP address (10.0.2.15).
    public var guestAddress: [UInt8]?
    public var guestPort: UInt16

    public init(udp: Bool = false, hostAddress: [UInt8]? = nil, hostPort: UInt16, guestAddress: [UInt8]? = nil, guestPort: UInt16) {
      self.udp = udp
      self.hostAddress = hostAddress
      self.hostPort = hostPort
      self.guestAddress = guestAddress
      self.guestPort = guestPort
    }

    /// Parses `[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT`; nil if it is not that.
    public init?(parsing text: String) {
      let sides = text.split(separator: "-", omittingEmptySubsequences: false)
      guard sides.count == 2 else { return nil }
      let host = sides[0].split(separator: ":", omittingEmptySubsequences: false)
      let guest = sides[1].split(separator: ":", omittingEmptySubsequences: false)
      guard host.count == 3, guest.count == 2 else { return nil }
      switch host[0] {
      case "", "tcp": udp = false
      case "udp": udp = true
      default: return nil
      }
      guard let hostPort = UInt16(host[2]), hostPort != 0, let guestPort = UInt16(guest[1]), guestPort != 0 else { return nil }
      self.hostPort = hostPort
      self.guestPort = guestPort
      if host[1].isEmpty {
        hostAddress = nil
      } else {
        guard let address = Self.parseIPv4(host[1]) else { return nil }
        hostAddress = address
      }
      if guest[0].isEmpty {
        guestAddress = nil
      } else {
        guard let address = Self.parseIPv4(guest[0]) else { return nil }
        guestAddress = address
      }
    }

    /// `a.b.c.d` as four bytes.
    static func parseIPv4<S: StringProtocol>(_ text: S) -> [UInt8]? {
      let parts = text.split(separator: ".", omittingEmptySubsequences: false)
      let bytes = parts.compactMap { $0.isEmpty || $0.count > 3 ? nil : UInt8($0) }
      return parts.count == 4 && bytes.count == 4 ? bytes : nil
    }
  }

  /// Why the network could not be set up.
  public enum SetupError: Error, CustomStringConvertible, Equatable {
    /// The socket pair, eventfd or thread could not be created.
    case resources(String)
    /// libslirp refused its configuration.
    case stack
    /// A host forward's port could not be bound (in use, or below 1024 without the right).
    case forward(HostForward)

    public var description: String {
      switch self {
      case .resources(let what): return "user networking: \(what)"
      case .stack: return "user networking: libslirp refused its configuration"
      case .forward(let forward):
        let address = forward.hostAddress.map { $0.map(String.init).joined(separator: ".") } ?? ""
        return "user networking: cannot listen on host \(forward.udp ? "udp" : "tcp") port \(address.isEmpty ? "" : address + ":")\(forward.hostPort) (in use, or not permitted)"
      }
    }
  }

  /// The guest's first DHCP address, which a forward without a guest address goes to.
  public static let guestAddress: [UInt8] = [10, 0, 2, 15]
  /// The largest frame either way: the MTU (1500) and an Ethernet header, with room to spare.
  static let maxFrameSize = 65_550
  /// The longest the stack's thread sleeps when nothing is due, in ms.
  static let maxSleep: UInt32 = 1000

  /// Where the device reads the stack's frames and writes the guest's (non-blocking).
  public let deviceEnd: FileDescriptor
  private let stackEnd: FileDescriptor
  /// Wakes the stack's thread to stop.
  private let wake: FileDescriptor
  private let log: @Sendable (String) -> Void
  private var slirp: OpaquePointer?
  private var thread: pthread_t?
  private let stopping = Atomic(false)
  private var closed = false

  // The stack's thread's state (after start(); before it, the initialising thread's).
  private var timers: [Timer] = []
  private var pollFDs: [pollfd] = []
  private var frame = [UInt8](repeating: 0, count: UserNetwork.maxFrameSize)

  /// A libslirp timer: a callback due at a time (ms on the monotonic clock), or not armed.
  private final class Timer {
    let callback: SlirpTimerCb
    let argument: UnsafeMutableRawPointer?
    var due: Int64?
    init(callback: SlirpTimerCb, argument: UnsafeMutableRawPointer?) {
      self.callback = callback
      self.argument = argument
    }
  }

  /// Sets up the stack and binds every forward; ``start()`` then runs it.
  public init(forwards: [HostForward] = [], log: @escaping @Sendable (String) -> Void = { _ in }) throws(SetupError) {
    self.log = log
    // libslirp sends on its sockets without MSG_NOSIGNAL: a peer that has gone would kill the
    // process with SIGPIPE. As QEMU does, the process ignores it (writes then fail with EPIPE).
    signal(SIGPIPE, SIG_IGN)
    var ends: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
      throw .resources("socketpair: \(Errno.current)")
    }
    deviceEnd = FileDescriptor(rawValue: ends[0])
    stackEnd = FileDescriptor(rawValue: ends[1])
    // Room for a burst toward the guest while the device waits for buffers.
    var size: Int32 = 1 << 20
    for end in ends { setsockopt(end, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
    do {
      wake = FileDescriptor(rawValue: try makeEventFD())
    } catch {
      deviceEnd.close()
      stackEnd.close()
      throw .resources("eventfd: \(error)")
    }

    slirp = Self.withConfiguration { config in
      slirp_new(&config, Self.callbacks, Unmanaged.passUnretained(self).toOpaque())
    }
    guard let slirp else {
      close()
      throw .stack
    }
    for forward in forwards {
      let any: [UInt8] = [0, 0, 0, 0]
      let added = slirp_add_hostfwd(
        slirp, forward.udp ? 1 : 0, Self.inAddr(forward.hostAddress ?? any), Int32(forward.hostPort),
        Self.inAddr(forward.guestAddress ?? Self.guestAddress), Int32(forward.guestPort))
      guard added == 0 else {
        close()
        throw .forward(forward)
      }
    }
  }

  /// Starts the stack's thread.
  public func start() throws(SetupError) {
    guard thread == nil, slirp != nil else { return }
    do {
      thread = try startThread { [self] in run() }
    } catch {
      throw .resources("\(error)")
    }
  }

  /// Stops the stack's thread, closes every connection and both ends. Idempotent.
  public func stop() {
    if let thread {
      stopping.store(true, ordering: .releasing)
      signalEventFD(wake.rawValue)
      pthread_join(thread, nil)
      self.thread = nil
    }
    close()
  }

  deinit {
    stop()
  }

  private func close() {
    guard !closed else { return }
    closed = true
    if let slirp {
      slirp_cleanup(slirp)
      self.slirp = nil
    }
    for end in [deviceEnd, stackEnd, wake] { end.close() }
  }

  // MARK: - The stack's thread

  private func run() {
    guard let slirp else { return }
    let context = Unmanaged.passUnretained(self).toOpaque()
    while !stopping.load(ordering: .acquiring) {
      pollFDs.removeAll(keepingCapacity: true)
      pollFDs.append(pollfd(fd: wake.rawValue, events: Int16(POLLIN), revents: 0))
      pollFDs.append(pollfd(fd: stackEnd.rawValue, events: Int16(POLLIN), revents: 0))
      var timeout = UInt32.max
      slirp_pollfds_fill(slirp, &timeout, { fd, events, opaque in
        Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue().addPoll(fd: fd, events: events)
      }, context)
      let now = Self.milliseconds()
      if let due = timers.compactMap(\.due).min() { timeout = min(timeout, UInt32(clamping: max(due - now, 0))) }
      let ready = poll(&pollFDs, nfds_t(pollFDs.count), Int32(min(timeout, Self.maxSleep)))
      if ready < 0, errno != EINTR { log("user networking: poll: \(Errno.current)") }
      fireTimers()
      slirp_pollfds_poll(slirp, ready < 0 ? 1 : 0, { index, opaque in
        Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue().returnedEvents(index: index)
      }, context)
      if ready > 0, pollFDs[1].revents != 0 { readGuestFrames(slirp) }
    }
  }

  /// The guest's frames, each to the stack, until none is left.
  private func readGuestFrames(_ slirp: OpaquePointer) {
    while true {
      let count = frame.withUnsafeMutableBytes { bytes in retryingOnInterrupt { read(stackEnd.rawValue, bytes.baseAddress, bytes.count) } }
      guard count > 0 else { return }
      frame.withUnsafeBytes { bytes in
        slirp_input(slirp, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(count))
      }
    }
  }

  private func fireTimers() {
    let now = Self.milliseconds()
    for timer in timers {
      guard let due = timer.due, due <= now else { continue }
      timer.due = nil
      timer.callback(timer.argument)
    }
  }

  private func addPoll(fd: Int32, events: Int32) -> Int32 {
    var wanted: Int16 = 0
    if events & Int32(SLIRP_POLL_IN) != 0 { wanted |= Int16(POLLIN) }
    if events & Int32(SLIRP_POLL_OUT) != 0 { wanted |= Int16(POLLOUT) }
    if events & Int32(SLIRP_POLL_PRI) != 0 { wanted |= Int16(POLLPRI) }
    pollFDs.append(pollfd(fd: fd, events: wanted, revents: 0))
    return Int32(pollFDs.count - 1)
  }

  private func returnedEvents(index: Int32) -> Int32 {
    guard index >= 0, Int(index) < pollFDs.count else { return 0 }
    let revents = pollFDs[Int(index)].revents
    var events: Int32 = 0
    if revents & Int16(POLLIN) != 0 { events |= Int32(SLIRP_POLL_IN) }
    if revents & Int16(POLLOUT) != 0 { events |= Int32(SLIRP_POLL_OUT) }
    if revents & Int16(POLLPRI) != 0 { events |= Int32(SLIRP_POLL_PRI) }
    if revents & Int16(POLLERR) != 0 { events |= Int32(SLIRP_POLL_ERR) }
    if revents & Int16(POLLHUP) != 0 { events |= Int32(SLIRP_POLL_HUP) }
    return events
  }

  /// A frame from the stack to the guest: one record on the device end, or dropped when the device
  /// end cannot take it at once (the guest has no room), as a full link drops it; TCP resends.
  private func sendToGuest(_ buffer: UnsafeRawPointer?, _ length: Int) -> Int {
    _ = retryingOnInterrupt { send(stackEnd.rawValue, buffer, length, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
    return length
  }

  // MARK: - libslirp's configuration and callbacks

  /// QEMU's defaults for `-nic user`, version 1 of the configuration (libslirp 4.0 and later).
  private static func withConfiguration<R>(_ body: (inout SlirpConfig) -> R) -> R {
    var config = SlirpConfig()
    config.version = 1
    config.in_enabled = true
    config.vnetwork = inAddr([10, 0, 2, 0])
    config.vnetmask = inAddr([255, 255, 255, 0])
    config.vhost = inAddr([10, 0, 2, 2])
    config.vdhcp_start = inAddr(guestAddress)
    config.vnameserver = inAddr([10, 0, 2, 3])
    config.in6_enabled = true
    config.vprefix_addr6 = inAddr6([0xFE, 0xC0] + [UInt8](repeating: 0, count: 14))
    config.vprefix_len = 64
    config.vhost6 = inAddr6([0xFE, 0xC0] + [UInt8](repeating: 0, count: 13) + [2])
    config.vnameserver6 = inAddr6([0xFE, 0xC0] + [UInt8](repeating: 0, count: 13) + [3])
    return body(&config)
  }

  /// The callbacks: libslirp keeps the pointer, not a copy, so the table lives as long as the process.
  private nonisolated(unsafe) static let callbacks: UnsafeMutablePointer<SlirpCb> = {
    let table = UnsafeMutablePointer<SlirpCb>.allocate(capacity: 1)
    table.initialize(to: makeCallbacks())
    return table
  }()

  private static func makeCallbacks() -> SlirpCb {
    var callbacks = SlirpCb()
    callbacks.send_packet = { buffer, length, opaque in
      Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue().sendToGuest(buffer, length)
    }
    callbacks.guest_error = { message, opaque in
      let network = Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue()
      network.log("user networking: the guest: \(message.map { String(cString: $0) } ?? "?")")
    }
    callbacks.clock_get_ns = { _ in UserNetwork.nanoseconds() }
    callbacks.timer_new = { callback, argument, opaque in
      let network = Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue()
      let timer = Timer(callback: callback!, argument: argument)
      network.timers.append(timer)
      return Unmanaged.passUnretained(timer).toOpaque()
    }
    callbacks.timer_free = { timer, opaque in
      let network = Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue()
      network.timers.removeAll { Unmanaged.passUnretained($0).toOpaque() == timer }
    }
    callbacks.timer_mod = { timer, due, opaque in
      let network = Unmanaged<UserNetwork>.fromOpaque(opaque!).takeUnretainedValue()
      network.timers.first { Unmanaged.passUnretained($0).toOpaque() == timer }?.due = due
    }
    // Descriptors are polled afresh each round (slirp_pollfds_fill); nothing to register.
    callbacks.register_poll_fd = { _, _ in }
    callbacks.unregister_poll_fd = { _, _ in }
    // Called on the stack's own thread, which polls again at once.
    callbacks.notify = { _ in }
    return callbacks
  }

  /// The monotonic clock: libslirp's clock (ns) and its timers' (ms).
  static func nanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
  }

  static func milliseconds() -> Int64 { nanoseconds() / 1_000_000 }

  /// An IPv4 address from its four bytes (network order, whatever the host's).
  static func inAddr(_ bytes: [UInt8]) -> in_addr {
    var address = in_addr()
    withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
    return address
  }

  static func inAddr6(_ bytes: [UInt8]) -> in6_addr {
    var address = in6_addr()
    withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes) }
    return address
  }
}
