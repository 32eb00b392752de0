/// The request shape a virtio-blk device advertises: its queue size (with indirect descriptors,
/// the requests a driver keeps in flight), VIRTIO_BLK_F_SEG_MAX and VIRTIO_BLK_F_SIZE_MAX.
///
/// In a Realm every buffer a driver gives a device is bounced through the guest's swiotlb pool in
/// shared memory. Linux (arm64, `arch_mm_preinit`) sizes that pool at RAM/1024 when it decides
/// the pool serves only unaligned-kmalloc bouncing, which the stock Debian 7.3 kernel does in a
/// Realm too: 256 KiB (128 slots of 2 KiB) at 256 MiB. Unlimited requests (up to 256 KiB per
/// segment, a queue of 256) fill such a pool at once, and the guest spins on "swiotlb buffer is
/// full". ``realm(memorySize:disks:queues:)`` picks limits whose requests in flight fit half of that pool.
public struct BlockRequestLimits: Equatable, Sendable {
  /// The queue size offered (a power of two).
  public var queueSize: UInt16
  /// Data segments per request (seg_max), nil for what the queue holds.
  public var maxSegments: UInt32?
  /// Bytes per segment (size_max), nil for no limit.
  public var maxSegmentSize: UInt32?

  public init(queueSize: UInt16 = 256, maxSegments: UInt32? = nil, maxSegmentSize: UInt32? = nil) {
    self.queueSize = queueSize
    self.maxSegments = maxSegments
    self.maxSegmentSize = maxSegmentSize
  }

  /// No limits beyond the queue: what a normal VM gets.
  public static let unlimited = BlockRequestLimits()

  /// Linux's swiotlb slot size.
  static let slotSize: UInt64 = 2048
  /// Segments of one page, at most four per request (16 KiB).
  static let realmSegmentSize: UInt32 = 4096
  static let realmMaxSegments: UInt32 = 4

  /// Limits for each of `disks` disks, with `queues` request queues each, of a Realm with
  /// `memorySize` bytes of RAM: half the smallest pool Linux gives it (RAM/1024) is shared among
  /// all their queues. A request takes at most 3 slots for its header, status and indirect table
  /// and 3 per 4 KiB segment (2, plus 1 lost to page alignment). Its segments are at most 4 and
  /// fit the ring without indirect descriptors (queue size - 2). The queue size is the largest
  /// power of two whose requests fit, at least 4 (2 segments: 36 slots, half the pool of a
  /// 144 MiB Realm; a smaller Realm's disk may still fill its pool).
  public static func realm(memorySize: UInt64, disks: Int, queues: Int = 1) -> BlockRequestLimits {
    let poolSlots = memorySize / 1024 / slotSize
    let budget = poolSlots / 2 / UInt64(max(disks, 1) * max(queues, 1))
    func segments(_ queue: UInt64) -> UInt32 { min(realmMaxSegments, UInt32(queue - 2)) }
    func demand(_ queue: UInt64) -> UInt64 { queue * (3 + 3 * UInt64(segments(queue))) }
    var queue: UInt64 = 4
    while queue < 256, demand(queue * 2) <= budget { queue *= 2 }
    return BlockRequestLimits(queueSize: UInt16(queue), maxSegments: segments(queue), maxSegmentSize: realmSegmentSize)
  }

  /// The swiotlb slots this many requests in flight may take at most, by the count above.
  public var realmSlotsInFlight: UInt64 {
    UInt64(queueSize) * (3 + 3 * UInt64(min(maxSegments ?? UInt32(queueSize - 2), UInt32(queueSize - 2))))
  }
}
