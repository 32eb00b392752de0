import Platform
import Testing

@testable import UserNetwork

/// The stack driven as a guest drives it: hand-built Ethernet frames written to the device end,
/// the stack's answers read back from it.
@Suite struct UserNetworkTests {
  static let guestMAC: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

  @Test func answersARPForTheGateway() throws {
    let network = try UserNetwork()
    try network.start()
    defer { network.stop() }
    try send(Self.arpRequest(for: [10, 0, 2, 2]), to: network)
    let reply = try #require(receive(from: network) { $0.count >= 42 && $0[12] == 0x08 && $0[13] == 0x06 })
    #expect(reply[20] == 0 && reply[21] == 2)  // ARP reply
    #expect(Array(reply[28..<32]) == [10, 0, 2, 2])  // from the gateway
    #expect(Array(reply[0..<6]) == Self.guestMAC)
  }

  @Test func offersTheFirstAddressByDHCP() throws {
    let network = try UserNetwork()
    try network.start()
    defer { network.stop() }
    try send(Self.dhcpDiscover(), to: network)
    let offer = try #require(receive(from: network) { frame in
      frame.count > 42 + 240 && frame[12] == 0x08 && frame[13] == 0x00 && frame[23] == 17 && frame[36] == 0 && frame[37] == 68
    })
    let bootp = 42
    #expect(offer[bootp] == 2)  // BOOTREPLY
    #expect(Array(offer[(bootp + 16)..<(bootp + 20)]) == UserNetwork.guestAddress)  // yiaddr
    #expect(Self.dhcpMessageType(offer) == 2)  // DHCPOFFER
  }

  @Test func forwardsAHostPortToTheGuest() throws {
    let port = try Self.freePort()
    let network = try UserNetwork(forwards: [.init(hostAddress: [127, 0, 0, 1], hostPort: port, guestPort: 80)])
    try network.start()
    defer { network.stop() }
    // The guest makes itself known (its ARP), then a host program connects to the forward.
    try send(Self.arpRequest(for: [10, 0, 2, 2]), to: network)
    let client = try Self.connect(to: port)
    defer { close(client) }
    let syn = try #require(receive(from: network) { frame in
      frame.count >= 54 && frame[12] == 0x08 && frame[13] == 0x00 && frame[23] == 6
    })
    #expect(Array(syn[30..<34]) == UserNetwork.guestAddress)  // to the guest
    #expect(Int(syn[36]) << 8 | Int(syn[37]) == 80)  // its port 80
    #expect(syn[47] & 0x02 != 0)  // SYN
  }

  @Test func refusesAForwardWhosePortIsTaken() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(listener) }
    var address = Self.loopback(port: 0)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    listen(listener, 1)
    let port = try Self.port(of: listener)
    let forward = UserNetwork.HostForward(hostAddress: [127, 0, 0, 1], hostPort: port, guestPort: 22)
    #expect(throws: UserNetwork.SetupError.forward(forward)) { try UserNetwork(forwards: [forward]) }
  }

  @Test func parsesHostForwards() {
    #expect(UserNetwork.HostForward(parsing: "tcp::8080-:80") == .init(hostPort: 8080, guestPort: 80))
    #expect(UserNetwork.HostForward(parsing: "::2222-:22") == .init(hostPort: 2222, guestPort: 22))
    #expect(
      UserNetwork.HostForward(parsing: "udp:127.0.0.1:5353-10.0.2.16:53")
        == .init(udp: true, hostAddress: [127, 0, 0, 1], hostPort: 5353, guestAddress: [10, 0, 2, 16], guestPort: 53))
    for bad in ["", "tcp:8080-:80", "tcp::8080:80", "sctp::1-:2", "tcp::0-:80", "tcp::70000-:80", "tcp::80-:", "tcp:1.2.3:80-:80", "tcp::80-1.2.3.256:80"] {
      #expect(UserNetwork.HostForward(parsing: bad) == nil, "\(bad)")
    }
  }

  @Test func stopsOnceAndAgain() throws {
    let network = try UserNetwork(forwards: [.init(hostAddress: [127, 0, 0, 1], hostPort: try Self.freePort(), guestPort: 80)])
    try network.start()
    network.stop()
    network.stop()
  }

  // MARK: - Frames

  static func ethernet(to destination: [UInt8], type: UInt16, _ payload: [UInt8]) -> [UInt8] {
    destination + guestMAC + [UInt8(type >> 8), UInt8(type & 0xFF)] + payload
  }

  static func arpRequest(for target: [UInt8]) -> [UInt8] {
    let arp: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1] + guestMAC + UserNetwork.guestAddress + [0, 0, 0, 0, 0, 0] + target
    return ethernet(to: [UInt8](repeating: 0xFF, count: 6), type: 0x0806, arp)
  }

  /// DHCPDISCOVER from 0.0.0.0:68 to 255.255.255.255:67, the BOOTP part at its full 548 bytes.
  static func dhcpDiscover() -> [UInt8] {
    var bootp = [UInt8](repeating: 0, count: 548)
    bootp[0] = 1; bootp[1] = 1; bootp[2] = 6  // BOOTREQUEST, Ethernet, 6-byte address
    bootp.replaceSubrange(4..<8, with: [0x12, 0x34, 0x56, 0x78])  // xid
    bootp.replaceSubrange(28..<34, with: guestMAC)
    bootp.replaceSubrange(236..<243, with: [99, 130, 83, 99, 53, 1, 1])  // magic; DHCPDISCOVER
    bootp[243] = 255
    let udpLength = 8 + bootp.count
    let udp: [UInt8] = [0, 68, 0, 67, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0] + bootp
    var ip: [UInt8] = [0x45, 0, UInt8((20 + udp.count) >> 8), UInt8((20 + udp.count) & 0xFF), 0, 1, 0, 0, 64, 17, 0, 0]
    ip += [0, 0, 0, 0, 255, 255, 255, 255]
    let sum = checksum(ip)
    ip[10] = UInt8(sum >> 8); ip[11] = UInt8(sum & 0xFF)
    return ethernet(to: [UInt8](repeating: 0xFF, count: 6), type: 0x0800, ip + udp)
  }

  static func checksum(_ bytes: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    for index in stride(from: 0, to: bytes.count, by: 2) { sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1]) }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
  }

  /// Option 53 of a DHCP reply frame (Ethernet, IPv4 without options, UDP).
  static func dhcpMessageType(_ frame: [UInt8]) -> UInt8? {
    var index = 42 + 240
    while index + 1 < frame.count, frame[index] != 255 {
      if frame[index] == 0 { index += 1; continue }
      if frame[index] == 53 { return frame[index + 2] }
      index += 2 + Int(frame[index + 1])
    }
    return nil
  }

  // MARK: - Driving the stack

  func send(_ frame: [UInt8], to network: UserNetwork) throws {
    let sent = frame.withUnsafeBytes { Glibc.send(network.deviceEnd.rawValue, $0.baseAddress, $0.count, 0) }
    try #require(sent == frame.count)
  }

  /// The first frame from the stack within 5 s that `matches`.
  func receive(from network: UserNetwork, matching matches: ([UInt8]) -> Bool) -> [UInt8]? {
    let deadline = UserNetwork.milliseconds() + 5000
    var buffer = [UInt8](repeating: 0, count: 65_550)
    while UserNetwork.milliseconds() < deadline {
      var fd = pollfd(fd: network.deviceEnd.rawValue, events: Int16(POLLIN), revents: 0)
      guard poll(&fd, 1, 100) > 0 else { continue }
      let count = buffer.withUnsafeMutableBytes { recv(network.deviceEnd.rawValue, $0.baseAddress, $0.count, 0) }
      if count > 0, matches(Array(buffer[0..<count])) { return Array(buffer[0..<count]) }
    }
    return nil
  }

  static func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr = UserNetwork.inAddr([127, 0, 0, 1])
    return address
  }

  static func port(of socket: Int32) throws -> UInt16 {
    var address = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let status = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
    try #require(status == 0)
    return UInt16(bigEndian: address.sin_port)
  }

  /// A loopback TCP port nothing listens on now.
  static func freePort() throws -> UInt16 {
    let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(probe) }
    var address = loopback(port: 0)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    return try port(of: probe)
  }

  static func connect(to port: UInt16) throws -> Int32 {
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    var address = loopback(port: port)
    let status = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    try #require(status == 0 || errno == EINPROGRESS)
    return client
  }
}
